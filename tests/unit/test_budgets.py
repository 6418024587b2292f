"""Budgets (:mod:`continuum_spawners.budgets`): the registry's ``budgets`` list with file:line
errors, statuses against a real SQLite ledger, refusals (counted), warnings and overrides."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest
from dask_gateway_server.backends.base import Backend
from prometheus_client import REGISTRY
from traitlets.config import Config

from continuum_hub.gateway.backend import SiteSlurmBackend
from continuum_hub.gateway.totals import NOTES
from continuum_spawners import budgets
from continuum_spawners.budgets import (
    BudgetExceeded,
    Request,
    budget_status,
    check_budget,
    count_refusals_from_zero,
    enforce,
    preview,
)
from continuum_spawners.impact import Impact
from continuum_spawners.ledger import ENV_URL, JobLedger, UsageJob
from continuum_spawners.metrics import BUDGET_REFUSALS
from continuum_spawners.sites import RegistryError, SiteRegistry
from fixtures.workflow_runs import DEMO
from fixtures.workflows import run_body

pytestmark = pytest.mark.operations

SITE = {
    "name": "alpha",
    "scheduler": "slurm",
    "access": {"groups": ["vo.hep.example"]},
    "partitions": [{"name": "p", "max_cores": 8, "max_memory_gb": 16, "max_walltime": "04:00:00"}],
    "power": {"watts_per_core": 10, "pue": 1.5, "grid_gco2e_per_kwh": 200},
}
BUDGETS = [
    {"vo": "vo.hep.example", "core_hours": 100, "co2e_kg": 1, "contact": "hep-support@example.org"},
    {"user": "alice", "core_hours": 0.1},
    {"user": "bob", "core_hours": 10, "gpu_hours": 2},
]
NOTHING = Impact(0.0, 0.0)


def registry(budget_list=BUDGETS) -> SiteRegistry:
    return SiteRegistry.from_dict({"sites": [SITE], "budgets": budget_list}, environ={})


@pytest.fixture
def ledger(tmp_path: Path) -> JobLedger:
    return JobLedger(f"sqlite:///{tmp_path / 'usage.sqlite'}")


def record(ledger: JobLedger, job_id: str, user: str, **values) -> None:
    fields = {
        "site": "alpha",
        "job_id": job_id,
        "kind": "server",
        "label": "",
        "user": user,
        "vo": "vo.hep.example",
        "partition": "p",
        "submitted_at": datetime.now(UTC),
        "req_cores": 2,
        "req_gpus": 0,
        "req_memory_gb": 4.0,
        "req_walltime_minutes": 60,
    }
    ledger.record_submission(UsageJob(**(fields | values)))


@pytest.mark.parametrize(
    "entry,message",
    [
        ({"user": "alice", "core_hours": -5}, "budgets/0/core_hours: -5 is less than or equal"),
        ({"user": "alice", "core_hours": 1e12}, "budgets/0/core_hours: 1000000000000.0 is greater"),
        ({"user": "alice", "co2e_kg": 0}, "budgets/0/co2e_kg: 0 is less than or equal"),
        ({"user": "alice"}, "budgets/0: .* is not valid under any of the given schemas"),
        ({"core_hours": 5}, "budgets/0"),
        ({"user": "alice", "core_hours": 1, "cpu_years": 1}, "cpu_years"),
    ],
    ids=["negative", "absurd", "zero", "no-limit", "no-scope", "unknown-field"],
)
def test_bad_budgets_are_refused_with_file_and_line(tmp_path, entry, message):
    path = tmp_path / "sites.yaml"
    path.write_text(json.dumps({"sites": [SITE], "budgets": [entry]}, indent=2))
    with pytest.raises(RegistryError, match=message) as caught:
        SiteRegistry.from_file(path)
    line = str(caught.value).split(":")[1]
    # the entry (or its field) sits below "budgets", after the site's dozens of lines
    assert str(caught.value).startswith(f"{path}:") and int(line) > 20


def test_a_rule_given_twice_is_refused(tmp_path):
    path = tmp_path / "sites.yaml"
    twice = [{"user": "alice", "core_hours": 1}, {"user": "alice", "gpu_hours": 1}]
    path.write_text(json.dumps({"sites": [SITE], "budgets": twice}, indent=2))
    with pytest.raises(RegistryError, match=r"at budgets/1: user alice has a budget already"):
        SiteRegistry.from_file(path)


def test_a_small_budget_refuses_a_four_core_hour_server_with_the_message(ledger):
    before = BUDGET_REFUSALS.labels(site="alpha", kind="server", resource="core_hours")._value.get()
    with pytest.raises(BudgetExceeded) as caught:
        check_budget(
            registry(), ledger, "alice", "vo.hep.example", NOTHING, 4.0, 0.0, "server", "alpha"
        )
    message = caught.value.message
    assert message.startswith("Your monthly budget has 0.1 core-hours left of 0.1; ")
    assert "this server may use up to 4 core-hours" in message
    resets = budgets.next_month_start(datetime.now(UTC))
    assert f"resets on {resets:%Y-%m-%d} 00:00 UTC" in message
    assert message.endswith("ask the hub's administrators for more.")
    assert (caught.value.resource, caught.value.scope) == ("core_hours", "user")
    after = BUDGET_REFUSALS.labels(site="alpha", kind="server", resource="core_hours")._value.get()
    assert after == before + 1


def test_committed_use_counts_and_the_vo_names_its_contact(ledger):
    # carol has no budget of her own; her VO has 100 core-hours, 96 committed by 2 jobs
    record(ledger, "1", "dave", req_cores=8, req_walltime_minutes=360)
    record(ledger, "2", "erin", req_cores=8, req_walltime_minutes=360)
    statuses = check_budget(
        registry(), ledger, "carol", "vo.hep.example", NOTHING, 2.0, 0.0, "dask", "alpha"
    )
    (cores, co2e) = statuses
    assert (cores.scope, cores.name, cores.used, cores.left) == ("vo", "vo.hep.example", 96, 4)
    assert cores.warning and not co2e.warning  # 98 of 100 after this request
    with pytest.raises(BudgetExceeded, match=r"The monthly budget of vo\.hep\.example has 4 core"):
        check_budget(
            registry(), ledger, "carol", "vo.hep.example", NOTHING, 5.0, 0.0, "batch", "alpha"
        )
    # not a member of the VO at this site: only her own rules (none) apply
    assert (
        check_budget(registry(), ledger, "carol", None, NOTHING, 500.0, 0, "batch", "alpha") == []
    )


def test_eighty_percent_warns_and_co2e_counts_the_estimate(ledger):
    record(ledger, "1", "bob", req_cores=1, req_walltime_minutes=480, final=False)  # 8 of 10
    (cores, gpus, *_vo) = budget_status(registry(), ledger, "bob", "vo.hep.example")
    assert (cores.resource, cores.used, cores.warning) == ("core_hours", 8, True)
    assert (gpus.resource, gpus.used, gpus.warning) == ("gpu_hours", 0, False)
    heavy = Impact(energy_kwh=10, co2e_kg=2)
    with pytest.raises(BudgetExceeded, match=r"has 1 kg CO2e left of 1; .* up to 2 kg CO2e"):
        check_budget(registry(), ledger, "bob", "vo.hep.example", heavy, 1, 0, "server", "alpha")


def test_an_admin_override_replaces_the_users_own_limits(ledger):
    ledger.set_override("alice", {"core_hours": 50})
    statuses = check_budget(registry(), ledger, "alice", None, NOTHING, 4.0, 0.0, "server", "alpha")
    assert [(s.scope, s.limit, s.warning) for s in statuses] == [("user", 50, False)]
    ledger.set_override("dave", {"gpu_hours": 1})  # no rule of his own: the override is one
    (status,) = budget_status(registry(), ledger, "dave", None)
    assert (status.resource, status.limit) == ("gpu_hours", 1)
    ledger.set_override("alice", None)
    with pytest.raises(BudgetExceeded):
        check_budget(registry(), ledger, "alice", None, NOTHING, 4.0, 0.0, "server", "alpha")


def test_enforce_and_preview_use_the_process_ledger(ledger, monkeypatch):
    monkeypatch.setenv(ENV_URL, str(ledger.engine.url))
    reg = registry()
    site = reg.get("alpha")
    four = Request(site, cores=4, gpus=0, memory_gb=8, walltime_minutes=60)
    shown = preview(reg, "alice", ["vo.hep.example"], four)
    assert shown["budget_refusal"].startswith("Your monthly budget has 0.1 core-hours left")
    assert [(b["name"], b["resource"], b["warning"]) for b in shown["budgets"]] == [
        ("alice", "core_hours", True),
        ("vo.hep.example", "core_hours", False),
        ("vo.hep.example", "co2e_kg", False),
    ]
    with pytest.raises(BudgetExceeded):
        enforce(reg, "alice", ["vo.hep.example"], four, "server")
    # two workers of 2 cores for 3 h = 12 core-hours, at 10 W/core + 0.3725 W/GB × 1.5 PUE
    workers = Request(site, cores=2, gpus=0, memory_gb=4, walltime_minutes=180, count=2)
    statuses = enforce(reg, "carol", ["vo.hep.example"], workers, "dask")
    assert [(s.resource, s.left) for s in statuses] == [("core_hours", 100), ("co2e_kg", 1)]
    monkeypatch.delenv(ENV_URL)
    # no ledger: the limits themselves still hold
    with pytest.raises(BudgetExceeded):
        enforce(reg, "alice", [], four, "server")
    assert enforce(reg, "nobody", [], four, "server") == []


async def test_the_workflows_service_refuses_a_run_past_the_budget(
    workflow_service, ledger, monkeypatch
):
    monkeypatch.setenv(ENV_URL, str(ledger.engine.url))
    ledger.set_override("alice", {"core_hours": 0.1})
    # one core for the batch partition's default walltime of 4 hours
    code, answer = await workflow_service.call("POST", "runs", run_body())
    assert code == 403, answer
    assert answer["message"].startswith("Your monthly budget has 0.1 core-hours left of 0.1")
    assert "this batch run may use up to 4 core-hours" in answer["message"]
    assert workflow_service.executor.plans == []
    ledger.set_override("alice", None)
    code, run = await workflow_service.call("POST", "runs", run_body())
    assert code == 201, run


class OneCluster:
    """dask-gateway's database as the backend reads it: alice's cluster ``a``, 1 worker."""

    record = SimpleNamespace(
        name="a",
        count=1,
        username="alice",
        config={
            "site": "alpha",
            "worker_cores": 2,
            "worker_gpus": 0,
            "worker_memory": 2 * 2**30,
            "walltime_minutes": 60,
            "user_groups": ["vo.hep.example"],
        },
    )

    def get_cluster(self, name: str):
        return self.record

    def list_clusters(self, username: str):
        return [self.record]


async def test_the_gateway_keeps_a_cluster_within_the_budget(ledger, monkeypatch):
    sent: list[dict] = []

    async def forward(self, cluster, msg):
        sent.append(msg)

    monkeypatch.setattr(Backend, "forward_message_to_scheduler", forward)
    monkeypatch.setenv(ENV_URL, str(ledger.engine.url))
    monkeypatch.setenv("CONTINUUM_SLURM_CONF_ALPHA", "/a")
    monkeypatch.setenv("CONTINUUM_SLURM_CONF_BETA", "/b")
    config = {
        "api_url": "http://127.0.0.1:9/api",
        "python_prefix": "/x",
        "registry_path": str(DEMO),
    }
    backend = SiteSlurmBackend(config=Config({"SiteSlurmBackend": config}))
    backend.db = OneCluster()
    ledger.set_override("alice", {"core_hours": 5})
    notes: list[str] = []
    token = NOTES.set(notes)
    try:
        # 2 more workers of 2 cores for an hour fit into 5 core-hours; 3 more do not
        await backend.forward_message_to_scheduler(
            SimpleNamespace(name="a"), {"op": "scale", "count": 3}
        )
        await backend.forward_message_to_scheduler(
            SimpleNamespace(name="a"), {"op": "scale", "count": 4}
        )
    finally:
        NOTES.reset(token)
    assert sent == [{"op": "scale", "count": 3}, {"op": "scale", "count": 1}]
    (note,) = notes
    assert note.startswith("Staying at 1 workers: Your monthly budget has 5 core-hours left of 5")
    assert "this Dask cluster may use up to 6 core-hours" in note


def test_refusals_start_at_zero_for_every_site_kind_and_resource():
    count_refusals_from_zero(registry())
    for kind in ("server", "dask", "batch"):
        labels = {"site": "alpha", "kind": kind, "resource": "gpu_hours"}
        assert REGISTRY.get_sample_value("continuum_budget_refusals_total", labels) is not None
