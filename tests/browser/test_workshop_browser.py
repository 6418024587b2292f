"""A whole workshop in Debian's Chromium (issue 13, "Done when": the browser test).

Alice, an instructor of ``vo.hep.example`` for this module, signs in, follows the navigation
bar's *Events* and creates an event on the events page ``/hub/continuum/events`` (three seats
on alpha, one of them a guest seat, a menu of two profiles, open to every federated identity,
material: a folder under the session hub's ``EventManager.material_roots``) and reads its join
link and guest code there.  Three participants, each in their own browser context, open the
link: Bob and Dave sign in at the demo provider on the way, a guest types the code; each starts
the event's profile and lands in JupyterLab, whose file browser shows the material.  The
instructor's view lists them as running (their jobs in the event's reservation); Alice opens
Bob's server with the view's *Open* button (the event's sharing policy, JupyterHub's authorize
page) and sees his edited notebook; she changes the material upstream and pushes the update
from the events page: Bob's edit stays, upstream's copy arrives beside it, the new file
arrives.  She ends the event: nothing of it is left in ``squeue``, its reservation is gone, the
guest's pool lease is released and the guest user deleted.  On failure a screenshot of Alice's
page lands in ``test-results/``.
"""

from __future__ import annotations

import json
import pwd
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from continuum_federation.accounts import ensure_unix_user
from fixtures.browser import close_context, close_page, sign_in
from fixtures.hub import api, hub_login, server_model, stop_server
from fixtures.slurm import squeue, wait_until
from fixtures.workshop_events import delete_events, leases, show_reservation
from fixtures.workshops import instructor

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.workshops]

TITLE = "Browser workshop"
FOLDER = "Browser-workshop"  # the title as a plain name: the participants' copy
PARTICIPANTS = ("bob", "dave")
GUEST_POOL = ("wsguest1", "wsguest2")
#: a participant's lab: sign-in, a Slurm job and JupyterLab's first load on a busy machine
LAB_TIMEOUT = 120_000


