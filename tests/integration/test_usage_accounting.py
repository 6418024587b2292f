"""Usage accounting end to end: the session hub's collector reads the real slurmdbd.

Alice starts a server, a Dask cluster and a batch run through the session ``hub`` on the
accounted ``alpha`` (``accounted_sites``: the session's sites record every job in slurmdbd);
the usage API then shows each of their jobs with the core-hours ``sacct`` reports (CPUTimeRAW /
3600, to the second) and energy and CO2e by the site's power model.  With slurmdbd stopped the
API says "usage delayed" for the site and nothing is lost: once it is back the collector
catches up, and the usage counters grew by exactly the new job's core-hours (nothing counted
twice).  The session hub collects every 2 s (``UsageCollector.interval`` in ``fixtures.hub``).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from continuum_federation.hub import LocalHub
from continuum_federation.slurm import LocalSlurmCluster
from continuum_federation.slurmdbd import SlurmDBD
from continuum_hub.workflows import ACCESS_SCOPE, API_PREFIX
from continuum_spawners import impact
from continuum_spawners.ledger import JobLedger, UsageJob, ledger_url
from continuum_spawners.sites import SiteRegistry
from fixtures.gateway import HubGateway, user_token
from fixtures.hub import api, forget_named_servers, scrape_token_path
from fixtures.slurm import sacct_job, sbatch_as, wait_until
from fixtures.workflow_runs import notebook_bytes

pytestmark = [pytest.mark.integration, pytest.mark.operations, pytest.mark.accounting]

SERVER = {"site": "alpha", "partition": "interactive", "cores": 1, "memory_gb": 1}
CLUSTER = {"site": "alpha", "worker_cores": 1, "worker_memory_gb": 1, "walltime_minutes": 30}
RUN = {"site": "alpha", "partition": "batch", "cores": 1, "memory_gb": 1, "walltime": "0:10"}
#: bounds for a slow, busy 2-core machine
TIMEOUT = 180.0


def usage(hub: LocalHub, token: str, **params: str) -> dict[str, Any]:
    response = requests.get(
        f"{hub.url}/hub/api/continuum/usage",
        params=params,
        headers={"Authorization": f"token {token}"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def core_hours_counter(hub: LocalHub, federation_root: Any) -> float:
    """``continuum_usage_core_hours_total`` of alpha, all kinds, in ``/hub/metrics``."""
    token = scrape_token_path(federation_root).read_text().strip()
    text = requests.get(
        f"{hub.url}/hub/metrics", headers={"Authorization": f"token {token}"}, timeout=30
    ).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "continuum_usage_core_hours"
        for sample in family.samples
        if sample.name.endswith("_total") and sample.labels.get("site") == "alpha"
    )


def alices_workload(hub: LocalHub, gateway: HubGateway, token: str) -> dict[str, str]:
    """A server, a Dask cluster and a batch run of alice, all ended; kind → label."""
    run = requests.post(
        f"{hub.url}{API_PREFIX}/runs",
        json={
            "notebook": {"path": "work/usage.ipynb", "content": json.loads(notebook_bytes())},
            "parameters": {"label": "usage"},
            "resources": RUN,
        },
        headers={"Authorization": f"token {token}"},
        timeout=60,
    )
    assert run.status_code == 201, run.text
    response = api(hub, "POST", "/users/alice/servers/usage", json={"user_options": SERVER})
    assert response.status_code in (201, 202), response.text
    with gateway.client(gateway.token("alice")) as client:
        cluster = client.new_cluster(**CLUSTER)
        try:
            cluster.scale(1)
            cluster.get_client().wait_for_workers(1, timeout=TIMEOUT)
            report = next(r for r in client.list_clusters() if r.name == cluster.name)
            label = str(report.options.get("name") or cluster.name)
        finally:
            cluster.shutdown()

    def server_ready() -> bool:
        servers = api(hub, "GET", "/users/alice").json().get("servers", {})
        assert "usage" in servers, f"alice's server stopped; hub log:\n{hub.log(80)}"
        return bool(servers["usage"].get("ready"))

    wait_until(server_ready, TIMEOUT, interval=0.5, what="alice's server")
    assert api(hub, "DELETE", "/users/alice/servers/usage").status_code in (202, 204)
    forget_named_servers(hub, "alice")  # the hub allows three named servers per user

    def run_ended() -> bool:
        state = requests.get(
            f"{hub.url}{API_PREFIX}/runs/{run.json()['id']}",
            headers={"Authorization": f"token {token}"},
            timeout=30,
        ).json()["state"]
        return state in ("done", "failed", "cancelled")

    wait_until(run_ended, TIMEOUT, interval=1.0, what="alice's batch run")
    return {"server": "usage", "dask": label, "batch": run.json()["id"]}


def test_usage_matches_sacct_and_survives_a_slurmdbd_restart(
    hub: LocalHub,
    gateway: HubGateway,
    accounted_sites: dict[str, LocalSlurmCluster],
    slurm_accounting: SlurmDBD,
    federation_root: Any,
) -> None:
    token = user_token(hub, gateway.idp, "alice", [ACCESS_SCOPE])
    since = (datetime.now(UTC) - timedelta(seconds=5)).isoformat()
    labels = alices_workload(hub, gateway, token)

    def collected() -> list[dict[str, Any]]:
        jobs = [
            job
            for job in usage(hub, token, **{"from": since})["jobs"]
            if labels.get(job["kind"]) == job["label"]
        ]
        kinds = {job["kind"] for job in jobs}
        done = all(job["final"] and job["source"] == "sacct" for job in jobs)
        return jobs if done and kinds == set(labels) else []

    jobs = wait_until(collected, TIMEOUT, interval=1.0, what="alice's usage from sacct")
    kinds = [job["kind"] for job in jobs]
    # the cluster's scheduler and its worker(s) are Dask jobs
    assert (kinds.count("server"), kinds.count("batch"), kinds.count("dask") >= 2) == (1, 1, True)
    # every kind used the site (a job the scheduler cancels before it runs, e.g. a worker no
    # longer wanted when its cluster stops, is counted with no CPU time, as sacct says)
    assert {job["kind"] for job in jobs if job["cpu_time_s"] > 0} == set(labels), jobs
    site = SiteRegistry.from_file(hub.registry_path, hub.environment()).get("alpha")
    assert site is not None
    model = impact.model_for(site)
    for job in jobs:
        record = sacct_job(accounted_sites["alpha"], job["job_id"])
        assert record is not None and record["State"].split(" ")[0] == job["state"]
        assert job["cpu_time_s"] == int(record["CPUTimeRAW"]), (job, record)
        assert job["core_hours"] == int(record["CPUTimeRAW"]) / 3600
        assert job["elapsed_s"] == int(record["ElapsedRaw"])
        expected = impact.job_impact(model, as_usage_job(job))
        assert job["energy_kwh"] == pytest.approx(expected.energy_kwh)
        assert job["co2e_kg"] == pytest.approx(expected.co2e_kg)
        assert job["user"] == "alice"

    # slurmdbd down: a job the hub follows is "delayed", then caught up; nothing counted twice
    ledger = JobLedger(ledger_url(f"sqlite:///{hub.state_dir / 'jupyterhub.sqlite'}"))
    before = core_hours_counter(hub, federation_root)
    slurm_accounting.stop()
    try:
        job_id = sbatch_as(
            "alice",
            accounted_sites["alpha"],
            "#!/bin/bash\nsleep 2\n",
            ["--partition=batch", "--cpus-per-task=1"],
        )
        ledger.record_submission(
            UsageJob(
                site="alpha",
                job_id=job_id,
                kind="batch",
                label="outage",
                user="alice",
                vo=None,
                partition="batch",
                submitted_at=datetime.now(UTC),
                req_cores=1,
                req_gpus=0,
                req_memory_gb=1.0,
                req_walltime_minutes=10,
            )
        )
        wait_until(
            lambda: alpha_delayed(usage(hub, token)), TIMEOUT, interval=0.5, what="usage delayed"
        )
    finally:
        slurm_accounting.start()

    def caught_up() -> dict[str, Any] | None:
        answer = usage(hub, token, **{"from": since})
        late = [j for j in answer["jobs"] if j["job_id"] == job_id]
        return answer if late and late[0]["final"] and not alpha_delayed(answer) else None

    answer = wait_until(caught_up, TIMEOUT, interval=1.0, what="usage caught up")
    late = next(j for j in answer["jobs"] if j["job_id"] == job_id)
    record = sacct_job(accounted_sites["alpha"], job_id)
    assert record is not None and late["cpu_time_s"] == int(record["CPUTimeRAW"])
    earlier = {j["job_id"]: j["cpu_time_s"] for j in answer["jobs"] if j["label"] != "outage"}
    assert {j["job_id"]: j["cpu_time_s"] for j in jobs}.items() <= earlier.items()
    assert core_hours_counter(hub, federation_root) == pytest.approx(
        before + late["core_hours"], abs=1e-9
    )
    # the same values written again (a collector restarted over the ledger) change no row
    assert ledger.update(ledger.jobs(user="alice", limit=10_000)) == 0


def alpha_delayed(answer: dict[str, Any]) -> list[dict[str, Any]]:
    """The usage API's "usage delayed" entries of alpha."""
    return [entry for entry in answer["delayed"] if entry["site"] == "alpha"]


