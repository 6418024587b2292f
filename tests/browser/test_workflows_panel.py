"""Batch runs from JupyterLab on the real stack: hub, ``workflows`` service, Slurm, Chromium.

alice starts JupyterLab on alpha and opens a notebook with a papermill ``parameters`` cell; its
toolbar's *Batch* button opens *Run as batch job…*, pre-filled from that cell; she sweeps
``label`` over three values on alpha's ``batch`` partition and submits. The *Batch runs* panel
follows the run (one Slurm job array) until its three members are done, compares them (one
value each), and opens a member's executed notebook, which shows the value papermill injected.
On failure a screenshot lands in ``test-results/``.
"""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from fixtures.browser import start_lab
from fixtures.hub import stop_server
from fixtures.workflow_runs import notebook_bytes

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.lab,
    pytest.mark.workflows,
]

LABELS = ["north", "south", "east"]


@pytest.fixture
def notebook() -> Iterator[str]:
    """A notebook with a parameters cell in alice's home; its path relative to her home."""
    account = pwd.getpwnam("alice")
    folder = Path(account.pw_dir) / f"workflows-test-{secrets.token_hex(4)}"
    folder.mkdir(mode=0o700)
    path = folder / "scan.ipynb"
    path.write_bytes(notebook_bytes())
    for item in (folder, path):
        os.chown(item, account.pw_uid, account.pw_gid)
    try:
        yield f"{folder.name}/scan.ipynb"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_a_notebook_runs_as_a_three_member_sweep_from_the_dialog(
    page: Page, hub, idp, slurm_sites, notebook: str
) -> None:
    name = f"scan-{secrets.token_hex(3)}"
    try:
        start_lab(page, hub.url, "alice", idp.passwords["alice"], "alpha/interactive")
        page.goto(f"{hub.url}/user/alice/lab/tree/{notebook}?reset")
        button = page.locator(".jp-ContinuumWorkflows-toolbarButton")
        expect(button).to_be_visible(timeout=120_000)
        button.click()

        dialog = page.locator(".jp-Dialog")
        form = dialog.locator(".jp-ContinuumWorkflows-form")
        expect(form).to_be_visible(timeout=30_000)
        # pre-filled from the parameters cell, typed
        expect(form.locator('[name="parameters.label"]')).to_have_value("default")
        expect(form.locator('select[name="parameters.fail"]')).to_have_value("false")
        expect(form.locator('[name="parameters.sleep"]')).to_have_attribute("type", "number")
        form.locator('select[name="where"]').select_option("alpha/batch")
        form.locator('[name="memory_gb"]').fill("1")
        form.locator('[name="walltime"]').fill("0:10")
        form.locator('[name="sweep.label"]').fill(", ".join(LABELS))
        expect(form.locator(".jp-ContinuumWorkflows-members")).to_have_text(
            "A sweep of 3 members (one job array)."
        )
        form.locator('[name="name"]').fill(name)
        dialog.get_by_role("button", name="Submit").click()
        expect(dialog).to_have_count(0, timeout=60_000)

        panel = page.locator(".jp-ContinuumWorkflows-panel")
        expect(panel).to_be_visible(timeout=30_000)
        row = panel.locator(
            "tr[data-run]", has=page.locator('td[data-field="name"]', has_text=name)
        )
        expect(row).to_have_count(1, timeout=30_000)
        expect(row.locator('td[data-field="where"]')).to_have_text("alpha › batch")
        expect(row.locator('td[data-field="state"]')).to_have_text(
            "done — 3 members: 3 done", timeout=300_000
        )

        row.locator('button[data-action="compare"]').click()
        table = panel.locator("table[data-compare]")
        members = table.locator("tbody tr")
        expect(members).to_have_count(3)
        for index, label in enumerate(LABELS):
            member = table.locator(f'tr[data-member="{index}"]')
            expect(member.locator('td[data-parameter="label"]')).to_have_text(label)
            expect(member.locator('td[data-field="state"]')).to_have_text("done")

        table.locator('tr[data-member="1"] button[data-action="open"]').click()
        expect(page.locator(".lm-TabBar-tab", has_text="output-1.ipynb")).to_be_visible(
            timeout=60_000
        )
        executed = page.locator(".jp-NotebookPanel:visible .jp-Notebook")
        expect(executed).to_contain_text(f'label = "{LABELS[1]}"', timeout=60_000)
    finally:
        stop_server(hub, "alice")
