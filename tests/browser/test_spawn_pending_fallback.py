"""The spawn-pending page without its progress stream, in Debian's Chromium (issue 13's
20-browser burst: pages whose stream never reached the hub waited forever).

Every request to ``…/server/progress`` is aborted (Playwright's ``page.route``), as if the
stream were never opened or lost.  Bob's server job waits in alpha's queue behind another
user's job filling the node, so the page really is the pending page for a while.  First his
job is cancelled in the queue: the page shows JupyterHub's *Spawn failed* (with its
*Relaunch Server* button; JupyterHub shows the reason of its own errors only).
Then he starts again and the filling job ends: the page hands over to his JupyterLab.  Both
times only our template's fallback (the user's model asked every 5 s of silence) can have
told the page.  On failure a screenshot lands in ``test-results/``.
"""

from __future__ import annotations

import re
import subprocess
import threading
import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, Route, expect

from fixtures.browser import sign_in
from fixtures.hub import api, server_model, stop_server
from fixtures.slurm import occupied_node, user_jobs, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.workshops]

USER = "bob"
OPTIONS = {"user_options": {"site": "alpha", "partition": "interactive", "cores": 1}}


@pytest.fixture
def blocked(page: Page, hub) -> Iterator[list[str]]:
    """``page`` with every progress stream aborted (yields the aborted URLs); bob's server is
    stopped afterwards."""
    aborted: list[str] = []

    def abort(route: Route) -> None:
        aborted.append(route.request.url)
        route.abort()

    page.route("**/server/progress*", abort)
    yield aborted
    stop_server(hub, USER)


def open_pending(page: Page, hub) -> threading.Thread:
    """Start bob's server (a thread: the hub holds the request up to its 10 s
    ``slow_spawn_timeout``) and open his spawn-pending page once it is pending."""
    start = threading.Thread(
        target=api, args=(hub, "POST", f"/users/{USER}/server"), kwargs={"json": OPTIONS}
    )
    start.start()
    wait_until(lambda: server_model(hub, USER).get("pending") == "spawn", timeout=30, interval=0.5)
    page.goto(f"{hub.url}/hub/spawn-pending/{USER}")
    expect(page.locator("#progress-bar")).to_be_attached()
    return start


def test_pending_page_shows_failure_and_hands_over_without_its_stream(
    page: Page, blocked: list[str], hub, idp, slurm_sites
) -> None:
    alpha = slurm_sites["alpha"]
    started = time.monotonic()
    sign_in(page, hub.url, USER, idp.passwords[USER])
    page.wait_for_url(re.compile(r"/hub/spawn"))
    with occupied_node(alpha, user="alice") as filler:
        start = open_pending(page, hub)
        jobs = wait_until(lambda: [job for job, _ in user_jobs(alpha, USER)], timeout=30)
        subprocess.run(["scancel", *jobs], env=alpha.client_env(), timeout=30, check=True)
        expect(page.get_by_role("heading", name="Spawn failed")).to_be_visible(timeout=30_000)
        assert blocked, "the stock page never opened its progress stream"
        start.join(timeout=30)
        failed = time.monotonic()

        start = open_pending(page, hub)
        subprocess.run(["scancel", filler], env=alpha.client_env(), timeout=30, check=True)
        page.wait_for_url(re.compile(rf"/user/{USER}/"), timeout=120_000, wait_until="commit")
        start.join(timeout=30)
    print(
        f"sign-in → failure shown {failed - started:.1f} s, "
        f"→ handed over to the server {time.monotonic() - failed:.1f} s"
    )
    assert server_model(hub, USER).get("ready")
