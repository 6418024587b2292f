"""Real-time collaboration in Debian's Chromium (issue 13 item 5, ``jupyter-collaboration``).

Bob's server runs and his JupyterLab shows a notebook; he shares the server with Alice through
JupyterHub's share API (what the sharing page's form calls); Alice opens the same notebook
through the share (JupyterHub's authorize page once) and types into its cell: Bob's open
notebook shows her text without a reload, and his edit then shows in hers.  Both labs edit the
server's one shared document (``jupyter_server_ydoc``), nothing is saved in between.  On failure
a screenshot of Bob's page lands in ``test-results/``.
"""

from __future__ import annotations

import json
import os
import pwd
import re
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import Browser, Page, expect

from fixtures.browser import close_context, sign_in
from fixtures.hub import api, hub_login, stop_server, wait_for_server

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.workshops]

OPTIONS = {"site": "alpha", "partition": "interactive", "cores": 1, "walltime": "0:30"}
NOTEBOOK = "collaboration.ipynb"
#: JupyterLab's first load (and the document's first sync) on a busy machine
LAB_TIMEOUT = 120_000
#: an edit crossing from one lab to the other through the server's shared document
SYNC_TIMEOUT = 30_000


def call(
    hub, browser: requests.Session, method: str, path: str, **kwargs: Any
) -> requests.Response:
    """``path`` below ``/hub/api`` as a signed-in user, with the hub's XSRF token."""
    headers = {"X-XSRFToken": browser.cookies.get("_xsrf", path="/hub/")}
    return browser.request(
        method, f"{hub.url}/hub/api{path}", headers=headers, timeout=60, **kwargs
    )


def bobs_notebook() -> Path:
    """A one-cell notebook in Bob's home, his own file (the server runs as him)."""
    account = pwd.getpwnam("bob")
    path = Path(account.pw_dir) / NOTEBOOK
    cell = {"cell_type": "code", "source": "# together", "metadata": {}, "outputs": []}
    cell["execution_count"] = None
    # a kernel named: JupyterLab starts it instead of asking (a modal dialog) in each lab
    kernel = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    model = {
        "cells": [cell],
        "metadata": {"kernelspec": kernel},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path.write_text(json.dumps(model))
    os.chown(path, account.pw_uid, account.pw_gid)
    return path


def type_in_cell(page: Page, text: str) -> None:
    """Click into the notebook's first cell, go to its end and type ``text`` like a person."""
    page.locator(".jp-Notebook .jp-Cell .cm-content").first.click()
    page.keyboard.press("Control+End")
    page.keyboard.type(text)


def test_two_labs_edit_one_notebook_live(
    page: Page, chromium: Browser, hub, idp, slurm_sites
) -> None:
    hub_login(hub, idp, "alice")  # a hub user, to be named in the share
    bob = hub_login(hub, idp, "bob")
    path = bobs_notebook()
    started = api(hub, "POST", "/users/bob/server", json={"user_options": OPTIONS})
    assert started.status_code in (201, 202, 400), started.text  # 400: already running
    alice_context = chromium.new_context(viewport={"width": 1400, "height": 900})
    try:
        wait_for_server(hub, "bob", timeout=120)
        sign_in(page, hub.url, "bob", idp.passwords["bob"])
        page.wait_for_url(lambda url: url.startswith(hub.url) and "oauth_callback" not in url)
        lab = f"{hub.url}/user/bob/lab/tree/{NOTEBOOK}?reset"
        page.goto(lab, wait_until="commit")
        bobs_cell = page.locator(".jp-Notebook .jp-Cell").first
        expect(bobs_cell).to_contain_text("# together", timeout=LAB_TIMEOUT)

        shared = call(hub, bob, "POST", "/shares/bob/", json={"user": "alice"})
        assert shared.status_code == 200, shared.text

        alice = alice_context.new_page()
        alice.set_default_timeout(60_000)
        sign_in(alice, hub.url, "alice", idp.passwords["alice"])
        alice.wait_for_url(lambda url: url.startswith(hub.url) and "oauth_callback" not in url)
        alice.goto(lab, wait_until="commit")
        alice.wait_for_url(re.compile(r"oauth2/authorize|/user/bob/lab"), wait_until="commit")
        if "oauth2/authorize" in alice.url:  # another user's server: JupyterHub asks once
            alice.get_by_role("button", name="Authorize").click()
        alices_cell = alice.locator(".jp-Notebook .jp-Cell").first
        expect(alices_cell).to_contain_text("# together", timeout=LAB_TIMEOUT)

        type_in_cell(alice, "\nalice_wrote = 1")
        expect(bobs_cell).to_contain_text("alice_wrote = 1", timeout=SYNC_TIMEOUT)
        type_in_cell(page, "\nbob_answered = 2")
        expect(alices_cell).to_contain_text("bob_answered = 2", timeout=SYNC_TIMEOUT)
        # the same document: Bob's lab holds both edits too, neither lab reloaded
        expect(bobs_cell).to_contain_text("alice_wrote = 1")
    finally:
        close_context(alice_context)
        call(hub, bob, "PATCH", "/shares/bob/", json={"user": "alice"})
        stop_server(hub, "bob")
        path.unlink(missing_ok=True)
