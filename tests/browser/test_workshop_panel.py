"""Workshops inside JupyterLab on the real stack: the instructor's panel and a participant's
message, in Debian's Chromium.

alice instructs an event on alpha that bob joined; *Start all* (the hub's REST call) starts
bob's server in the event's reservation, alice's own starts too, and both open JupyterLab.
Her lab has the *Workshops* panel (added because she instructs an event), which lists bob
with his server's state; she sends a message from the panel.  bob's JupyterLab, open since
before, shows it as a notification and in *Workshop Messages* (which asks at once rather
than wait for the next 30-second check); bob, who instructs nothing, has no such panel.
On failure a screenshot of alice's page lands in ``test-results/``.
"""

from __future__ import annotations

import re
import secrets

import pytest
from playwright.sync_api import Browser, Page, expect

from fixtures.browser import RESULTS, sign_in
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


def test_the_instructor_panel_lists_bob_and_his_lab_shows_her_message(
    page: Page, chromium: Browser, hub, idp, slurm_sites
) -> None:
    alice = hub_login(hub, idp, "alice")
    hub_login(hub, idp, "bob")  # a hub user (participants have signed in once)
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

        # a message to everybody, from the panel
        section.locator('button[data-action="message"]').click()
        page.locator("textarea[name=message]").fill(text)
        page.get_by_role("button", name="Send", exact=True).click()
        expect(page.locator(".Toastify__toast", has_text="Message sent")).to_be_visible()
        RESULTS.mkdir(exist_ok=True)
        page.locator(f"#{PANEL_ID}").screenshot(path=str(RESULTS / "workshop-panel.png"))

        # bob's lab, open since before the message: *Workshop Messages* asks at once (the
        # periodic check, every 30 s, would find it too), the message pops up and is listed
        expect(bob.locator("#jp-main-dock-panel")).to_be_visible(timeout=120_000)
        expect(bob.locator(f'.lm-TabBar-tab[data-id="{PANEL_ID}"]')).to_have_count(0)
        bob.locator("#jp-main-dock-panel").click()
        bob.keyboard.press("Control+Shift+c")
        bob.locator(".lm-CommandPalette-input").fill("Workshop Messages")
        bob.keyboard.press("Enter")
        listed = bob.locator(".jp-ContinuumWorkshop-messages li").first
        expect(listed).to_contain_text(text)
        expect(listed).to_contain_text("Panel test · alice")
        toast = bob.locator(".Toastify__toast", has_text=text)
        expect(toast).to_be_visible()
        expect(toast).to_contain_text("Panel test: ")
    except Exception:
        RESULTS.mkdir(exist_ok=True)
        bob.screenshot(path=str(RESULTS / "workshop-panel-bob.png"), full_page=True)
        raise
    finally:
        bob_context.close()
        for name in ("alice", "bob"):  # both stop at once
            api(hub, "DELETE", f"/users/{name}/server")
        for name in ("alice", "bob"):
            if server_model(hub, name):
                stop_server(hub, name)
        delete_events(hub, alice, slurm_sites["alpha"])
        instructor(hub, "alice", member=False)
