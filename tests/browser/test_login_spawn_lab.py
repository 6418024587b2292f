"""A person's first session, in Debian's Chromium driven by Playwright.

Sign in on the provider's page, pick a site and partition in the spawn form, wait for
JupyterLab (running as a Slurm job under the user's account), run ``6*7`` in a notebook, see
``42``.  On failure a screenshot lands in ``test-results/``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from fixtures.hub import stop_server

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
RESULTS = Path(__file__).resolve().parents[2] / "test-results"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    try:
        yield page
    finally:
        failed = getattr(request.node, "rep_call", None)
        if failed is None or failed.failed:
            RESULTS.mkdir(exist_ok=True)
            page.screenshot(path=str(RESULTS / f"{request.node.name}.png"), full_page=True)
        context.close()


def sign_in(page: Page, hub_url: str, username: str, password: str) -> None:
    page.goto(f"{hub_url}/hub/")
    page.get_by_text(re.compile(r"^Sign in with")).click()
    expect(page).to_have_title(re.compile("Sign in"))
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


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
