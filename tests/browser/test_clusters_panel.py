"""The Clusters panel on the real stack: hub, Slurm sites, the hub-managed Dask Gateway, Chromium.

alice starts JupyterLab on alpha, creates a Dask cluster *in code* in a console (zero
configuration: no address, no token — the server's environment has them); the Clusters panel
lists it, scales it to one worker (a Slurm job of alice), links to its dashboard through the
hub, and shuts it down; its Slurm jobs end. On failure a screenshot lands in ``test-results/``.
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

CODE = (
    "from dask_gateway import GatewayCluster; "
    'cluster = GatewayCluster(site="alpha", worker_cores=1, worker_memory_gb=1, '
    "shutdown_on_close=False); "
    'print("CLUSTER", cluster.name, cluster.dashboard_link)'
)


def run_in_console(page: Page, code: str) -> None:
    """Type ``code`` into a new Python console and run it, once its kernel is idle."""
    page.locator('.jp-LauncherCard[data-category="Console"]').first.click()
    prompt = page.locator(".jp-CodeConsole-promptCell .cm-content")
    expect(prompt).to_be_visible(timeout=60_000)
    # the kernel must be connected and idle before an execution is accepted
    expect(page.locator(".jp-StatusBar-Widget", has_text="| Idle")).to_be_visible(timeout=120_000)
    prompt.click()
    page.keyboard.type(code)
    expect(prompt).to_contain_text("shutdown_on_close=False")
    page.keyboard.press("Shift+Enter")


def test_a_cluster_made_in_code_is_scaled_and_shut_down_from_the_panel(
    page: Page, hub, idp, slurm_sites, gateway: HubGateway
) -> None:
    try:
        start_lab(page, hub.url, "alice", idp.passwords["alice"], "alpha/interactive")
        page.goto(f"{hub.url}/user/alice/lab?reset")
        expect(page.locator("#jp-main-dock-panel")).to_be_visible(timeout=120_000)

        run_in_console(page, CODE)
        output = page.locator(".jp-CodeConsole-content .jp-OutputArea-output").first
        try:
            expect(output).to_be_visible(timeout=180_000)  # the line printed, or a traceback
        except AssertionError:
            console = page.locator(".jp-CodeConsole-content").inner_text()
            raise AssertionError(f"no output; console:\n{console}\nhub:\n{hub.log(40)}") from None
        text = output.inner_text()
        assert text.startswith("CLUSTER"), f"{text}\nhub log:\n{hub.log(60)}"
        name, link = text.split()[1:3]
        assert link == f"{hub.url}/services/dask-gateway/clusters/{name}/status"

        page.locator('.lm-TabBar-tab[data-id="continuum-clusters-panel"]').click()
        panel = page.locator(".jp-ContinuumClusters-panel")
        expect(panel).to_be_visible()
        expect(panel.locator(".jp-ContinuumClusters-error")).to_be_hidden()
        row = panel.locator(f'tr[data-cluster="{name}"]')
        expect(row.locator('td[data-field="status"]')).to_have_text("running", timeout=60_000)
        expect(row.locator('a[data-action="dashboard"]')).to_have_attribute("href", link)

        row.locator("input").fill("1")
        row.locator('button[data-action="scale"]').click()
        # the worker is a Slurm job of alice: it shows once it has connected
        expect(row.locator('td[data-field="workers"]')).to_have_text("1", timeout=180_000)
        expect(row.locator('td[data-field="resources"]')).to_contain_text("1 core")
        jobs = gateway_jobs(slurm_sites["alpha"], "alice")
        assert len([j for j in jobs if j[2] == "RUNNING"]) >= 2, jobs  # scheduler + worker

        # the dashboard link opens, through the hub's sign-in, for its owner
        with page.context.expect_page() as dashboard:
            row.locator('a[data-action="dashboard"]').click()
        dashboard.value.wait_for_load_state()
        expect(dashboard.value).to_have_title(re.compile("Dask"), timeout=60_000)
        dashboard.value.close()

        row.locator('button[data-action="stop"]').click()
        page.locator(".jp-Dialog").get_by_role("button", name="Shut down").click()
        expect(row).to_have_count(0, timeout=120_000)
        wait_gateway_jobs_gone(slurm_sites["alpha"], "alice", 120)
    finally:
        gateway.stop_clusters("alice")
        stop_server(hub, "alice")
