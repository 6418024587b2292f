"""The site executor's pure parts: the job's argv, environment and script, and member states.

The real thing (sbatch, arrays, dependencies, cancel, the runner as the user) is exercised in
``tests/integration/test_workflow_sites.py``; here a recording transport stands in for the site.
"""

import json
import shlex
from dataclasses import replace

import pytest

from continuum_hub.workflows import executor as executor_module
from continuum_hub.workflows.executor import (
    LOST,
    NEVER_STARTED,
    SiteExecutor,
    member_states,
    run_state,
)
from continuum_spawners.schedulers.base import JobState, JobStatus
from continuum_spawners.schedulers.transport import CommandResult
from fixtures.workflow_runs import TOKEN, make_plan

pytestmark = pytest.mark.workflows

FOLDER = "/home/alice/continuum-runs/r-0123456789ab"
EXECUTOR = SiteExecutor(
    runner_command=["/opt/venv/bin/continuum-workflow-run"],
    token_agent=["/opt/venv/bin/continuum-token-agent"],
)


def test_single_run_argv_and_environment():
    argv, env = EXECUTOR.submit_argv_env(make_plan(), FOLDER)
    assert argv[:3] == ["sbatch", "--parsable", "--job-name=cw-r-0123456789ab"]
    assert f"--chdir={FOLDER}" in argv
    assert f"--output={FOLDER}/slurm-%j.out" in argv and f"--error={FOLDER}/slurm-%j.err" in argv
    assert not [a for a in argv if a.startswith(("--array", "--dependency"))]
    assert "--export=" + ",".join(sorted(env)) in argv
    assert env["CONTINUUM_RUN_ID"] == "r-0123456789ab"
    assert env["BEARER_TOKEN_FILE"] == f"{FOLDER}/.bearer-token"
    assert env["JUPYTERHUB_API_URL"] == "http://127.0.0.1:8081/hub/api"
    assert env["PATH"].startswith("/opt/venv/bin:") and env["SLURM_CONF"] == "/a"
    assert env["CONTINUUM_SITE"] == "alpha" and env["CONTINUUM_PARTITION"] == "batch"
    # the token is in neither the command line nor the environment: only in the run folder
    assert TOKEN not in json.dumps([argv, env])


def test_sweep_is_one_array_after_its_dependencies():
    plan = make_plan(
        parameters=[{"label": str(i)} for i in range(5)],
        max_parallel=2,
        depends_on_jobs=["17", "18"],
    )
    argv, _ = EXECUTOR.submit_argv_env(plan, FOLDER)
    assert "--array=0-4%2" in argv
    assert "--dependency=afterok:17:18" in argv and "--kill-on-invalid-dep=yes" in argv
    assert f"--output={FOLDER}/slurm-%A_%a.out" in argv
    uncapped, _ = EXECUTOR.submit_argv_env(replace(plan, max_parallel=None), FOLDER)
    assert "--array=0-4" in uncapped


def test_bad_dependencies_and_run_ids_are_refused():
    with pytest.raises(ValueError, match="not a job id"):
        EXECUTOR.submit_argv_env(make_plan(depends_on_jobs=["1;rm"]), FOLDER)
    with pytest.raises(ValueError, match="not a run id"):
        EXECUTOR.folder(make_plan(run_id="r-../../x"))


def test_job_script_is_fixed_text_with_quoted_values():
    plan = make_plan(
        options={"site": "alpha", "partition": "batch", "environment": "modular"},
        parameters=[{"label": "$(touch /tmp/pwned)'\n"}],
    )
    odd = "/home/al ice/runs/r-0123456789ab"
    script = EXECUTOR.job_script(plan, odd)
    assert script.startswith("#!/bin/bash\n")
    assert "module load python/3.11 root\n" in script
    assert f"exec /opt/venv/bin/continuum-workflow-run {shlex.quote(odd)}\n" in script
    hub_token = shlex.quote(f"{odd}/.hub-token")
    assert f"--token-file {hub_token} &" in script
    # nothing the submitter wrote: parameters and token stay in the run folder
    assert "pwned" not in script and TOKEN not in script
    for line in script.splitlines():
        if line and not line.startswith("#"):
            shlex.split(line)  # every line is well-formed shell words


