"""Continuum's metrics: definitions, what the code counts, the scrape token, /metrics, rules,
dashboards (unit level; the real Prometheus is in tests/integration/test_metrics_prometheus.py)."""

from __future__ import annotations

import json
import subprocess

import pytest
import yaml
from prometheus_client import REGISTRY
from tornado.httpclient import AsyncHTTPClient, HTTPClientError
from traitlets.config import Config

from continuum_federation import dashboards
from continuum_federation.prometheus import alert_rules, hub_targets, scrape_config
from continuum_hub import metrics
from continuum_hub.metrics import ALL, ALLOWED_LABELS, MetricsScrape, spawn_buckets_environment
from continuum_spawners.schedulers.base import JobState
from continuum_spawners.schedulers.monitor import SiteMonitor
from continuum_spawners.schedulers.slurm import SlurmAdapter
from continuum_spawners.schedulers.transport import CommandResult
from fixtures.workflows import TOKENS

pytestmark = pytest.mark.operations

#: label names that would name a person
PERSONAL = {"user", "username", "name", "owner", "account", "email", "sub"}


def continuum_families() -> list:
    return [family for family in REGISTRY.collect() if family.name.startswith("continuum_")]


def test_every_metric_is_in_the_default_registry_with_allowed_labels():
    names = {family.name for family in continuum_families()}
    for metric in ALL:
        assert metric._name in names, metric._name  # served by /hub/metrics and /metrics
        assert set(metric._labelnames) <= ALLOWED_LABELS, metric._labelnames
    assert not ALLOWED_LABELS & PERSONAL


@pytest.mark.parametrize("metric", ALL, ids=lambda m: m._name)
def test_prometheus_naming(metric):
    kind = metric._type
    if kind == "counter":
        assert not metric._name.endswith("_total")  # prometheus_client adds it to the samples
        # events counted, or an amount in its unit (core-hours, kWh, grams)
        counted = ("_calls", "_refused", "_refreshes", "_refusals", "_collections", "_reports")
        amounts = ("_hours", "_kwh", "_grams")
        assert metric._name.endswith(counted + amounts), metric
    if kind == "histogram":
        assert metric._name.endswith("_seconds")
    assert metric._documentation


def test_no_sample_of_any_continuum_metric_names_a_user():
    metrics.initialize_provider_metrics(["home"])
    metrics.set_run_counts({"running": 2})
    for family in continuum_families():
        for sample in family.samples:
            assert not set(sample.labels) & PERSONAL, sample
            assert set(sample.labels) - {"le"} <= ALLOWED_LABELS, sample


def test_batch_runs_gauge_has_every_state_and_drops_stale_ones():
    metrics.set_run_counts({"running": 2, "odd": 1})
    metrics.set_run_counts({"done": 3})
    values = {s.labels["state"]: s.value for s in metrics.BATCH_RUNS.collect()[0].samples}
    assert values["done"] == 3 and values["running"] == 0 and "odd" not in values
    assert set(metrics.RUN_STATES) <= set(values)


def test_spawn_buckets_reach_a_day():
    ((name, value),) = spawn_buckets_environment().items()
    assert name == "JUPYTERHUB_SERVER_SPAWN_DURATION_SECONDS_BUCKETS"
    bounds = [float(v) for v in value.split(",")]
    assert bounds == sorted(bounds) and bounds[-1] == 86400 and 600 in bounds


class Squeue:
    """squeue at the boundary: answers for the watched jobs, or fails like a dead slurmctld."""

    def __init__(self):
        self.down = False

    async def run(self, argv, **kwargs):
        if self.down:
            return CommandResult(1, "", "slurm_load_jobs error: Unable to contact slurm controller")
        ids = next(a for a in argv if a.startswith("--jobs=")).split("=", 1)[1].split(",")
        return CommandResult(
            0, "".join(f"{i}|RUNNING|None|n1|2026-11-21T06:00:00\n" for i in ids), ""
        )


async def test_status_calls_counted_by_site_and_outcome():
    squeue = Squeue()
    monitor = SiteMonitor("metrics-site", SlurmAdapter(), squeue)

    def value(outcome: str) -> float:
        return (
            REGISTRY.get_sample_value(
                "continuum_scheduler_status_calls_total",
                {"site": "metrics-site", "outcome": outcome},
            )
            or 0.0
        )

    assert (await monitor.status("7", max_age=0)).state is JobState.RUNNING
    squeue.down = True
    assert (await monitor.status("7", max_age=0)).state is JobState.UNKNOWN
    assert value("ok") == 1 and value("error") == 1
    count = REGISTRY.get_sample_value(
        "continuum_scheduler_status_duration_seconds_count", {"site": "metrics-site"}
    )
    assert count == 2


