"""A person's first session, in Debian's Chromium driven by Playwright.

Sign in on the provider's page, pick a site and partition in the spawn form, wait for
JupyterLab (running as a Slurm job under the user's account), run ``6*7`` in a notebook, see
``42``.  On failure a screenshot lands in ``test-results/``.
"""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import Page, expect

from fixtures.browser import sign_in
from fixtures.hub import stop_server

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow]


@pytest.mark.parametrize(
    "target,gpus", [("alpha/interactive", "0"), ("beta/gpu", "1")], ids=["alpha", "beta-gpu"]
)
def test_sign_in_spawn_and_run_code(
    page: Page, hub, idp, slurm_sites, target: str, gpus: str
) -> None:
    started = time.monotonic()
    sign_in(page, hub.url, "alice", idp.passwords["alice"])
    page.wait_for_url(re.compile(r"/hub/spawn"))
    page.select_option("select[name=target]", target)
    page.fill("input[name=gpus]", gpus)
    page.get_by_role("button", name="Start").click()
    try:
        page.wait_for_url(re.compile(r"/user/alice/lab"), timeout=240_000)
        expect(page.locator("#jp-main-dock-panel")).to_be_visible(timeout=120_000)
        print(f"login → JupyterLab on {target}: {time.monotonic() - started:.1f} s")
        # a fresh workspace: alice's account (and her saved Lab layout) outlives test runs
        page.goto(f"{hub.url}/user/alice/lab?reset")
        expect(page.locator(".jp-LauncherCard").first).to_be_visible(timeout=120_000)
        page.locator('.jp-LauncherCard[data-category="Notebook"]').first.click()
        editor = page.locator(".jp-Cell .cm-content").first
        expect(editor).to_be_visible(timeout=60_000)
        # like a person, wait until the kernel is connected and idle: code run before that
        # is dropped by JupyterLab
        kernel_status = page.locator(".jp-StatusBar-Widget", has_text="| Idle")
        expect(kernel_status.first).to_be_visible(timeout=120_000)
        editor.click()
        page.keyboard.type("6*7")
        page.keyboard.press("Shift+Enter")
        expect(page.locator(".jp-OutputArea-output").first).to_have_text("42", timeout=120_000)
    finally:
        stop_server(hub, "alice")
