"""The workflow service's manager and tracking loop, with a fake site executor and hub API.

Runs through their states (queued with Slurm's reason, running with the cell, done, failed
with the failing cell), sweeps, chains on one site (afterok) and across sites (held), failed
steps cancelling their dependants, retries and moves, credentials (revoked at the end, by the
owner, needs-sign-in) and a restart that finds a run left ``submitting``.  The real site
executor on real Slurm: ``tests/integration/test_workflow_service.py``.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from continuum_hub.workflows.app import make_application
from continuum_hub.workflows.placement import when
from continuum_spawners.schedulers.base import Estimate, JobState
from fixtures.workflows import FakeHubAuth, Service, notebook_json, run_body

pytestmark = pytest.mark.workflows


async def submit(service: Service, **changes: object) -> dict:
    code, run = await service.call("POST", "runs", run_body(**changes))
    assert code == 201, run
    return run


async def get(service: Service, run_id: str) -> dict:
    code, run = await service.call("GET", f"runs/{run_id}")
    assert code == 200, run
    return run


async def test_run_goes_from_queued_to_done(workflow_service: Service) -> None:
    service, executor = workflow_service, workflow_service.executor
    run = await submit(service)
    (plan,) = executor.plans
    await service.tracker.poll()
    run = await get(service, run["id"])
    assert run["state"] == "queued" and run["reason"] == "Priority"
    executor.set("100", JobState.RUNNING, node="node1")
    executor.reports[executor.folder(plan)] = {
        "members": [{"index": 0, "status": {"state": "running", "cell": 2, "cells": 4}}]
    }
    await service.tracker.poll()
    run = await get(service, run["id"])
    assert run["state"] == "running" and run["started"]
    assert run["members"][0] | {"cell": 2, "cells": 4, "node": "node1"} == run["members"][0]
    executor.finish(plan, ["done"])
    await service.tracker.poll()
    run = await get(service, run["id"])
    assert run["state"] == "done" and run["ended"] and run["members"][0]["state"] == "done"
    assert run["attempts"][0]["state"] == "done"
    assert service.hub.revoked == ["1"]  # the credential ends with the run
    (credential,) = (await service.call("GET", "credentials"))[1]["credentials"]
    assert credential["revoked"]
    # one status query per site per round, for all its runs
    assert all(site == "alpha" and ids == ["100"] for site, ids in executor.status_calls)


async def test_failure_names_the_cell_and_results_are_read(workflow_service: Service) -> None:
    service, executor = workflow_service, workflow_service.executor
    run = await submit(service)
    code, answer = await service.call("GET", f"runs/{run['id']}/notebook")
    assert code == 404 and "does not exist yet" in answer["message"]
    (plan,) = executor.plans
    executor.finish(plan, ["failed"])
    executor.files[f"{executor.folder(plan)}/output.ipynb"] = b'{"cells": []}'
    await service.tracker.poll()
    run = await get(service, run["id"])
    assert run["state"] == "failed" and run["reason"] == "cell 2: ValueError: x"
    assert await service.call("GET", f"runs/{run['id']}/notebook") == (200, {"cells": []})


async def test_sweep_is_one_job_with_members(workflow_service: Service) -> None:
    service, executor = workflow_service, workflow_service.executor
    run = await submit(
        service, sweep={"grid": {"label": ["a", "b", "c"]}}, max_parallel=2, parameters={}
    )
    (plan,) = executor.plans
    assert plan.parameters == [{"label": "a"}, {"label": "b"}, {"label": "c"}]
    assert plan.max_parallel == 2 and len(run["members"]) == 3
    executor.finish(plan, ["done", "failed", "done"])
    await service.tracker.poll()
    run = await get(service, run["id"])
    assert run["state"] == "failed" and run["reason"].startswith("member 1: cell 2")
    assert [m["state"] for m in run["members"]] == ["done", "failed", "done"]
    assert (await service.call("GET", f"runs/{run['id']}/notebook?member=7"))[0] == 400


CHAIN = """name: chain
steps:
  - name: simulate
    notebook: work/analysis.ipynb
    resources: {{site: alpha, partition: batch, cores: 1, memory_gb: 1}}
  - name: summarize
    notebook: work/analysis.ipynb
    depends_on: [simulate]
    resources: {{site: {site}, cores: 1, memory_gb: 1}}