def as_usage_job(data: dict[str, Any]) -> UsageJob:
    """A :class:`UsageJob` from its JSON form (the usage API's)."""
    fields = {k: v for k, v in data.items() if k not in ("core_hours", "gpu_hours")}
    for name in ("submitted_at", "started_at", "ended_at", "updated_at"):
        if fields[name] is not None:
            fields[name] = datetime.fromisoformat(fields[name])
    return UsageJob(**fields)


def test_usage_api_refuses_others_and_centuries_and_lets_admins_override(
    hub: LocalHub, gateway: HubGateway
) -> None:
    token = user_token(hub, gateway.idp, "alice", [ACCESS_SCOPE])
    url = f"{hub.url}/hub/api/continuum/usage"
    alice = {"Authorization": f"token {token}"}
    assert requests.get(url, timeout=30, allow_redirects=False).status_code == 403
    assert requests.get(url, params={"user": "bob"}, headers=alice, timeout=30).status_code == 403
    centuries = requests.get(url, params={"from": "1026-01-01"}, headers=alice, timeout=30)
    assert centuries.status_code == 400 and "366 days" in centuries.json()["message"]
    everyone = api(hub, "GET", "/continuum/usage?user=*")
    assert everyone.status_code == 200 and everyone.json()["user"] == "*"
    table = requests.get(url, params={"format": "csv"}, headers=alice, timeout=30)
    assert table.status_code == 200 and table.headers["Content-Type"].startswith("text/csv")
    assert {row.split(",")[4] for row in table.text.splitlines()[1:]} <= {"alice"}
    override = f"{url}/budgets/alice"
    assert (
        requests.put(override, json={"core_hours": 99}, headers=alice, timeout=30).status_code
        == 403
    )
    assert (
        api(hub, "PUT", "/continuum/usage/budgets/alice", json={"core_hours": -1}).status_code
        == 400
    )
    answer = api(hub, "PUT", "/continuum/usage/budgets/alice", json={"core_hours": 99})
    assert answer.status_code == 200 and answer.json()["override"] == {"core_hours": 99.0}
    assert api(hub, "PUT", "/continuum/usage/budgets/alice", data="null").json()["override"] is None
    assert api(hub, "PUT", "/continuum/usage/budgets/nobody", json=None).status_code == 404