def test_without_token_no_agent_and_no_bearer_file():
    plan = make_plan(hub_token=None)
    assert "token-agent" not in EXECUTOR.job_script(plan, FOLDER)
    _, env = EXECUTOR.submit_argv_env(plan, FOLDER)
    assert "BEARER_TOKEN_FILE" not in env
    no_agent = SiteExecutor(runner_command=["/r"], token_agent=[])
    assert "token" not in no_agent.job_script(make_plan(), FOLDER).lower().replace("tokens", "")


def test_run_json_facts():
    facts = EXECUTOR.run_json(make_plan(provenance={"based_on": "r-aaaaaaaaaaaa", "orcid": "x"}))
    assert facts["power"] == {
        "watts_per_core": 10,
        "watts_per_gpu": 0.0,
        "pue": 1.3,
        "grid_gco2e_per_kwh": 250,
        "memory_watts_per_gb": 0.3725,
        "source": "registry",
    }
    assert (facts["site"], facts["partition"], facts["cores"]) == ("alpha", "batch", 1)
    assert facts["person"] == {"username": "alice", "name": "", "orcid": "x"}
    assert facts["based_on"] == "r-aaaaaaaaaaaa"


class Recorder:
    """A transport that records what it is asked to run and answers with fixed results."""

    def __init__(self, *results):
        self.results = list(results)
        self.calls = []

    async def run(self, argv, *, user=None, env=None, stdin=None):
        self.calls.append({"argv": list(argv), "user": user, "env": env, "stdin": stdin})
        return self.results.pop(0)


async def test_prepare_then_submit_as_the_account(monkeypatch):
    site = Recorder(
        CommandResult(0, json.dumps({"folder": FOLDER, "members": 1}), ""),
        CommandResult(0, "4242\n", ""),
    )
    monkeypatch.setattr(executor_module, "transport_for", lambda *_: site)
    plan = make_plan(site=replace(make_plan().site, transport="ssh"))
    assert EXECUTOR.folder(plan) == "~/continuum-runs/r-0123456789ab"
    assert await EXECUTOR.prepare(plan) == FOLDER
    assert await EXECUTOR.submit(plan) == "4242"
    prepare, submit = site.calls
    assert prepare["argv"] == [
        "/opt/venv/bin/continuum-workflow-run",
        "prepare",
        "~/continuum-runs/r-0123456789ab",
    ]
    assert prepare["user"] == submit["user"] == "alice"
    assert json.loads(prepare["stdin"])["hub_token"] == TOKEN
    # after prepare the folder is the absolute one the site made
    assert f"--chdir={FOLDER}" in submit["argv"] and submit["stdin"].startswith("#!/bin/bash")


async def test_estimate_is_sbatch_test_only_as_the_account(monkeypatch):
    answer = "sbatch: Job 7 to start at 2030-01-01T06:36:29 using 1 processors on nodes n1\n"
    site = Recorder(CommandResult(0, "", answer), CommandResult(1, "", "sbatch: error: down\n"))
    monkeypatch.setattr(executor_module, "transport_for", lambda *_: site)
    plan = make_plan(site=replace(make_plan().site, transport="ssh"))
    estimate = await EXECUTOR.estimate(plan.site, "alice", plan.request)
    assert estimate.start is not None and estimate.start.year == 2030
    (call,) = site.calls
    assert call["user"] == "alice" and "--test-only" in call["argv"]
    assert "--partition=batch" in call["argv"] and call["stdin"].startswith("#!/bin/bash")
    # a site that cannot say gives no start, and no error
    estimate = await EXECUTOR.estimate(plan.site, "alice", plan.request)
    assert estimate.start is None and "down" in estimate.message


