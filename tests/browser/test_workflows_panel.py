"""Batch runs from JupyterLab on the real stack: hub, ``workflows`` service, Slurm, Chromium.

The issue's scenario. alice starts JupyterLab on alpha and opens a notebook with a papermill
``parameters`` cell; its toolbar's *Batch* button opens *Run as batch job…*, pre-filled from that
cell, with the spawn form's estimate line for the chosen partition; she sweeps ``label`` over
three values on alpha's ``batch`` partition and submits. Then she **stops her server** (the
hub's home page) **and signs out**; the run (one Slurm job array) finishes without any server of
hers. She signs in again and starts a server on the *other* site, beta: its *Batch runs* panel
shows the run done with three done members, each member's executed notebook shows its value,
and she opens one. Also: a two-step chain built in the *Workflow…* dialog, saved as YAML and run
from the file browser. On failure a screenshot lands in ``test-results/``.
"""

from __future__ import annotations

import os
import pwd
import re
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import Page, expect

from continuum_hub.workflows import ACCESS_SCOPE, API_PREFIX
from fixtures.browser import start_lab
from fixtures.gateway import user_token
from fixtures.hub import server_model, stop_server
from fixtures.slurm import wait_until
from fixtures.workflow_runs import notebook_bytes

pytestmark = [
    pytest.mark.browser,
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.lab,
    pytest.mark.workflows,
]

LABELS = ["north", "south", "east"]
PANEL_ID = "continuum-workflows-panel"


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


def service_get(hub: Any, token: str, path: str) -> Any:
    """``GET`` the workflows service's ``api/v1/<path>`` as alice (JSON)."""
    response = requests.get(
        f"{hub.url}{API_PREFIX}/{path}", headers={"Authorization": f"token {token}"}, timeout=60
    )
    assert response.status_code == 200, response.text
    return response.json()


def cell_sources(notebook: dict[str, Any]) -> str:
    """All the cells' source text of a notebook (JSON: text or lists of lines)."""
    return "\n".join(
        c["source"] if isinstance(c["source"], str) else "".join(c["source"])
        for c in notebook["cells"]
    )


def submit_sweep(page: Page, hub_url: str, notebook: str, name: str) -> str:
    """From the notebook's *Batch* button, submit a 3-member sweep on alpha; the run's id."""
    page.goto(f"{hub_url}/user/alice/lab/tree/{notebook}?reset")
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
    # the spawn form's line, asked from the hub for this choice through the server
    expect(form.locator(".jp-ContinuumWorkflows-estimate")).to_have_text(
        re.compile(r"^(Expected start on|No estimate for) alpha / batch"), timeout=60_000
    )
    # long enough that the members still run when the server is gone
    form.locator('[name="parameters.sleep"]').fill("20")
    form.locator('[name="sweep.label"]').fill(", ".join(LABELS))
    expect(form.locator(".jp-ContinuumWorkflows-members")).to_have_text(
        "A sweep of 3 members (one job array)."
    )
    form.locator('[name="name"]').fill(name)
    dialog.get_by_role("button", name="Submit").click()
    expect(dialog).to_have_count(0, timeout=60_000)

    panel = page.locator(".jp-ContinuumWorkflows-panel")
    expect(panel).to_be_visible(timeout=30_000)
    row = panel.locator("tr[data-run]", has=page.locator('td[data-field="name"]', has_text=name))
    expect(row).to_have_count(1, timeout=30_000)
    expect(row.locator('td[data-field="where"]')).to_have_text("alpha › batch")
    run_id = row.get_attribute("data-run")
    assert run_id, "the run's row names no run"
    return run_id


def stop_and_sign_out(page: Page, hub: Any) -> None:
    """Stop the server from the hub's home page, then sign out (the provider forgets her too)."""
    page.goto(f"{hub.url}/hub/home")
    page.locator("#stop").click()
    wait_until(lambda: not server_model(hub, "alice"), timeout=120, interval=1.0, what="stop")
    page.goto(f"{hub.url}/hub/logout")
    expect(page.get_by_text(re.compile(r"^Sign in with")).first).to_be_visible(timeout=30_000)
    page.context.clear_cookies()


def test_a_sweep_outlives_the_server_and_is_opened_from_the_other_site(
    page: Page, hub, idp, slurm_sites, notebook: str
) -> None:
    name = f"scan-{secrets.token_hex(3)}"
    # to follow the run while alice has no server and no browser session (a token of hers)
    token = user_token(hub, idp, "alice", [ACCESS_SCOPE])
    try:
        start_lab(page, hub.url, "alice", idp.passwords["alice"], "alpha/interactive")
        run_id = submit_sweep(page, hub.url, notebook, name)
        stop_and_sign_out(page, hub)

        def finished() -> dict[str, Any] | None:
            run = service_get(hub, token, f"runs/{run_id}")
            assert not server_model(hub, "alice"), "a server of alice's came back"
            return run if run["state"] in ("done", "failed", "cancelled") else None

        run = wait_until(finished, timeout=600, interval=2.0, what=f"run {run_id} to end")
        assert run["state"] == "done", run
        assert [m["state"] for m in run["members"]] == ["done"] * 3, run["members"]
        for index, label in enumerate(LABELS):
            executed = service_get(hub, token, f"runs/{run_id}/notebook?member={index}")
            assert f'label = "{label}"' in cell_sources(executed)

        # back, on the other site
        start_lab(page, hub.url, "alice", idp.passwords["alice"], "beta/gpu")
        page.goto(f"{hub.url}/user/alice/lab?reset")
        tab = page.locator(f'.lm-TabBar-tab[data-id="{PANEL_ID}"]')
        expect(tab).to_be_visible(timeout=120_000)
        tab.click()
        panel = page.locator(".jp-ContinuumWorkflows-panel")
        expect(panel).to_be_visible(timeout=30_000)
        row = panel.locator(f'tr[data-run="{run_id}"]')
        expect(row.locator('td[data-field="where"]')).to_have_text("alpha › batch", timeout=60_000)
        expect(row.locator('td[data-field="state"]')).to_have_text("done — 3 members: 3 done")

        row.locator('button[data-action="compare"]').click()
        table = panel.locator("table[data-compare]")
        expect(table.locator("tbody tr")).to_have_count(3)
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