"""


async def chain(service: Service, site: str) -> dict:
    body = {"yaml": CHAIN.format(site=site), "notebooks": {"work/analysis.ipynb": notebook_json()}}
    code, workflow = await service.call("POST", "workflows", body)
    assert code == 201, workflow
    return workflow


async def test_chain_on_one_site_uses_afterok_and_a_failure_cancels(
    workflow_service: Service,
) -> None:
    service, executor = workflow_service, workflow_service.executor
    workflow = await chain(service, "alpha")
    first, second = executor.plans
    assert second.depends_on_jobs == ["100"] and first.depends_on_jobs == []
    executor.finish(first, ["failed"])
    await service.tracker.poll()
    step2 = await get(service, workflow["steps"]["summarize"])
    assert step2["state"] == "cancelled"
    assert step2["reason"] == "step simulate failed: cell 2: ValueError: x"
    assert executor.cancelled == ["101"]
    code, shown = await service.call("GET", f"workflows/{workflow['id']}")
    assert shown["state"] == "failed" and "step simulate failed" in shown["reason"]
    code, cwl = await service.call("GET", f"workflows/{workflow['id']}/cwl")
    assert code == 200 and "cwlVersion: v1.2" in cwl


async def test_chain_across_sites_waits_for_the_first_step(workflow_service: Service) -> None:
    service, executor = workflow_service, workflow_service.executor
    workflow = await chain(service, "beta")
    (first,) = executor.plans
    step2 = await get(service, workflow["steps"]["summarize"])
    assert step2["state"] == "pending" and step2["reason"] == "waiting for simulate"
    executor.finish(first, ["done"])
    await service.tracker.poll()
    _, second = executor.plans
    assert second.site.name == "beta" and second.depends_on_jobs == []
    assert (await get(service, step2["id"]))["state"] == "queued"


async def test_a_run_advanced_twice_at_once_is_submitted_once(workflow_service: Service) -> None:
    """The tracking loop and a request both find a step pending while its submission awaits
    the hub (here: a slow users API, before the run is marked submitting): one job, one
    attempt."""
    service, executor = workflow_service, workflow_service.executor
    workflow = await chain(service, "beta")
    (first,) = executor.plans
    executor.finish(first, ["done"])
    user = service.hub.user

    async def slow_user(name: str) -> Any:
        await asyncio.sleep(0.2)
        return await user(name)

    service.hub.user = slow_user  # type: ignore[method-assign]
    step2 = workflow["steps"]["summarize"]
    await asyncio.gather(service.tracker.poll(), service.manager.advance(step2))
    assert len(executor.plans) == 2
    run = await get(service, step2)
    assert run["state"] == "queued" and len(run["attempts"]) == 1


@pytest.mark.parametrize(
    ("allow_move", "site"), [(False, "alpha"), (True, "beta")], ids=["retry", "move"]
)
async def test_lost_job_is_retried_then_fails(
    workflow_service: Service, allow_move: bool, site: str
) -> None:
    service, executor = workflow_service, workflow_service.executor
    run = await submit(service, retries=1, allow_move=allow_move)
    executor.finish(executor.plans[0], ["running"])  # status.json left mid-run: node lost
    await service.tracker.poll()
    run = await get(service, run["id"])
    assert run["state"] == "queued" and len(run["attempts"]) == 2
    assert run["attempts"][0]["state"] == "failed" and run["attempts"][1]["site"] == site
    retry = executor.plans[1]
    assert retry.attempt == 2 and retry.site.name == site
    assert retry.provenance["previous_attempts"][0]["job_id"] == "100"
    assert executor.prepared.count(run["id"]) == 2  # each attempt prepares its folder
    executor.finish(retry, ["missing"])
    await service.tracker.poll()
    run = await get(service, run["id"])
    assert run["state"] == "failed" and "before the notebook started" in run["reason"]
    assert len(executor.plans) == 2


async def test_soonest_run_goes_where_the_estimates_say(workflow_service: Service) -> None:
    service, executor = workflow_service, workflow_service.executor
    now = datetime.now(UTC)
    executor.estimates = {"alpha": Estimate(now + timedelta(hours=3)), "beta/gpu": Estimate(now)}
    run = await submit(service, resources={"site": "soonest", "cores": 1, "memory_gb": 1})
    (plan,) = executor.plans
    assert plan.site.name == "beta" and plan.request.partition == "gpu" and plan.account == "alice"
    assert run["site"] == "beta" and run["state"] == "queued"
    assert run["attempts"][0]["reason"] == "soonest site beta: starts now"
    # without estimates, the registry's order; a re-run is placed afresh
    executor.estimates = {"beta": Estimate(None, "down")}
    code, again = await service.call("POST", f"runs/{run['id']}/rerun", {})
    assert code == 201 and executor.plans[1].site.name == "alpha"
    assert again["attempts"][0]["reason"] == "soonest site alpha: no estimate (no estimate)"


async def test_a_move_goes_to_the_soonest_other_site(workflow_service: Service) -> None:
    service, executor = workflow_service, workflow_service.executor
    executor.estimates = {"beta": Estimate(datetime.now(UTC) + timedelta(minutes=30))}
    run = await submit(service, retries=1, allow_move=True)
    executor.finish(executor.plans[0], ["running"])
    await service.tracker.poll()
    run = await get(service, run["id"])
    assert [a["site"] for a in run["attempts"]] == ["alpha", "beta"]
    assert run["attempts"][1]["reason"] == "moved to beta: starts in about 30 min"
    (earlier,) = executor.plans[1].provenance["previous_attempts"]
    assert earlier | {"job_id": "100", "site": "alpha", "partition": "batch"} == earlier
    assert earlier["state"] == "FAILED" and earlier["start"] and earlier["end"]


@pytest.mark.parametrize(
    ("minutes", "text"),
    [(0, "starts now"), (20, "starts in about 20 min"), (300, "starts in about 5 h")],
)
def test_estimates_in_words(minutes: int, text: str) -> None:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    assert when(Estimate(at + timedelta(minutes=minutes)), at) == text
    assert when(Estimate(None, "sbatch: error")) == "no estimate (sbatch: error)"


async def test_cancel_and_rerun(workflow_service: Service) -> None:
    service, executor = workflow_service, workflow_service.executor
    run = await submit(service)
    code, cancelled = await service.call("POST", f"runs/{run['id']}/cancel", {})
    assert code == 200 and cancelled["state"] == "cancelled"
    assert cancelled["reason"] == "cancelled by alice" and executor.cancelled == ["100"]
    code, again = await service.call(
        "POST", f"runs/{run['id']}/rerun", {"parameters": {"label": "2"}}
    )
    assert code == 201 and again["based_on"] == run["id"]
    assert again["parameters"] == {"label": "2"} and again["notebook"] == run["notebook"]
    code, _ = await service.call("POST", f"runs/{run['id']}/rerun", {"parameters": {"$x": 1}})
    assert code == 400 and len(executor.plans) == 2


async def test_revoked_credential_and_needs_sign_in(workflow_service: Service) -> None:
    service, executor, hub = workflow_service, workflow_service.executor, workflow_service.hub
    run = await submit(service)
    executor.set("100", JobState.RUNNING)
    hub.token_answer = "sign-in"
    await service.tracker.poll()
    shown = await get(service, run["id"])
    assert shown["state"] == "needs-sign-in"
    assert shown["reason"] == "sign in again at http://hub.example/hub/login to continue"
    hub.token_answer = "ok"
    await service.tracker.poll()
    assert (await get(service, run["id"]))["state"] == "running"
    code, _ = await service.call("DELETE", f"credentials/{run['credential_id']}", token="bob-token")
    assert code == 403
    code, _ = await service.call("DELETE", f"credentials/{run['credential_id']}")
    assert code == 204 and hub.revoked == ["1"]
    shown = await get(service, run["id"])
    assert shown["state"] == "running" and shown["reason"] == "credential revoked"
    executor.finish(executor.plans[0], ["failed"])
    await service.tracker.poll()
    shown = await get(service, run["id"])
    assert shown["state"] == "failed" and shown["reason"].startswith("credential revoked: cell 2")


async def test_restart_finds_a_run_left_submitting(
    workflow_service: Service, tmp_path: Path
) -> None:
    service, executor = workflow_service, workflow_service.executor
    run = await submit(service)
    service.manager.store.update_run(run["id"], state="submitting", job_id=None)
    # a new process on the same database and site
    config = service.app.settings["workflows_settings"].config
    app = make_application(config, FakeHubAuth(), executor, service.hub)
    await app.settings["workflows_tracker"].recover()
    shown = app.settings["workflows_manager"].store.run(run["id"])
    assert shown["state"] == "queued" and shown["job_id"] == "100"
    assert len(executor.plans) == 1  # found by its job name, not submitted again


async def test_schedules_are_held_by_the_service(workflow_service: Service) -> None:
    service, executor = workflow_service, workflow_service.executor
    text = CHAIN.format(site="alpha").replace(
        "name: chain\n", 'name: nightly\nschedule: "0 3 * * *"\n'
    )
    body = {"yaml": text, "notebooks": {"work/analysis.ipynb": notebook_json()}}
    code, workflow = await service.call("POST", "workflows", body)
    assert code == 201 and workflow["state"] == "scheduled" and workflow["next_run"]
    assert workflow["steps"] == {} and not executor.plans  # nothing runs before its time
    await service.tracker.poll()
    assert not executor.plans
    service.manager.store.update_workflow(workflow["id"], next_run="2000-01-01T00:00:00Z")
    await service.tracker.poll()
    assert [p.site.name for p in executor.plans] == ["alpha", "alpha"]
    shown = (await service.call("GET", f"workflows/{workflow['id']}"))[1]
    assert set(shown["steps"]) == {"simulate", "summarize"}
    assert shown["next_run"] > "2000-01-01T00:00:00Z"
    code, cancelled = await service.call("POST", f"workflows/{workflow['id']}/cancel", {})
    assert code == 200 and cancelled["state"] == "cancelled" and cancelled["next_run"] is None
    assert sorted(executor.cancelled) == ["100", "101"]
    code, answer = await service.call("GET", f"workflows/{workflow['id']}", token="bob-token")
    assert (code, answer) == (403, {"message": "not your workflow"})
