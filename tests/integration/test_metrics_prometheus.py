"""Metrics end to end: the hub's and services' endpoints, a real Prometheus, dashboards, alerts.

The session ``hub`` has a scrape token (``MetricsScrape``, ``read:metrics`` only); the
``prometheus`` fixture scrapes it every second.  After a small workload (a spawn on alpha whose
usage the hub's collector records, a spawn refused by a budget, a catalogue search) every panel
of every generated dashboard must return data (GPU-hours: once a GPU job has been recorded).
The alert test runs its own throwaway Slurm cluster, never the session's sites: in this process a
``SiteProbe`` checks it (site ``omega``, where nobody has a job) and a ``SiteMonitor`` follows a
job there (site label ``omega-jobs``), this process exports their metrics, and a second
Prometheus with windows of seconds sees *site unreachable* fire for both when slurmctld stops
and clear when it is back.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from prometheus_client import start_http_server
from prometheus_client.parser import text_string_to_metric_families

from continuum_federation.dashboards import DASHBOARDS, DEFAULT_FOLDER, queries
from continuum_federation.hub import PRIMARY_PROVIDER, LocalHub
from continuum_federation.idp import OpenIDProvider
from continuum_federation.munge import MungeDaemon
from continuum_federation.process import free_port
from continuum_federation.prometheus import LocalPrometheus, Target
from continuum_federation.slurm import LocalSlurmCluster
from continuum_federation.slurm_spec import parse_cluster_spec
from continuum_hub.catalogue import ACCESS_SCOPE as CATALOGUE_SCOPE
from continuum_hub.catalogue import API_PREFIX as CATALOGUE_API
from continuum_hub.hub_metrics import SiteProbe
from continuum_spawners.schedulers.monitor import SiteMonitor
from continuum_spawners.schedulers.slurm import SlurmAdapter
from continuum_spawners.schedulers.transport import LocalTransport
from fixtures.gateway import user_token
from fixtures.hub import api, hub_login, scrape_token_path, stop_server, wait_for_server
from fixtures.prometheus import poll

pytestmark = [pytest.mark.integration, pytest.mark.operations]

ENDPOINTS = (
    "/hub/metrics",
    "/services/workflows/metrics",
    "/services/catalogue/metrics",
    "/services/dask-gateway/metrics",
)
THROWAWAY = "omega"
OMEGA_SPEC = {
    "nodes": [{"name": "omega-n1", "cpus": 2, "memory_mb": 2048}],
    "partitions": [{"name": "interactive", "default": True, "max_time": "1:00:00"}],
}


def scrape_token(federation_root: Path) -> str:
    return scrape_token_path(federation_root).read_text().strip()


@pytest.mark.parametrize("path", ENDPOINTS)
def test_metrics_need_a_token_with_read_metrics(hub: LocalHub, federation_root: Path, path: str):
    url = f"{hub.url}{path}"
    assert requests.get(url, timeout=30).status_code in (401, 403)
    # the tests' admin service token may manage users but has no read:metrics
    admin = {"Authorization": f"token {hub.api_token}"}  # type: ignore[attr-defined]
    assert requests.get(url, headers=admin, timeout=30).status_code == 403
    scraper = {"Authorization": f"Bearer {scrape_token(federation_root)}"}
    response = requests.get(url, headers=scraper, timeout=30)
    assert response.status_code == 200, response.text[:300]
    assert "continuum_" in response.text
    if path == "/hub/metrics":  # JupyterHub's own spawn histogram goes up to a day
        assert 'jupyterhub_server_spawn_duration_seconds_bucket{le="86400.0"' in response.text


def hub_sample(hub: LocalHub, federation_root: Path, name: str, **labels: str) -> float:
    """One sample of the hub's ``/hub/metrics`` (0 when absent)."""
    headers = {"Authorization": f"Bearer {scrape_token(federation_root)}"}
    text = requests.get(f"{hub.url}/hub/metrics", headers=headers, timeout=30).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and labels.items() <= sample.labels.items():
                return float(sample.value)
    return 0.0


def test_a_refused_sign_in_is_counted_by_reason(hub, idp, federation_root: Path):
    name = "continuum_sign_in_refusals_total"
    labels = {"provider": PRIMARY_PROVIDER, "reason": "not_allowed"}
    before = hub_sample(hub, federation_root, name, **labels)
    with pytest.raises(AssertionError):
        hub_login(hub, idp, "carol")  # no allowed group
    assert hub_sample(hub, federation_root, name, **labels) == before + 1


def test_every_target_is_up(prometheus: LocalPrometheus):
    jobs = {"hub", "workflows", "catalogue", "dask-gateway"}

    def up() -> set[str]:
        return {r["metric"]["job"] for r in prometheus.query("up == 1")}

    assert poll(lambda: jobs <= up(), 30, "every target up") is True