def test_scrape_service_has_only_read_metrics(tmp_path):
    token = tmp_path / "scrape-token"
    token.write_text("s3cret\n")
    token.chmod(0o600)
    c = Config()
    c.MetricsScrape.token_file = str(token)
    assert metrics.add_metrics_scrape(c) and not metrics.add_metrics_scrape(c)
    assert c.JupyterHub.services == [{"name": "prometheus", "api_token": "s3cret"}]
    assert c.JupyterHub.load_roles == [
        {"name": "prometheus", "scopes": ["read:metrics"], "services": ["prometheus"]}
    ]
    assert not metrics.add_metrics_scrape(Config())  # not configured: nothing added


def test_scrape_token_readable_by_others_is_refused(tmp_path):
    token = tmp_path / "scrape-token"
    token.write_text("s3cret")
    token.chmod(0o644)
    with pytest.raises(SystemExit, match="0600"):
        MetricsScrape(token_file=str(token)).add_to(Config())


@pytest.mark.parametrize(
    ("token", "status"),
    [(None, 401), ("unknown", 401), ("alice-token", 403), ("metrics-token", 200)],
    ids=["none", "unknown", "without-read-metrics", "scrape-token"],
)
async def test_service_metrics_endpoint_needs_read_metrics(
    workflow_service, monkeypatch, token, status
):
    monkeypatch.setitem(
        TOKENS,
        "metrics-token",
        {"kind": "service", "name": "prometheus", "scopes": ["read:metrics"]},
    )
    headers = {"Authorization": f"token {token}"} if token else {}
    url = f"{workflow_service.url}/services/workflows/metrics"
    try:
        response = await AsyncHTTPClient().fetch(url, headers=headers)
    except HTTPClientError as exc:
        assert exc.code == status
        return
    assert status == 200
    text = response.body.decode()
    assert 'continuum_batch_runs{state="running"} 0.0' in text
    assert response.headers["Content-Type"].startswith("text/plain")


def test_alert_rules_pass_promtool(tmp_path):
    rules = tmp_path / "rules.yml"
    rules.write_text(yaml.safe_dump(alert_rules()))
    result = subprocess.run(
        ["promtool", "check", "rules", str(rules)], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stdout + result.stderr
    names = {r["alert"] for r in alert_rules()["groups"][0]["rules"]}
    assert {"ContinuumSiteUnreachable", "ContinuumSpawnFailures"} <= names
    assert {"ContinuumTokenRefreshFailures", "ContinuumSiteStatusCallsFailing"} <= names


def test_scrape_config_passes_promtool(tmp_path):
    token = tmp_path / "token"
    token.write_text("x")
    rules = tmp_path / "rules.yml"
    rules.write_text(yaml.safe_dump(alert_rules("10s", "1s")))
    config = scrape_config(hub_targets("http://127.0.0.1:8000/", token), [rules], "1s", "1s")
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    result = subprocess.run(
        ["promtool", "check", "config", str(path)], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stdout + result.stderr
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["hub"]["metrics_path"] == "/hub/metrics"
    assert jobs["workflows"]["metrics_path"] == "/services/workflows/metrics"
    assert jobs["hub"]["authorization"] == {"credentials_file": str(token)}


def test_dashboards_are_generated_not_edited(tmp_path):
    written = dashboards.write(tmp_path)
    assert {p.name for p in written} == set(dashboards.DASHBOARDS)
    for path in written:
        committed = dashboards.DEFAULT_FOLDER / path.name
        assert committed.read_text() == path.read_text(), (
            f"{committed} differs from the generator: run python -m continuum_federation.dashboards"
        )
        model = json.loads(path.read_text())
        assert model["uid"] and dashboards.queries(model)
        assert all(p["datasource"]["uid"] == "${datasource}" for p in model["panels"])


class GatewayCluster:
    def __init__(self, site: str, workers: int, cores: int, gpus: int) -> None:
        self.config = {"site": site, "worker_cores": cores, "worker_gpus": gpus}
        self.workers = workers

    def active_workers(self) -> list[int]:
        return list(range(self.workers))


def test_gateway_gauges_by_site():
    from continuum_hub.gateway.metrics import set_gauges

    clusters = [GatewayCluster("beta", 2, 4, 1), GatewayCluster("beta", 1, 2, 0)]
    set_gauges(clusters, ["alpha", "beta"])

    def value(name: str, site: str) -> float | None:
        return REGISTRY.get_sample_value(name, {"site": site})

    assert value("continuum_gateway_clusters", "beta") == 2
    assert value("continuum_gateway_workers", "beta") == 3
    assert value("continuum_gateway_cores", "beta") == 10
    assert value("continuum_gateway_gpus", "beta") == 2
    assert value("continuum_gateway_clusters", "alpha") == 0  # a site without clusters shows 0
    set_gauges([], ["alpha"])
    assert value("continuum_gateway_clusters", "beta") is None  # gone from the registry
