"""The *Catalogue* panel on the real stack: hub, ``catalogue`` service, Slurm, Chromium.

The issue's scenario.  alice (HEP and radio VOs) starts JupyterLab on alpha, searches the
catalogue for "radio" in its side panel, filters to site beta (and to FITS images), opens an
entry — its replica at beta is one she may use — and presses *Insert code*: with no notebook
open, a new notebook gets the cell, which she runs; the cell opens the demo archive's file in
her kernel.  Then *Start near the data* opens the hub's spawn page for a named server near the
data in a new tab, and a server starts **on beta** (the hub's record of its job says so).  bob
(HEP only) asks the same service: the radio VO's private entries are not in his results and
not his by id either, while alice's results hold them.

The session hub's built-in source ``demo`` harvests the demo archive (``fixtures.catalogue``).
On failure a screenshot lands in ``test-results/``.
"""

from __future__ import annotations

import pwd
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests
from playwright.sync_api import Page, expect

from continuum_hub.catalogue import ACCESS_SCOPE, SERVICE_PREFIX
from fixtures.browser import open_side_panel, start_lab
from fixtures.gateway import user_token
from fixtures.hub import api, stop_server
from fixtures.slurm import wait_until

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.lab,
    pytest.mark.catalogue,
]

PANEL_ID = "continuum-catalogue-panel"
NEAR = "near-beta"
RADIO = "vo.radio.example"


def search(hub: Any, token: str, **query: Any) -> dict[str, Any]:
    """The catalogue service's search as the token's owner."""
    response = requests.get(
        f"{hub.url}{SERVICE_PREFIX}api/v1/search",
        params=query,
        headers={"Authorization": f"token {token}"},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    return response.json()


def servers(hub: Any, user: str) -> dict[str, Any]:
    """The user's servers as the hub's admin sees them (with their state)."""
    response = api(hub, "GET", f"/users/{user}")
    response.raise_for_status()
    return response.json().get("servers", {})


@pytest.fixture
def cleanup(hub: Any) -> Iterator[None]:
    """Afterwards: alice's servers stopped (the named one deleted) and new notebooks removed."""
    home = Path(pwd.getpwnam("alice").pw_dir)
    before = set(home.glob("Untitled*.ipynb"))
    try:
        yield
    finally:
        api(hub, "DELETE", f"/users/alice/servers/{NEAR}", json={"remove": True})
        stop_server(hub, "alice")
        for path in set(home.glob("Untitled*.ipynb")) - before:
            path.unlink(missing_ok=True)


def harvested(hub: Any, token: str) -> dict[str, Any]:
    """The first answer with FITS images of the demo archive at beta (the built-in source
    harvests in the service's background after the hub starts)."""
    return wait_until(
        lambda: search(hub, token, q="radio", site="beta", format="fits", source="demo")["total"],
        timeout=90,
        interval=1.0,
        what="the demo archive harvested",
    )


def test_alice_finds_opens_and_starts_near_radio_data_bob_not_the_private_ones(
    cleanup: None, page: Page, hub: Any, idp: Any, slurm_sites: Any
) -> None:
    alice = user_token(hub, idp, "alice", [ACCESS_SCOPE])
    bob = user_token(hub, idp, "bob", [ACCESS_SCOPE])
    harvested(hub, alice)

    # bob does not see the radio VO's private entries: not found, not counted, not by id
    private = [
        e["id"]
        for e in search(hub, alice, q="radio", vo=RADIO, limit=200)["entries"]
        if e["visibility"] == "vo"
    ]
    assert private, "the demo archive has private radio entries alice can see"
    seen = search(hub, bob, q="radio", limit=200, facets=1)
    assert not [e for e in seen["entries"] if e["visibility"] == "vo" and e["vo"] == RADIO]
    assert not set(private) & {e["id"] for e in seen["entries"]}
    for entry_id in private[:3]:
        response = requests.get(
            f"{hub.url}{SERVICE_PREFIX}api/v1/entries/{quote(entry_id, safe='')}",
            headers={"Authorization": f"token {bob}"},
            timeout=30,
        )
        assert response.status_code == 404, (entry_id, response.text)

    start_lab(page, hub.url, "alice", idp.passwords["alice"], "alpha/interactive")
    open_side_panel(page, hub.url, "alice", PANEL_ID)
    panel = page.locator(".jp-ContinuumCatalogue-panel")
    panel.get_by_label("Search datasets, tables and software").fill("radio")
    # the status line names the sources that answered
    expect(panel.locator('.jp-ContinuumCatalogue-sources [data-source="demo"]')).to_have_count(
        1, timeout=30_000
    )
    for facet, value in (("site", "beta"), ("format", "fits")):
        box = panel.locator(f'input[data-facet="{facet}"][value="{value}"]')
        box.check()
        expect(box).to_be_checked()
    rows = panel.locator(".jp-ContinuumCatalogue-row[data-entry-id]")
    expect(rows.first).to_be_visible(timeout=30_000)
    rows.first.click()

    view = panel.locator(".jp-ContinuumCatalogue-entry")
    beta = view.locator('tr[data-site="beta"]')
    expect(beta.locator('td[data-field="access"]')).to_have_text("you may use it", timeout=30_000)
    expect(beta.locator('td[data-field="state"]')).to_have_text("available")
    expect(beta.locator('input[type="radio"]')).to_be_checked()

    view.locator('button[data-action="insert-code"]').click()
    cell = page.locator(".jp-NotebookPanel:visible .jp-Cell.jp-mod-active")
    expect(cell.locator(".jp-InputArea")).to_contain_text("fits.open", timeout=60_000)
    # like a person, wait until the new notebook's kernel is connected and idle: code run
    # before that is dropped by JupyterLab
    kernel_status = page.locator(".jp-StatusBar-Widget", has_text="| Idle")
    expect(kernel_status.first).to_be_visible(timeout=90_000)
    cell.locator(".cm-content").click()
    page.keyboard.press("Shift+Enter")
    output = page.locator(".jp-NotebookPanel:visible .jp-OutputArea-output")
    # hdul.info() lists the file's HDUs: the demo file really opened in alice's kernel
    expect(output.first).to_contain_text("PRIMARY", timeout=90_000)
    expect(page.locator(".jp-NotebookPanel:visible [data-mime-type*='error']")).to_have_count(0)

    with page.expect_popup() as opened:
        view.locator('button[data-action="start-near"]').click()
    spawn = opened.value
    # the spawn page (or, once the hub took the query, its pending page) of the named server
    where = rf"/hub/spawn(-pending)?/alice/{NEAR}\?site=beta&data_sites=beta&datasets=demo%3A"
    assert re.search(where, spawn.url), spawn.url

    def started() -> str | None:
        if NEAR in servers(hub, "alice"):
            return "spawning"
        form = spawn.locator("select[name=target]")
        return "form" if form.count() and form.is_visible() else None

    if wait_until(started, timeout=60, interval=0.5, what="the spawn page") == "form":
        # the form came back preselected near the data: start it as shown
        expect(spawn.locator("select[name=target]")).to_have_value(re.compile(r"^beta/"))
        spawn.get_by_role("button", name="Start").click()

    def ready() -> dict[str, Any] | None:
        model = servers(hub, "alice").get(NEAR)
        return model if model and model.get("ready") else None

    model = wait_until(ready, timeout=180, interval=1.0, what=f"alice's server {NEAR}")
    request = model["state"]["request"]
    assert request["site"] == "beta", request