def notebook(text: str) -> str:
    """A one-cell notebook whose code is ``text``."""
    cell = {"cell_type": "code", "source": text, "metadata": {}, "outputs": []}
    cell["execution_count"] = None
    model = {"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    return json.dumps(model)


def homes() -> list[Path]:
    return [Path(pwd.getpwnam(name).pw_dir) for name in (*PARTICIPANTS, *GUEST_POOL)]


def stop_if_running(hub, user: str) -> None:
    if api(hub, "GET", f"/users/{user}").status_code == 200 and server_model(hub, user):
        stop_server(hub, user)


@pytest.fixture
def workshop(hub, idp, slurm_sites, federation_root: Path) -> Iterator[dict[str, Any]]:
    """The material folder and Alice's REST session (for the clean-up); afterwards every event
    of hers, the servers, her instructor group and the material's copies are gone."""
    for name in GUEST_POOL:
        ensure_unix_user(name)
    for home in homes():
        shutil.rmtree(home / FOLDER, ignore_errors=True)
    material = federation_root / "material" / "browser"
    material.mkdir(parents=True, exist_ok=True)
    for path in (material.parent, material):
        path.chmod(0o755)
    (material / "intro.ipynb").write_text(notebook("print('material v1')"))
    for user in PARTICIPANTS:  # a server started before the event would run outside it
        stop_if_running(hub, user)
    alice = hub_login(hub, idp, "alice")
    state: dict[str, Any] = {"material": material, "users": list(PARTICIPANTS)}
    try:
        yield state
    finally:
        for user in state["users"]:
            stop_if_running(hub, user)
        delete_events(hub, alice, slurm_sites["alpha"])
        instructor(hub, "alice", member=False)
        shutil.rmtree(material, ignore_errors=True)
        for home in homes():
            shutil.rmtree(home / FOLDER, ignore_errors=True)


def create_event(page: Page, hub_url: str, material: Path) -> dict[str, str]:
    """Go to the events page through the navigation bar, fill its form; the join link, guest
    code and instructor view it shows."""
    page.goto(f"{hub_url}/hub/home")
    page.get_by_role("link", name="Events", exact=True).click()
    page.wait_for_url(f"{hub_url}/hub/continuum/events")
    page.get_by_label("Title", exact=True).fill(TITLE)
    page.get_by_label("Site and partition").select_option("alpha/interactive")
    page.get_by_label("Seats", exact=True).fill("3")
    page.get_by_label("Memory (GB)").fill("1")
    page.get_by_label("Walltime").fill("0:30")
    page.get_by_role("button", name="Add a profile").click()  # a menu: "lab" or "profile 2"
    page.get_by_label("Kind of material").select_option("folder")
    page.get_by_label("Material location").fill(str(material))
    page.get_by_label("anyone who signs in through the hub's providers").check()
    page.get_by_label("Guest seats").fill("1")
    page.get_by_role("button", name="Create event").click()
    codes = page.locator("#created-guest-codes li")
    expect(codes).to_have_count(1)
    view = page.locator("#created-instructor-url").get_attribute("href") or ""
    return {
        "join": page.locator("#created-join-url").input_value(),
        "guest_code": codes.first.inner_text().strip(),
        "view": f"{hub_url}{view}",
        "id": view.split("/")[-2],
    }


def join_as_guest(context: BrowserContext, join_url: str, code: str) -> tuple[Page, str]:
    page = context.new_page()
    page.goto(f"{join_url}/guest")
    page.get_by_label("Guest code").fill(code)
    page.get_by_role("button", name="Join as guest").click()
    page.wait_for_url(re.compile(r"/start$"))
    return page, page.locator("#continuum-join code").inner_text().strip()


def join_federated(context: BrowserContext, hub_url: str, join_url: str, user: str, idp) -> Page:
    page = context.new_page()
    sign_in(page, hub_url, user, idp.passwords[user], start_url=join_url)
    page.wait_for_url(re.compile(r"/start$"))  # back at the event after the provider
    expect(page.locator('input[name="profile"]')).to_have_count(2)  # the event's menu
    return page


def start_server(page: Page) -> None:
    """The start page's button; the spawn goes on while the test drives other pages."""
    page.get_by_role("button", name="Start my server").click()


def lab_shows_material(page: Page, hub_url: str, user: str) -> None:
    """Wait for the participant's JupyterLab, then see the material in its file browser."""
    # on to a fresh workspace at the material's folder as soon as the lab's URL is reached
    # (the account's saved layout may hide the file browser; one JupyterLab load, not two)
    lab = re.compile(rf"/user/{re.escape(user)}/lab")
    page.wait_for_url(lab, timeout=LAB_TIMEOUT, wait_until="commit")
    page.goto(f"{hub_url}/user/{user}/lab/tree/{FOLDER}?reset", wait_until="commit")
    listing = page.locator(".jp-DirListing-content")
    expect(listing.get_by_text("intro.ipynb")).to_be_visible(timeout=LAB_TIMEOUT)


def edit_in_lab(page: Page, user: str, path: str, content: str) -> None:
    """Save ``content`` over ``path`` through the participant's JupyterLab (its contents API,
    with the server's XSRF cookie), as the lab's editor would."""
    status = page.evaluate(
        """async ([url, content]) => {
            const xsrf = document.cookie.match(/_xsrf=([^;]+)/)[1];
            const response = await fetch(url, {
                method: "PUT",
                headers: {"Content-Type": "application/json", "X-XSRFToken": xsrf},
                body: JSON.stringify({type: "notebook", format: "json", content: content}),
            });
            return response.status;
        }""",
        [f"/user/{user}/api/contents/{path}", json.loads(content)],
    )
    assert status == 200, status


def open_participant(page: Page, user: str) -> Page:
    """The view's *Open* button: a new tab on the participant's server, authorized once."""
    with page.context.expect_page() as opened:
        page.locator(f'[data-open="{user}"]').click()
    tab = opened.value
    tab.set_default_timeout(60_000)
    lab = f"/user/{user}/lab"
    tab.wait_for_url(lambda url: "oauth2/authorize" in url or lab in url, wait_until="commit")
    if "oauth2/authorize" in tab.url:  # another user's server: JupyterHub asks once
        tab.get_by_role("button", name="Authorize").click()
        tab.wait_for_url(lambda url: lab in url, wait_until="commit")
    return tab


def test_instructor_runs_a_workshop_in_the_browser(
    page: Page, chromium: Browser, hub, idp, slurm_sites, workshop
) -> None:
    site = slurm_sites["alpha"]
    started = last = time.monotonic()

    def phase(what: str) -> None:  # where the time goes (CI's budget: 150 s)
        nonlocal last
        now = time.monotonic()
        print(f"{what}: {now - last:.1f} s (total {now - started:.1f} s)")
        last = now

    sign_in(page, hub.url, "alice", idp.passwords["alice"])
    page.wait_for_url(lambda url: url.startswith(hub.url) and "oauth_callback" not in url)
    instructor(hub, "alice")  # after signing in: a sign-in syncs her groups from entitlements
    ev = create_event(page, hub.url, workshop["material"])
    assert ev["join"].startswith(f"{hub.url}/hub/continuum/join/")
    phase("event created on the events page")

    contexts = [chromium.new_context(viewport={"width": 1200, "height": 800}) for _ in range(3)]
    for context in contexts:  # JupyterLab's pages load slowly on a busy machine
        context.set_default_timeout(60_000)
    try:
        tabs: dict[str, Page] = {}
        for user, ctx in zip(PARTICIPANTS, contexts, strict=False):
            tabs[user] = join_federated(ctx, hub.url, ev["join"], user, idp)
            start_server(tabs[user])  # the job starts while the next one signs in
        guest_tab, guest = join_as_guest(contexts[2], ev["join"], ev["guest_code"])
        assert guest.startswith("guest-")
        tabs[guest] = guest_tab
        workshop["users"].append(guest)
        start_server(guest_tab)
        for user, tab in tabs.items():
            lab_shows_material(tab, hub.url, user)
        # Bob edits the material's notebook (saved through his lab)
        edit_in_lab(
            tabs["bob"], "bob", f"{FOLDER}/intro.ipynb", notebook("answer = 'bob-was-here'")
        )
        for tab in tabs.values():  # three idle JupyterLabs would only slow the machine
            close_page(tab)
        phase("three participants in JupyterLab")

        # the instructor's view: everybody running, in the event's reservation
        page.goto(ev["view"])
        for user in tabs:
            row = page.locator(f'#participants tr[data-user="{user}"]')
            expect(row).to_have_attribute("data-state", "running", timeout=30_000)
        name = f"continuum-{ev['id']}"
        jobs = {row[0] for row in squeue(site, "--format=%i|%v") if row[1] == name}
        assert len(jobs) == 3, squeue(site, "--format=%i|%u|%v|%T")
        phase("the instructor's view")

        # Alice opens Bob's server and sees his version
        shared = open_participant(page, "bob")
        shared.goto(f"{hub.url}/user/bob/lab/tree/{FOLDER}/intro.ipynb?reset", wait_until="commit")
        expect(shared.locator(".jp-Notebook .jp-Cell").first).to_contain_text(
            "bob-was-here", timeout=LAB_TIMEOUT
        )
        shared.close()
        phase("Bob's notebook through sharing")

        # upstream changes; Alice pushes the update from the events page
        material = workshop["material"]
        (material / "intro.ipynb").write_text(notebook("print('material v2')"))
        (material / "day2.ipynb").write_text(notebook("print('day two')"))
        page.goto(f"{hub.url}/hub/continuum/events")
        page.locator(f'[data-push="{ev["id"]}"]').click()
        expect(page.locator("#events-result")).to_contain_text("Material update pushed")
        bobs = Path(pwd.getpwnam("bob").pw_dir) / FOLDER
        wait_until((bobs / "day2.ipynb").exists, 30, interval=0.5, what="the pushed file")
        wait_until((bobs / "intro.upstream.ipynb").exists, 10, what="upstream's copy beside")
        assert "bob-was-here" in (bobs / "intro.ipynb").read_text()
        assert "material v2" in (bobs / "intro.upstream.ipynb").read_text()
        phase("the pushed update")

        # the end: servers, reservation, the guest's lease and the guest go
        account = leases(hub)[guest]
        page.goto(ev["view"])
        page.once("dialog", lambda dialog: dialog.accept())
        with page.expect_download() as csv:
            page.get_by_role("button", name="End event").click()
        assert "bob" in Path(csv.value.path()).read_text()
        assert account in GUEST_POOL
        wait_until(
            lambda: not jobs & {row[0] for row in squeue(site, "--format=%i")},
            60,
            0.5,
            what="no job of the event in squeue",
        )
        wait_until(lambda: show_reservation(site, name).returncode != 0, 30, 0.5, "no reservation")
        wait_until(lambda: guest not in leases(hub), 30, 0.5, what="the guest's lease released")
        wait_until(
            lambda: api(hub, "GET", f"/users/{guest}").status_code == 404, 30, 0.5, "guest gone"
        )
        phase("the end")
        # the guest's server asked for a provider token it cannot have: "none", not "sign in
        # again" (a guest has no sign-in to renew)
        log = hub.log(5000)
        assert f"404 GET /hub/api/continuum/token ({guest}@" in log
        assert f"401 GET /hub/api/continuum/token ({guest}@" not in log
    finally:
        for context in contexts:
            close_context(context)
