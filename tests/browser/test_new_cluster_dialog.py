"""The *New Dask cluster* dialog on the real stack: hub, Slurm sites, the hub's Dask Gateway.

alice, in a fresh JupyterLab, opens *New Dask cluster* from the Launcher (not the command
palette; the Dask clusters panel's *New cluster* opens the same dialog), picks beta's
GPU partition with one GPU per worker, sees the hub's estimate line, names the cluster and
creates it; the panel lists it by that name (the gateway's id on hover), she scales it to two
GPU workers (Slurm jobs of alice on beta) and shuts it down. On failure a screenshot lands in
``test-results/``.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from fixtures.browser import start_lab
from fixtures.gateway import HubGateway, gateway_jobs, wait_gateway_jobs_gone
from fixtures.hub import stop_server

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.lab,
    pytest.mark.gateway,
]

NAME = "alice-gpu-run"
ESTIMATE = re.compile(
    r"^Expected start on beta / gpu: (now|in about \d+ min) · at most [\d.]+ kWh, [\d.]+ g CO2e"
)


def open_dialog(page: Page) -> None:
    """Open *New Dask cluster* from its card in the Launcher's *Continuum* section."""
    card = page.locator('.jp-LauncherCard[data-category="Continuum"]', has_text="New Dask Cluster")
    expect(card).to_be_visible(timeout=120_000)
    card.click()


def test_alice_creates_a_named_gpu_cluster_from_the_dialog(
    page: Page, hub, idp, slurm_sites, gateway: HubGateway
) -> None:
    try:
        start_lab(page, hub.url, "alice", idp.passwords["alice"], "alpha/interactive")
        page.goto(f"{hub.url}/user/alice/lab?reset")
        open_dialog(page)

        dialog = page.locator(".jp-Dialog")
        form = dialog.locator(".jp-ContinuumClusterForm")
        expect(form).to_be_visible(timeout=30_000)
        form.get_by_label("Site", exact=True).select_option("beta")
        form.get_by_label("Partition", exact=True).select_option("gpu")
        form.get_by_label("GPUs per worker").fill("1")
        form.get_by_label("Memory per worker (GB)").fill("1")
        # the name made up when none is given: beta-gpu-1 (alice has no cluster yet)
        name = form.locator('input[name="name"]')
        expect(name).to_have_attribute("placeholder", "beta-gpu-1")
        name.fill(NAME)
        expect(form.locator(".jp-ContinuumClusterForm-estimate")).to_have_text(
            ESTIMATE, timeout=30_000
        )
        dialog.get_by_role("button", name="Create").click()
        expect(dialog).to_have_count(0)

        tab = page.locator('.lm-TabBar-tab[data-id="continuum-clusters-panel"]')
        if "lm-mod-current" not in (tab.get_attribute("class") or ""):
            tab.click()
        panel = page.locator(".jp-ContinuumClusters-panel")
        label = panel.locator(".jp-ContinuumClusters-name", has_text=NAME)
        expect(label).to_have_count(1, timeout=30_000)
        cluster_id = label.get_attribute("title") or ""
        assert re.fullmatch(r"[0-9a-f]{32}", cluster_id), cluster_id  # the gateway's id on hover
        row = panel.locator(f'[data-cluster="{cluster_id}"]')
        expect(row.locator('[data-field="status"]')).to_have_text("running", timeout=90_000)

        row.locator("input").fill("2")
        row.locator('button[data-action="scale"]').click()
        expect(row.locator('[data-field="workers"]')).to_have_text("2", timeout=90_000)
        jobs = gateway_jobs(slurm_sites["beta"], "alice")
        assert len([j for j in jobs if j[2] == "RUNNING"]) >= 3, jobs  # scheduler + 2 workers

        row.locator('button[data-action="stop"]').click()
        confirm = page.locator(".jp-Dialog")
        expect(confirm).to_contain_text(f"Cluster {NAME}")
        confirm.get_by_role("button", name="Shut down").click()
        expect(row).to_have_count(0, timeout=60_000)
        wait_gateway_jobs_gone(slurm_sites["beta"], "alice", 60)
    finally:
        gateway.stop_clusters("alice")
        stop_server(hub, "alice")
