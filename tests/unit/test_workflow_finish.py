"""The run's crate at the end: written once, by the member that ends last, and valid.

Members' ends are simulated by writing their ``status.json`` and executed notebooks as the
runner does; the real runner in a real Slurm job array is in
``tests/integration/test_workflow_sites.py``.
"""

import io
import json
import threading

import pytest

from continuum_hub.workflows.executor import SiteExecutor
from continuum_hub.workflows.finish import finish, job_facts, previous_attempts
from continuum_hub.workflows.runfolder import prepare, read_bundle
from fixtures.crates import validate
from fixtures.workflow_runs import make_plan, notebook_bytes

pytestmark = pytest.mark.workflows

START, END = "2026-12-01T10:00:00+00:00", "2026-12-01T10:30:00+00:00"


def sweep_folder(tmp_path, members=3, **plan):
    folder = tmp_path / "r-0123456789ab"
    values = [{"label": str(i)} for i in range(members)]
    bundle = SiteExecutor().bundle(make_plan(parameters=values, **plan))
    prepare(str(folder), read_bundle(io.BytesIO(bundle.encode())))
    return folder


def end_member(folder, index, state="done", prefix=None):
    member = folder / (prefix if prefix is not None else f"members/{index}/")
    status = {
        "state": state,
        "started": START,
        "ended": END,
        "job": {"job_id": "77", "task": str(index), "node": f"n{index % 2}"},
        "environment": {"packages_sha256": "e" * 64},
    }
    if state == "failed":
        status["error"] = {"name": "ValueError", "message": "asked to fail"}
    (member / "output.ipynb").write_bytes(notebook_bytes())
    (member / "result.txt").write_text(str(index))
    (member / "status.json").write_text(json.dumps(status))


def test_job_facts():
    env = {"SLURM_JOB_ID": "80", "SLURM_ARRAY_JOB_ID": "77", "SLURM_ARRAY_TASK_ID": "3"}
    assert job_facts({**env, "SLURMD_NODENAME": "n1"}) == {
        "job_id": "77",
        "task": "3",
        "node": "n1",
    }
    assert job_facts({"SLURM_JOB_ID": "80"}) == {"job_id": "80"}
    assert job_facts({}) == {}


def test_last_member_writes_the_crate(tmp_path, validator_cache):
    folder = sweep_folder(tmp_path, outputs=["result.txt"])
    end_member(folder, 2)
    assert finish(folder) is None  # members 0 and 1 have not ended
    end_member(folder, 0)
    assert finish(folder) is None
    end_member(folder, 1, state="failed")
    crate = finish(folder)
    assert crate == folder / "ro-crate-metadata.json"
    assert finish(folder) is None  # once
    graph = {e["@id"]: e for e in json.loads(crate.read_text())["@graph"]}
    action = graph["#attempt-1"]
    assert action["identifier"] == "77" and "ValueError: asked to fail" in action["error"]
    assert action["actionStatus"].endswith("FailedActionStatus")
    nodes = {graph[ref["@id"]]["name"] for ref in action["location"]}
    assert nodes == {"n0", "n1"}
    usage = {
        graph[ref["@id"]]["name"]: graph[ref["@id"]]["value"] for ref in action["resourceUsage"]
    }
    assert usage["core-hours"] == pytest.approx(1.5)  # three members, half an hour, one core
    # alpha: 10 W/core, PUE 1.3; 1 GB of memory at Green Algorithms' 0.3725 W/GB
    assert usage["energy"] == pytest.approx(1.5 * (10 + 0.3725) * 1.3 / 1000, rel=1e-4)
    assert usage["CO2e"] == pytest.approx(usage["energy"] * 250, rel=1e-4)
    results = {ref["@id"] for ref in action["result"]}
    assert {f"members/{i}/output.ipynb" for i in range(3)} <= results
    assert "members/1/result.txt" in results
    inputs = {ref["@id"] for ref in action["object"]}
    assert {f"members/{i}/parameters.json" for i in range(3)} <= inputs
    status, report = validate(folder, validator_cache, tmp_path)
    assert report["issues"] == [] and status == 0


def test_a_retried_run_has_one_action_per_attempt(tmp_path, validator_cache):
    folder = tmp_path / "r-0123456789ab"
    first = SiteExecutor().bundle(make_plan())
    prepare(str(folder), read_bundle(io.BytesIO(first.encode())))
    # the first job's own times and node (the service saw it from 09:00 to 09:20)
    job = {"job_id": "100", "node": "alpha-node2"}
    own = {"state": "running", "started": "2026-12-01T09:02:00+00:00", "job": job}
    (folder / "status.json").write_text(json.dumps({**own, "ended": "2026-12-01T09:11:00+00:00"}))
    # the service's attempts: one lost on alpha, one it never submitted (stopped before sbatch)
    lost = "the job ended while the notebook ran"
    stored = {
        "resources": {"site": "alpha", "partition": "batch"},
        "attempts": [
            {"site": "alpha", "job_id": "100", "state": "failed", "reason": lost,
             "submitted": "2026-12-01T09:00:00Z", "ended": "2026-12-01T09:20:00Z"},
            {"site": "alpha", "job_id": None, "state": "failed", "reason": "not submitted",
             "submitted": "2026-12-01T09:21:00Z", "ended": None},
        ],
    }  # fmt: skip
    previous = previous_attempts(stored)
    assert [(a["job_id"], a["partition"], a["state"]) for a in previous] == [
        ("100", "batch", "FAILED")
    ]
    again = make_plan(attempt=3, provenance={"previous_attempts": previous})
    prepare(str(folder), read_bundle(io.BytesIO(SiteExecutor().bundle(again).encode())))
    end_member(folder, 0, prefix="")
    crate = finish(folder)
    assert crate is not None
    graph = {e["@id"]: e for e in json.loads(crate.read_text())["@graph"]}
    earlier, last = graph["#attempt-1"], graph["#attempt-2"]
    own_times = ("2026-12-01T09:02:00+00:00", "2026-12-01T09:11:00+00:00")
    assert earlier["identifier"] == "100" and lost in earlier["error"]
    assert (earlier["startTime"], earlier["endTime"]) == own_times
    assert "alpha-node2" in json.dumps(earlier["location"])
    assert earlier["actionStatus"].endswith("FailedActionStatus")
    assert last["identifier"] == "77" and last["actionStatus"].endswith("CompletedActionStatus")
    assert "#attempt-3" not in graph
    status, report = validate(folder, validator_cache, tmp_path)
    assert report["issues"] == [] and status == 0


def test_single_run_crate_names_its_parameters(tmp_path, validator_cache):
    folder = tmp_path / "r-0123456789ab"
    plan = make_plan(parameters=[{"label": "only"}], provenance={"based_on": "r-aaaaaaaaaaaa"})
    prepare(str(folder), read_bundle(io.BytesIO(SiteExecutor().bundle(plan).encode())))
    end_member(folder, 0, prefix="")
    crate = json.loads(finish(folder).read_text())
    graph = {e["@id"]: e for e in crate["@graph"]}
    assert graph["#parameter-value-label"]["value"] == "only"
    assert graph["./"]["isBasedOn"] == {"@id": "r-aaaaaaaaaaaa"}
    status, report = validate(folder, validator_cache, tmp_path)
    assert report["issues"] == [] and status == 0


def test_members_ending_together_write_one_crate(tmp_path):
    folder = sweep_folder(tmp_path, members=8)
    for index in range(8):
        end_member(folder, index)
    written = []
    threads = [threading.Thread(target=lambda: written.append(finish(folder))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len([path for path in written if path is not None]) == 1
