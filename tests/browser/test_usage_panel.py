"""The *Usage* panel on the real stack: hub, ledger, JupyterLab in Debian's Chromium.

alice's and bob's jobs are written into the hub's ledger (:mod:`fixtures.usage_views`: final,
accounted jobs on alpha and beta; the sbatch → sacct path that fills the ledger is tested by
the collector's integration tests).  alice starts JupyterLab on alpha and opens *Usage* from
the *Continuum* menu: the hub's report reaches the panel through her server's
``continuum/usage`` route; the day chart stacks her server, Dask and batch jobs, the site chart
shows alpha and beta, the totals and the jobs table list her jobs, and nothing of bob's is
anywhere in the panel.  On failure a screenshot lands in ``test-results/``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from fixtures.browser import RESULTS, start_lab
from fixtures.hub import stop_server
from fixtures.usage_views import Seeded, seeded_usage

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.lab,
    pytest.mark.operations,
]

PANEL_ID = "continuum-usage-panel"


@pytest.fixture
def seeded(hub) -> Iterator[Seeded]:
    with seeded_usage(hub.state_dir) as jobs:
        yield jobs


def test_usage_panel_shows_alices_charts_and_not_bobs_jobs(
    page: Page, hub, idp, slurm_sites, seeded: Seeded
) -> None:
    start_lab(page, hub.url, "alice", idp.passwords["alice"], "alpha/interactive")
    try:
        page.goto(f"{hub.url}/user/alice/lab?reset")
        # from the front door: the Continuum menu's item opens the side panel
        page.locator(".lm-MenuBar-itemLabel", has_text=re.compile("^Continuum$")).click(
            timeout=120_000
        )
        page.locator("#jp-mainmenu-continuum").get_by_text("Show Usage", exact=True).click()
        panel = page.locator(f"#{PANEL_ID}")
        expect(panel).to_be_visible()

        rows = panel.locator("tbody tr")
        for job in seeded.jobs["alice"]:
            expect(panel.locator(f'tr[data-job="{job.site}/{job.job_id}"]')).to_have_count(
                1, timeout=60_000
            )
        for job in seeded.jobs["bob"]:
            expect(panel.locator(f'tr[data-job="{job.site}/{job.job_id}"]')).to_have_count(0)
            expect(panel).not_to_contain_text(job.job_id)
        # every row is alice's (her server's own job may be listed too)
        assert rows.count() >= 3

        # the day chart: today's bar stacks a server, a Dask and a batch segment
        by_day = panel.locator('figure[data-chart="by-day"]')
        expect(by_day.locator("figcaption")).to_have_text("Core-hours by day")
        for kind in ("server", "dask", "batch"):
            expect(by_day.locator(f'rect[data-kind="{kind}"]').first).to_be_visible()
        # one image for assistive technology, named by its caption, described by the numbers
        svg = by_day.get_by_role("img", name="Core-hours by day")
        expect(svg).to_have_count(1)
        described = svg.get_attribute("aria-describedby")
        expect(page.locator(f"#{described}")).to_contain_text("core-h")
        # the site chart: alpha and beta, values written beside the bars
        by_site = panel.locator('figure[data-chart="by-site"]')
        for site in ("alpha", "beta"):
            expect(by_site.locator(f'g[data-key="{site}"] rect')).to_be_visible()
        # totals: at least her three seeded jobs; 2 + 2 + 2 core-hours
        expect(panel.locator('.jp-ContinuumUsage-totals dd[data-field="core_hours"]')).to_have_text(
            re.compile(r"^\d+(\.\d+)? core-h$")
        )
        core_hours = float(
            panel.locator('.jp-ContinuumUsage-totals dd[data-field="core_hours"]')
            .inner_text()
            .split()[0]
        )
        assert core_hours >= 6 * 0.99, core_hours

        # the energy chart: the select redraws both charts in kg CO2e
        panel.locator('select[name="metric"]').select_option("co2e_kg")
        expect(by_day.locator("figcaption")).to_have_text("CO2e by day")
        expect(by_site.locator("desc")).to_contain_text("kg CO2e")
        RESULTS.mkdir(exist_ok=True)
        panel.screenshot(path=str(RESULTS / "usage-panel.png"))
    finally:
        stop_server(hub, "alice")