def add_step(page: Page, label: str, step: str) -> None:
    """Fill the *Workflow…* dialog's step form (the *Run as batch job* fields) and add it."""
    dialog = page.locator(".jp-Dialog")
    form = dialog.locator(".jp-ContinuumWorkflows-form")
    expect(form).to_be_visible(timeout=30_000)
    form.locator('select[name="where"]').select_option("alpha/batch")
    form.locator('[name="memory_gb"]').fill("1")
    form.locator('[name="walltime"]').fill("0:10")
    form.locator('[name="parameters.label"]').fill(label)
    form.locator('[name="name"]').fill(step)
    dialog.get_by_role("button", name="Add step", exact=True).click()
    expect(dialog.locator(".jp-ContinuumWorkflows-chain")).to_be_visible(timeout=30_000)


def build_chain(page: Page, hub_url: str, notebook: str, name: str) -> None:
    """*Workflow…* from the notebook's context menu: two steps on alpha, the second after the
    first, saved as ``<name>.yaml`` next to the notebook."""
    folder, file_name = notebook.rsplit("/", 1)
    page.goto(f"{hub_url}/user/alice/lab/tree/{folder}?reset")
    item = page.locator(".jp-DirListing-item", has_text=file_name)
    expect(item).to_be_visible(timeout=120_000)
    item.click(button="right")
    page.get_by_role("menuitem", name="Workflow…").click()
    add_step(page, "one", "first")
    dialog = page.locator(".jp-Dialog")
    dialog.locator('input[name="workflow-name"]').fill(name)
    dialog.get_by_role("button", name="Add step…").click()
    # the second step's notebook: the same one, chosen among the folder's notebooks
    expect(dialog.get_by_text("Add a step: its notebook")).to_be_visible(timeout=30_000)
    dialog.locator("input").first.fill(notebook)
    dialog.get_by_role("button", name="OK").click()
    add_step(page, "two", "second")
    chain = dialog.locator(".jp-ContinuumWorkflows-chain")
    expect(chain.locator("li[data-step]")).to_have_count(2)
    expect(chain.locator('li[data-step="second"] input[name="after.second"]')).to_be_checked()
    dialog.get_by_role("button", name="Save as YAML").click()
    expect(dialog).to_have_count(0, timeout=30_000)


def test_a_workflow_built_in_the_lab_runs_from_the_file_browser_grouped_in_the_panel(
    page: Page, hub, idp, slurm_sites, notebook: str
) -> None:
    """*Workflow…* builds a two-step chain (the second after the first) and saves it as YAML
    next to the notebook, a file the hub's own loader reads; the file browser's *Run Workflow*
    on it runs the chained steps, shown under the workflow's row in the file's order, done."""
    from continuum_hub.workflows.spec import load_workflow

    name = f"flow-{secrets.token_hex(3)}"
    folder = notebook.rsplit("/", 1)[0]
    account = pwd.getpwnam("alice")
    try:
        start_lab(page, hub.url, "alice", idp.passwords["alice"], "alpha/interactive")
        build_chain(page, hub.url, notebook, name)
        saved = Path(account.pw_dir) / folder / f"{name}.yaml"
        wait_until(saved.exists, timeout=30, what="the workflow file")
        workflow = load_workflow(saved)
        assert [(s.name, s.depends_on) for s in workflow.steps] == [
            ("first", ()),
            ("second", ("first",)),
        ]
        assert workflow.step("second").parameters["label"] == "two"

        page.goto(f"{hub.url}/user/alice/lab/tree/{folder}")
        item = page.locator(".jp-DirListing-item", has_text=f"{name}.yaml")
        expect(item).to_be_visible(timeout=120_000)
        item.click(button="right")
        page.get_by_role("menuitem", name="Run Workflow").click()

        panel = page.locator(".jp-ContinuumWorkflows-panel")
        expect(panel).to_be_visible(timeout=60_000)
        head = panel.locator(
            "tr[data-workflow]", has=page.locator('td[data-field="name"]', has_text=name)
        )
        expect(head).to_have_count(1, timeout=60_000)
        steps = head.locator("xpath=following-sibling::tr[position() <= 2]")
        expect(steps.locator('td[data-field="name"]')).to_have_text(
            [re.compile(r"^first · "), re.compile(r"^second · ")], timeout=60_000
        )
        expect(head.locator('td[data-field="state"]')).to_have_text("done", timeout=300_000)
        expect(steps.locator('td[data-field="state"]')).to_have_text(["done", "done"])
    finally:
        stop_server(hub, "alice")
