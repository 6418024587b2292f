"""Workshops inside JupyterLab on the real stack: the instructor's panel and a participant's
message, in Debian's Chromium.

alice instructs an event on alpha that bob joined; *Start all* (the hub's REST call) starts
bob's server in the event's reservation, alice's own starts too, and both open JupyterLab.
Her lab has the *Workshops* panel (added because she instructs an event), which lists bob
with his server's state; she writes a message in the panel's form, which keeps her text and
focus through the panel's refreshes, and sends it.  bob's JupyterLab, open since
before, shows it as a notification and in *Workshop Messages* (which asks at once rather
than wait for the next 30-second check); bob, who instructs nothing, has no such panel until
he makes an event himself: his lab, not reloaded, shows it when it regains focus.  alice opens
bob's server from the panel (through sharing); bob's sharing page shows that she did.
On failure a screenshot of alice's page lands in ``test-results/``.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import time
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Browser, Locator, Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from fixtures.browser import RESULTS, close_context, close_page, sign_in
from fixtures.hub import api, hub_login, server_model, stop_server
from fixtures.workshop_events import delete_events
from fixtures.workshops import event_json, events_call, instructor

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.lab,
    pytest.mark.workshops,
]

PANEL_ID = "continuum-workshop-panel"


def open_from_panel(page: Page, row: Locator) -> Page:
    """*Open* on a participant's row of the panel: the new tab on their server; where Chromium
    blocked the pop-up (the hub answered after the click's user activation ran out), the tab
    that the notification's *Open* opens."""
    context = page.context
    known = list(context.pages)
    row.locator('button[data-action="open"]').click()
    offered = page.locator(".Toastify__toast", has_text="is shared with you")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        new = [tab for tab in context.pages if tab not in known]
        if new:
            return new[0]
        if offered.count():
            with context.expect_page() as opened:
                offered.get_by_role("button", name="Open").click()
            return opened.value
        page.wait_for_timeout(250)  # the poll's interval
    raise AssertionError("no tab opened on the participant's server")


def test_the_instructor_panel_lists_bob_and_his_lab_shows_her_message(
    page: Page, chromium: Browser, hub, idp, slurm_sites
) -> None:
    alice = hub_login(hub, idp, "alice")
    bob_hub = hub_login(hub, idp, "bob")  # a hub user (participants have signed in once)
    instructor(hub, "alice")
    bob_context = chromium.new_context(viewport={"width": 1400, "height": 900})
    bob = bob_context.new_page()
    bob.set_default_timeout(30_000)
    text = f"Please open notebook 2 ({secrets.token_hex(3)})"
    try:
        created = events_call(hub, alice, "POST", "", json=event_json(title="Panel test"))
        assert created.status_code == 201, created.text
        ev = created.json()
        # alice's own server on alpha (outside the event) starts while bob joins; after the
        # event is made: the spawn refreshes her groups from her entitlements, which hold no
        # instructor role here (the test made her one by hand)
        spawned = api(hub, "POST", "/users/alice/server", json={"user_options": {"site": "alpha"}})
        assert spawned.status_code in (201, 202), spawned.text
        joined = events_call(hub, alice, "PUT", f"/{ev['id']}/participants/bob")
        assert joined.status_code == 201, joined.text
        started = events_call(hub, alice, "POST", f"/{ev['id']}/instructor/start")
        assert started.status_code == 200 and started.json()["started"] == ["bob"], started.text

        # both open their labs (they load side by side)
        for who, name in ((bob, "bob"), (page, "alice")):
            sign_in(who, hub.url, name, idp.passwords[name])
            who.wait_for_url(re.compile(rf"^{re.escape(hub.url)}/(hub/|user/{name}/)"))
            who.goto(f"{hub.url}/user/{name}/lab?reset", wait_until="commit")

        # alice's lab: the panel is there because she instructs an event, and lists bob
        tab = page.locator(f'.lm-TabBar-tab[data-id="{PANEL_ID}"]')
        expect(tab).to_be_visible(timeout=120_000)
        tab.click()
        section = page.locator(f'#{PANEL_ID} section[data-event="{ev["id"]}"]')
        expect(section.locator("h3")).to_have_text("Panel test")
        bob_row = section.locator('tr[data-user="bob"]')
        expect(bob_row).to_have_attribute("data-state", "running", timeout=60_000)
        expect(bob_row.locator('button[data-action="open"]')).to_be_visible()

        # a message to everybody, written in the panel: a refresh (after an action; the one
        # every 10 s waits while the form is open) keeps the text (and the focus: Jest tests)
        section.locator('button[data-action="message"]').click()
        message = section.locator("textarea[name=message]")
        message.fill(text)
        # *Start all* (bob runs already: nothing starts) refreshes the panel around the form
        section.locator('button[data-action="start"]').click()
        starting = page.locator(".Toastify__toast", has_text="Starting 0 servers")
        expect(starting).to_be_visible(timeout=60_000)  # the hub answers slowly under load
        expect(message).to_have_value(text)
        page.get_by_role("button", name="Send", exact=True).click()
        expect(page.locator(".Toastify__toast", has_text="Message sent")).to_be_visible()
        RESULTS.mkdir(exist_ok=True)
        page.locator(f"#{PANEL_ID}").screenshot(path=str(RESULTS / "workshop-panel.png"))

        # bob's lab, open since before the message: *Workshop Messages* asks at once (the
        # periodic check, every 30 s, would find it too), the message pops up and is listed
        expect(bob.locator("#jp-main-dock-panel")).to_be_visible(timeout=120_000)
        expect(bob.locator(f'.lm-TabBar-tab[data-id="{PANEL_ID}"]')).to_have_count(0)
        palette = bob.locator(".lm-CommandPalette-input")
        deadline = time.monotonic() + 60
        while not palette.is_visible():  # a lab still starting may miss the first key press
            assert time.monotonic() < deadline, "the command palette does not open"
            bob.locator("#jp-main-dock-panel").click()
            bob.keyboard.press("Control+Shift+c")
            with contextlib.suppress(PlaywrightTimeoutError):
                palette.wait_for(state="visible", timeout=3_000)
        palette.fill("Workshop Messages")
        bob.keyboard.press("Enter")
        listed = bob.locator(".jp-ContinuumWorkshop-messages li").first
        expect(listed).to_contain_text(text)
        expect(listed).to_contain_text("Panel test · alice")
        toast = bob.locator(".Toastify__toast", has_text=text)
        expect(toast).to_be_visible()
        expect(toast).to_contain_text("Panel test: ")
        bob.locator(".jp-Dialog-footer").get_by_role("button", name="Close").click()
        expect(bob.locator(".jp-Dialog")).to_have_count(0)

        # bob makes an event of his own (in two hours) while his lab is open: the panel
        # appears when the lab regains focus, without a reload
        instructor(hub, "bob")
        later = datetime.now(UTC) + timedelta(hours=2)
        own = event_json(
            title="Bob's workshop",
            start=later.isoformat(),
            end=(later + timedelta(hours=1)).isoformat(),
        )
        made = events_call(hub, bob_hub, "POST", "", json=own)
        assert made.status_code == 201, made.text
        # focus comes back (as when he returns from the hub's tab) until the panel shows: the
        # lab asks at most every 15 s on focus, and asked when it loaded moments ago
        bob.wait_for_function(
            """(id) => {
                window.dispatchEvent(new Event("focus"));
                return document.querySelector(`.lm-TabBar-tab[data-id="${id}"]`) !== null;
            }""",
            arg=PANEL_ID,
            polling=1000,
            timeout=60_000,
        )
        bob_tab = bob.locator(f'.lm-TabBar-tab[data-id="{PANEL_ID}"]')
        bob_tab.click()
        expect(
            bob.locator(f'#{PANEL_ID} section[data-event="{made.json()["id"]}"]')
        ).to_have_attribute("data-phase", "upcoming")

        # alice opens bob's server from her panel (JupyterHub asks her once to authorize);
        # bob's sharing page shows that she did
        visit = open_from_panel(page, bob_row)
        visit.wait_for_url(
            lambda url: "oauth2/authorize" in url or "/user/bob/lab" in url, wait_until="commit"
        )
        if "oauth2/authorize" in visit.url:
            visit.get_by_role("button", name="Authorize").click()
            visit.wait_for_url(lambda url: "/user/bob/lab" in url, wait_until="commit")
        close_page(visit)
        bob.goto(f"{hub.url}/hub/continuum/sharing")
        seen = bob.locator('tr[data-kind="user"][data-name="alice"] td[data-field="opened"]')
        expect(seen).to_contain_text("last seen")
    except Exception:
        RESULTS.mkdir(exist_ok=True)
        # best effort: a page that hangs must not hide the failure itself
        with contextlib.suppress(Exception):
            page.screenshot(path=str(RESULTS / "workshop-panel-alice.png"), timeout=10_000)
            bob.screenshot(path=str(RESULTS / "workshop-panel-bob.png"), timeout=10_000)
        raise
    finally:
        close_context(bob_context)
        for name in ("alice", "bob"):  # both stop at once
            api(hub, "DELETE", f"/users/{name}/server")
        for name in ("alice", "bob"):
            if server_model(hub, name):
                stop_server(hub, name)
        delete_events(hub, alice, slurm_sites["alpha"])
        delete_events(hub, bob_hub, slurm_sites["alpha"])
        instructor(hub, "alice", member=False)
        instructor(hub, "bob", member=False)