async def test_refusals_carry_the_sites_message(monkeypatch):
    site = Recorder(
        CommandResult(3, "", "continuum-workflow-run prepare: run folder exists\n"),
        CommandResult(1, "", "sbatch: error: Batch job submission failed: Invalid account\n"),
        CommandResult(1, "", "scancel: error: Kill job error on job id 9: Invalid job id\n"),
    )
    monkeypatch.setattr(executor_module, "transport_for", lambda *_: site)
    plan = make_plan(run_id="r-999999999999")
    with pytest.raises(RuntimeError, match=r"site alpha: .*run folder exists"):
        await EXECUTOR.prepare(plan)
    with pytest.raises(RuntimeError, match="Invalid account"):
        await EXECUTOR.submit(plan)
    await EXECUTOR.cancel(plan.site, "alice", ["9"])  # already gone: no error


async def test_find_job_by_name(monkeypatch):
    site = Recorder(CommandResult(0, "51\n51\n49\n", ""), CommandResult(0, "", ""))
    monkeypatch.setattr(executor_module, "transport_for", lambda *_: site)
    plan = make_plan()
    assert await EXECUTOR.find_job(plan.site, "alice", plan.run_id) == "51"
    assert await EXECUTOR.find_job(plan.site, "alice", plan.run_id) is None
    assert site.calls[0]["argv"][-2:] == [f"--name=cw-{plan.run_id}", "--format=%F"]
    assert site.calls[0]["user"] == "alice"
    with pytest.raises(ValueError, match="not a run id"):
        await EXECUTOR.find_job(plan.site, "alice", "x,y")


def status(job_id, state, raw="", reason="", node=""):
    return JobStatus(job_id, state, raw_state=raw, reason=reason, node=node)


def member(index, written=None, output=False):
    return {"index": index, "status": written, "output": output}


FAILED = {"state": "failed", "failed_cell": 2, "error": {"name": "ValueError", "message": "no"}}


PENDING, RUNNING, GONE = JobState.PENDING, JobState.RUNNING, JobState.GONE
DEPENDENCY = "DependencyNeverSatisfied"


@pytest.mark.parametrize(
    "members,statuses,expected",
    [
        ([member(0)], {"7": status("7", PENDING, reason="Prio")}, [("queued", "Prio")]),
        ([member(0, {"state": "running"})], {"7": status("7", RUNNING)}, [("running", "")]),
        ([member(0, {"state": "done"}, True)], {"7": status("7", GONE)}, [("done", "")]),
        ([member(0, FAILED)], {}, [("failed", "cell 2: ValueError: no")]),
        ([member(0, {"state": "running"})], {"7": status("7", GONE)}, [("failed", LOST)]),
        (
            [member(0)],
            {"7": status("7", GONE, "CANCELLED", DEPENDENCY)},
            [("cancelled", DEPENDENCY)],
        ),
        ([member(0)], {"7": status("7", GONE)}, [("failed", NEVER_STARTED)]),
        ([member(0)], {"7": status("7", JobState.UNKNOWN, reason="down")}, [("unknown", "down")]),
        (
            [member(0, {"state": "done"}), member(1), member(2)],
            {"7_1": status("7_1", RUNNING), "7": status("7", PENDING, reason="JobArrayTaskLimit")},
            [("done", ""), ("running", ""), ("queued", "JobArrayTaskLimit")],
        ),
    ],
    ids=["queued", "running", "done", "failed", "lost", "dependency", "never", "unknown", "array"],
)
def test_member_states(members, statuses, expected):
    found = member_states({"members": members}, statuses, "7")
    assert [(m["state"], m["reason"]) for m in found] == expected


@pytest.mark.parametrize(
    "states,run",
    [
        (["done", "running", "queued"], "running"),
        (["done", "queued"], "queued"),
        (["done", "done"], "done"),
        (["done", "failed"], "failed"),
        (["cancelled"], "cancelled"),
        (["done", "unknown"], "unknown"),
    ],
)
def test_run_state(states, run):
    assert run_state([{"state": s} for s in states]) == run


def test_forget_leaves_ended_jobs_out_of_status_queries():
    from continuum_spawners.schedulers import clear_monitors, monitor_for

    site = make_plan().site
    try:
        monitor = monitor_for(site)
        monitor.watch("5")
        monitor.watch("6")
        EXECUTOR.forget(site, ["5"])
        assert monitor.watched == {"6"}
    finally:
        clear_monitors()
