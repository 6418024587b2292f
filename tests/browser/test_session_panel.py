"""The session extension on the real demo stack, in Debian's Chromium driven by Playwright.

alice spawns on each site; JupyterLab's status bar shows that site, its partition and the job id
that ``squeue`` reports, and the side panel the job's details.  With a short walltime (6 min)
a warning shows at once and the 5-minute warning appears while the job still runs; on beta,
*Stop server…* ends the job.
On failure a screenshot lands in ``test-results/``.
"""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import Page, expect

from fixtures.browser import sign_in
from fixtures.hub import stop_server
from fixtures.slurm import squeue

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow, pytest.mark.lab]


def running_jobs(site, user: str) -> list[tuple[str, str]]:
    """``(job id, partition)`` of the user's running jobs on a site, as ``squeue`` says."""
    rows = squeue(site, f"--user={user}", "--states=RUNNING", "--format=%i|%P")
    return [(row[0], row[1]) for row in rows]


@pytest.mark.parametrize(
    "site,partition,gpus,walltime",
    [("alpha", "interactive", "0", "0:06"), ("beta", "gpu", "1", "0:30")],
    ids=["alpha-short-walltime", "beta-gpu"],
)
def test_status_bar_and_panel_show_the_job(
    page: Page, hub, idp, slurm_sites, site: str, partition: str, gpus: str, walltime: str
) -> None:
    sign_in(page, hub.url, "alice", idp.passwords["alice"])
    page.wait_for_url(re.compile(r"/hub/spawn"))
    page.select_option("select[name=target]", f"{site}/{partition}")
    page.fill("input[name=gpus]", gpus)
    page.fill("input[name=walltime]", walltime)
    page.get_by_role("button", name="Start").click()
    try:
        page.wait_for_url(re.compile(r"/user/alice/lab"), timeout=240_000)
        # a fresh workspace: alice's saved Lab layout outlives test runs
        page.goto(f"{hub.url}/user/alice/lab?reset")
        expect(page.locator("#jp-main-dock-panel")).to_be_visible(timeout=120_000)

        jobs = running_jobs(slurm_sites[site], "alice")
        assert len(jobs) == 1, jobs
        job_id, job_partition = jobs[0]
        assert job_partition == partition

        status = page.locator(".jp-ContinuumSession-status")
        expect(status).to_contain_text(
            re.compile(rf"^{site} · {partition} · job {job_id} · \d+:\d\d(:\d\d)? left$"),
            timeout=60_000,
        )
        expect(status).to_have_attribute("data-job-id", job_id)

        status.click()
        panel = page.locator(".jp-ContinuumSession-panel")
        expect(panel).to_be_visible()
        expect(panel.locator('dd[data-field="job-id"]')).to_have_text(job_id)
        expect(panel.locator('dd[data-field="partition"]')).to_have_text(partition)
        expect(panel.locator('dd[data-field="gpus"]')).to_have_text(gpus)
        expect(panel.locator('dd[data-field="state"]')).to_have_text("running")
        expect(panel.locator('dd[data-field="node"]')).not_to_have_text("–")
        expect(panel.locator('dd[data-field="environment"]')).to_have_text(re.compile(r"\S"))
        expect(panel.get_by_role("button", name="Hub control panel")).to_be_visible()
        expect(panel.get_by_role("button", name="Stop server…")).to_be_visible()
        # the hub answered (the environment is only the fallback)
        expect(panel).not_to_contain_text("The hub could not be asked")
        # JupyterLab's hub extension opens the control panel in a new tab
        with page.context.expect_page() as control_panel:
            panel.get_by_role("button", name="Hub control panel").click()
        control_panel.value.wait_for_load_state()
        assert re.search(r"/hub/home$", control_panel.value.url), control_panel.value.url
        control_panel.value.close()

        if walltime == "0:06":
            # less than 15 minutes left from the start: a warning is shown at once …
            warning = page.locator(".Toastify__toast", has_text="walltime ends")
            expect(warning.first).to_be_visible(timeout=30_000)
            # … and the 5-minute one once a minute of the job has passed, before its end
            expect(warning.filter(has_text="less than 5 min")).to_be_visible(timeout=150_000)
            assert running_jobs(slurm_sites[site], "alice") == jobs
            left = status.inner_text()
            minutes, seconds = re.search(r"(\d+):(\d\d) left", left).groups()  # type: ignore[union-attr]
            assert 0 < int(minutes) * 60 + int(seconds) <= 300, left
        else:
            # "Stop server…" saves, shuts the server down, and the batch job ends with it
            panel.get_by_role("button", name="Stop server…").click()
            page.get_by_role("button", name="Save all and stop").click()
            page.wait_for_url(re.compile(r"/hub/home"), timeout=60_000)
            deadline = time.monotonic() + 90
            while running_jobs(slurm_sites[site], "alice") and time.monotonic() < deadline:
                time.sleep(0.5)
            assert not running_jobs(slurm_sites[site], "alice")
    finally:
        stop_server(hub, "alice")