@pytest.fixture(scope="module")
def workload(hub: LocalHub, idp: OpenIDProvider, accounted_sites) -> None:
    """A spawn on alpha (stopped again: the usage collector records it from ``sacct``), a spawn
    refused by bob's budget (an admin's override far below any server) and a catalogue search.
    """
    hub_login(hub, idp, "bob")
    response = api(hub, "POST", "/users/bob/server", json={"user_options": {"site": "alpha"}})
    assert response.status_code in (201, 202), response.text
    wait_for_server(hub, "bob")
    stop_server(hub, "bob")
    override = "/continuum/usage/budgets/bob"
    assert api(hub, "PUT", override, json={"core_hours": 0.001}).status_code == 200
    try:
        options = {"user_options": {"site": "alpha"}}
        response = api(hub, "POST", "/users/bob/servers/over-budget", json=options)
        assert response.status_code == 403, response.text
    finally:
        assert api(hub, "PUT", override, data="null").status_code == 200
    token = user_token(hub, idp, "alice", [CATALOGUE_SCOPE])
    response = requests.get(
        f"{hub.url}{CATALOGUE_API}/search",
        params={"q": "radio"},
        headers={"Authorization": f"token {token}"},
        timeout=60,
    )
    assert response.status_code == 200, response.text


#: metrics that have no series until a job used some of it (the usage collector counts only
#: what a job added, and the workload starts no GPU job): such a panel may be empty only while
#: Prometheus has no series of its metric at all (its query must still evaluate)
NOT_YET_EXPORTED = ("continuum_usage_gpu_hours_total",)


def not_yet_exported(prometheus: LocalPrometheus, expr: str) -> bool:
    """Whether ``expr`` reads one of :data:`NOT_YET_EXPORTED` and it has no series at all."""
    return any(
        metric in expr and not prometheus.query(f"count({metric})") for metric in NOT_YET_EXPORTED
    )


@pytest.mark.parametrize("name", sorted(DASHBOARDS))
def test_every_dashboard_query_returns_data(prometheus: LocalPrometheus, workload, name: str):
    model = json.loads((DEFAULT_FOLDER / name).read_text())
    empty: list[str] = []
    for title, expr in queries(model):
        if not_yet_exported(prometheus, expr):
            prometheus.query(expr)  # it must still evaluate without an error
            continue
        # a query that errors raises at once; one that is empty may wait for the next scrape
        try:
            poll(lambda expr=expr: prometheus.query(expr), 15, expr)
        except AssertionError:
            empty.append(f"{title}: {expr}")
    assert not empty, "queries that returned nothing:\n" + "\n".join(empty)


@pytest.fixture
def throwaway_site(munge: MungeDaemon, federation_root: Path) -> Iterator[LocalSlurmCluster]:
    """A Slurm cluster of this test only (its controller is stopped and started again)."""
    spec = parse_cluster_spec(THROWAWAY, OMEGA_SPEC)
    with LocalSlurmCluster(THROWAWAY, spec, federation_root / "slurm", munge.socket) as site:
        yield site


#: the site label of the status calls for a job on the throwaway site
WITH_JOBS = f"{THROWAWAY}-jobs"


class Follower:
    """The hub's probe of the throwaway site (no job) and a ``SiteMonitor`` of a job there,
    each asking every 0.5 s, in a thread of their own."""

    def __init__(self, site: LocalSlurmCluster) -> None:
        transport = LocalTransport(site.env(), timeout=5)
        self.probe = SiteProbe(THROWAWAY, SlurmAdapter(), transport)
        self.monitor = SiteMonitor(WITH_JOBS, SlurmAdapter(), transport)
        self.monitor.watch("1")  # any id: squeue answers (purged) while slurmctld runs
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=asyncio.run, args=(self.run(),), daemon=True)

    async def run(self) -> None:
        while not self.stopped.is_set():
            await asyncio.gather(self.probe.check(), self.monitor.refresh())
            await asyncio.sleep(0.5)


def test_site_unreachable_alert_fires_and_clears(throwaway_site, federation_root: Path):
    port = free_port()
    server, _ = start_http_server(port, addr="127.0.0.1")
    follower = Follower(throwaway_site)
    follower.thread.start()
    target = Target("site-follower", f"http://127.0.0.1:{port}", "/metrics")
    rules = LocalPrometheus(
        federation_root / "prometheus" / "alerts", [target], interval="1s", window="5s", hold="1s"
    )
    try:
        with rules:

            def firing() -> set[str]:
                return {
                    a["labels"].get("site", "")
                    for a in rules.alerts()
                    if a["labels"]["alertname"] == "ContinuumSiteUnreachable"
                    and a["state"] == "firing"
                }

            both = {THROWAWAY, WITH_JOBS}
            poll(lambda: rules.query(f'continuum_site_up{{site="{THROWAWAY}"}} == 1'), 20, "up")
            assert not firing() & both
            throwaway_site.stop_controller()
            poll(lambda: both <= firing(), 40, "ContinuumSiteUnreachable firing for both")
            throwaway_site.start_controller()
            poll(lambda: not firing() & both, 30, "ContinuumSiteUnreachable cleared")
    finally:
        follower.stopped.set()
        follower.thread.join(timeout=15)
        server.shutdown()
