"""Budgets through the session's hub: a spawn that would pass alice's budget is refused before
anything reaches Slurm, with the message and the refusal counted in ``/hub/metrics``; the spawn
form (Debian's Chromium) shows the 80 % warning and the refusal before she submits.

Alice gets what is "left" through an admin override in the hub's usage ledger (her committed
use this month plus that much): the session registry (``sites.demo.yaml``) serves every other
test, and the registry's ``budgets`` are covered by ``tests/unit/test_budgets.py``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
import requests
from playwright.sync_api import Page, expect
from prometheus_client.parser import text_string_to_metric_families

from continuum_spawners.ledger import ENV_URL, JobLedger, ledger_url, month_start
from fixtures.browser import sign_in
from fixtures.hub import api, estimate, forget_named_servers, hub_login, scrape_token_path
from fixtures.slurm import squeue

pytestmark = [pytest.mark.integration, pytest.mark.operations]

FOUR_CORES_ONE_HOUR = {
    "site": "alpha",
    "partition": "interactive",
    "cores": 4,
    "memory_gb": 2,
    "walltime": "1:00",
}


@pytest.fixture
def leave_alice(hub, monkeypatch) -> Iterator[Callable[[float], None]]:
    """``leave_alice(h)``: alice has ``h`` core-hours left this month (an admin override in the
    hub's ledger); the override is removed after the test."""
    # the hub's ledger: the default beside its database (whatever this process was told)
    monkeypatch.delenv(ENV_URL, raising=False)
    ledger = JobLedger(ledger_url(f"sqlite:///{hub.state_dir / 'jupyterhub.sqlite'}"))

    def leave(core_hours: float) -> None:
        used = ledger.totals(user="alice", since=month_start(datetime.now(UTC)))
        ledger.set_override("alice", {"core_hours": used.committed_core_hours + core_hours})

    yield leave
    ledger.set_override("alice", None)
    # the form's page made a named server (refused spawns keep it): the hub allows three
    forget_named_servers(hub, "alice")


def alices_jobs(site) -> set[str]:
    return {job_id for job_id, user in squeue(site, "--format=%i|%u") if user == "alice"}


def refusals(hub, federation_root) -> float:
    """``continuum_budget_refusals_total`` of alpha's server core-hours in ``/hub/metrics``."""
    token = scrape_token_path(federation_root).read_text().strip()
    text = requests.get(
        f"{hub.url}/hub/metrics", headers={"Authorization": f"token {token}"}, timeout=30
    ).text
    wanted = {"site": "alpha", "kind": "server", "resource": "core_hours"}
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "continuum_budget_refusals"
        for sample in family.samples
        if sample.name.endswith("_total") and sample.labels == wanted
    )


def test_a_spawn_past_the_budget_is_refused_with_the_message(
    hub, idp, slurm_sites, federation_root, leave_alice
):
    browser = hub_login(hub, idp, "alice")
    leave_alice(0.1)
    before = refusals(hub, federation_root)
    jobs_before = alices_jobs(slurm_sites["alpha"])
    shown = estimate(hub, browser, **FOUR_CORES_ONE_HOUR)
    assert shown.status_code == 200, shown.text
    assert shown.json()["budget_refusal"].startswith(
        "Your monthly budget has 0.1 core-hours left of "
    )
    response = api(
        hub, "POST", "/users/alice/servers/budget", json={"user_options": FOUR_CORES_ONE_HOUR}
    )
    assert response.status_code == 403, response.text
    message = response.json()["message"]
    assert "Your monthly budget has 0.1 core-hours left of " in message
    assert "this server may use up to 4 core-hours" in message
    assert "The budget resets on " in message and "ask the hub's administrators" in message
    assert refusals(hub, federation_root) == before + 1
    # nothing reached the site, and no server is left behind
    assert alices_jobs(slurm_sites["alpha"]) <= jobs_before
    assert "budget" not in api(hub, "GET", "/users/alice").json()["servers"]


@pytest.mark.browser
def test_the_spawn_form_warns_and_shows_the_refusal_before_submit(
    page: Page, hub, idp, leave_alice
) -> None:
    sign_in(page, hub.url, "alice", idp.passwords["alice"])
    page.wait_for_url(re.compile(r"/hub/(spawn|home)"))
    leave_alice(5)  # 4 core-hours of 5 left: 80 %
    # no query: options in the URL would spawn at once, without the form
    page.goto(f"{hub.url}/hub/spawn/alice/budget-form")
    page.select_option("select[name=target]", "alpha/interactive")
    page.fill("input[name=cores]", "4")
    page.fill("input[name=walltime]", "1:00")
    budget = page.locator("#ch-budget")
    expect(budget).to_contain_text(
        re.compile(r"^Budget warning: your budget has 5 of [0-9.]+ core-hours left this month"),
        timeout=30_000,
    )
    leave_alice(0.1)
    page.fill("input[name=cores]", "3")
    expect(budget).to_contain_text(
        re.compile(r"^Your monthly budget has 0\.1 core-hours left of [0-9.]+; this request"),
        timeout=30_000,
    )
