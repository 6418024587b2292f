"""Run folders made and read as the user: ``continuum-workflow-run prepare|report|cat``.

The bundle the executor sends is read back by ``prepare`` (round trip into files the runner
accepts); every refusal — a symbolic link on the way, an existing folder, ``..``, oversized
input, files outside the readable set — leaves nothing written.
"""

import io
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from continuum_hub.workflows import runfolder
from continuum_hub.workflows.runfolder import RunFolderRefused, cat, prepare, read_bundle, report
from continuum_hub.workflows.runner import read_run
from fixtures.workflow_runs import TOKEN, make_plan, notebook_bytes

pytestmark = pytest.mark.workflows

RUNNER = Path(sys.executable).with_name("continuum-workflow-run")


def bundle_of(plan) -> dict:
    from continuum_hub.workflows.executor import SiteExecutor

    return read_bundle(io.BytesIO(SiteExecutor().bundle(plan).encode()))


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_single_run_round_trip(tmp_path):
    folder = tmp_path / "runs" / "r-0123456789ab"
    made = prepare(str(folder), bundle_of(make_plan(parameters=[{"label": "a'b\n$(x)"}])))
    assert made["folder"] == str(folder) and made["members"] == 1
    run = json.loads((folder / "run.json").read_text())
    assert run["parameters"] == {"label": "a'b\n$(x)"}
    assert run["notebook"] == f"snapshots/{made['sha256']}.ipynb"
    assert (folder / run["notebook"]).read_bytes() == notebook_bytes()
    assert run["site"] == "alpha" and run["person"]["username"] == "alice"
    assert "hub_token" not in json.dumps(run) and TOKEN not in json.dumps(run)
    assert (folder / ".hub-token").read_text() == TOKEN
    # private: folders 0700 (the parent made too), files 0600
    assert mode(folder.parent) == mode(folder) == mode(folder / "snapshots") == 0o700
    for path in (folder / "run.json", folder / ".hub-token", folder / run["notebook"]):
        assert mode(path) == 0o600
    spec = read_run(folder)
    assert spec.parameters == {"label": "a'b\n$(x)"} and spec.member is None


def test_sweep_round_trip(tmp_path):
    members = [{"energy": 1.0, "label": "x"}, {"energy": 2.0, "label": "x"}]
    folder = tmp_path / "r-0123456789ab"
    prepare(str(folder), bundle_of(make_plan(parameters=members, hub_token=None)))
    run = json.loads((folder / "run.json").read_text())
    assert run["members"] == 2 and run["common_parameters"] == {"label": "x"}
    assert not (folder / ".hub-token").exists()
    for index, values in enumerate(members):
        assert read_run(folder, member=index).parameters == values
        assert mode(folder / "members" / str(index) / "parameters.json") == 0o600


def test_existing_folder_is_refused(tmp_path):
    folder = tmp_path / "r-0123456789ab"
    folder.mkdir()
    (folder / "mine.txt").write_text("keep")
    with pytest.raises(RunFolderRefused, match="exists and is not empty"):
        prepare(str(folder), bundle_of(make_plan()))
    assert sorted(p.name for p in folder.iterdir()) == ["mine.txt"]
    # an empty folder is taken (and made private)
    empty = tmp_path / "r-111111111111"
    empty.mkdir(mode=0o755)
    prepare(str(empty), bundle_of(make_plan()))
    assert mode(empty) == 0o700


def test_a_later_attempt_of_the_same_run_is_prepared_again(tmp_path):
    folder = tmp_path / "r-0123456789ab"
    prepare(str(folder), bundle_of(make_plan(outputs=["results/", "summary.json"])))
    # what attempt 1 left when its node failed
    (folder / "status.json").write_text('{"state": "running", "cell": 2}')
    (folder / "output.ipynb").write_text("{}")
    (folder / "results").mkdir()
    (folder / "results" / "part.csv").write_text("1")
    (folder / "slurm-100.out").write_text("log")
    earlier = {"site": "alpha", "job_id": "100", "state": "FAILED", "start": "2026-01-01T00:00Z"}
    plan = make_plan(
        options={"site": "beta", "cores": 1, "memory_gb": 1},
        attempt=2,
        hub_token="new-token",
        outputs=["results/", "summary.json"],
        provenance={"previous_attempts": [earlier]},
    )
    prepare(str(folder), bundle_of(plan))
    run = json.loads((folder / "run.json").read_text())
    assert run["attempt"] == 2 and run["site"] == "beta" and run["partition"] == "gpu"
    # the earlier attempt's partition is the one its run.json named
    assert run["previous_attempts"] == [{**earlier, "partition": "batch"}]
    assert (folder / run["notebook"]).read_bytes() == notebook_bytes()
    assert (folder / ".hub-token").read_text() == "new-token"
    assert mode(folder / ".hub-token") == mode(folder / "run.json") == 0o600
    left = folder / "attempts" / "1"
    assert sorted(p.name for p in left.iterdir()) == ["output.ipynb", "results", "status.json"]
    assert (left / "results" / "part.csv").read_text() == "1"
    assert not (folder / "status.json").exists() and not (folder / "results").exists()
    assert (folder / "slurm-100.out").exists()  # logs have their job in their name
    assert read_run(folder).parameters == {"label": "single"}
    # the same attempt again, an earlier one, or another run: refused, nothing changed
    with pytest.raises(RunFolderRefused, match="holds attempt 2, not one before 2"):
        prepare(str(folder), bundle_of(plan))
    other = make_plan(run_id="r-111111111111", attempt=3)
    with pytest.raises(RunFolderRefused, match="exists and is not empty"):
        prepare(str(folder), bundle_of(other))
    assert json.loads((folder / "run.json").read_text()) == run


def test_a_sweeps_next_attempt_moves_each_members_results(tmp_path):
    members = [{"label": "a"}, {"label": "b"}]
    folder = tmp_path / "r-0123456789ab"
    prepare(str(folder), bundle_of(make_plan(parameters=members)))
    for index in range(2):
        (folder / "members" / str(index) / "status.json").write_text('{"state": "done"}')
    (folder / "ro-crate-metadata.json").write_text("{}")
    prepare(str(folder), bundle_of(make_plan(parameters=members, attempt=2)))
    for index in range(2):
        member = folder / "attempts" / "1" / "members" / str(index)
        assert (member / "status.json").exists()
        assert not (folder / "members" / str(index) / "status.json").exists()
        assert read_run(folder, member=index).parameters == members[index]
    assert (folder / "attempts" / "1" / "ro-crate-metadata.json").exists()
    assert not (folder / "ro-crate-metadata.json").exists()
    with pytest.raises(RunFolderRefused, match="another run's notebook or members"):
        prepare(str(folder), bundle_of(make_plan(parameters=members[:1], attempt=3)))


@pytest.mark.parametrize("where", ["folder", "parent"])
def test_symlink_on_the_way_is_refused(tmp_path, where):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    if where == "folder":
        (tmp_path / "runs").mkdir()
        (tmp_path / "runs" / "r-0123456789ab").symlink_to(elsewhere)
    else:
        (tmp_path / "runs").symlink_to(elsewhere)
    with pytest.raises(RunFolderRefused, match="symbolic link"):
        prepare(str(tmp_path / "runs" / "r-0123456789ab"), bundle_of(make_plan()))
    assert list(elsewhere.iterdir()) == []


@pytest.mark.parametrize("path", ["runs/r-1", "/tmp/../etc/r-1", "~root", "/tmp/a\x00b"])
def test_folder_must_be_absolute_without_dotdot(path):
    with pytest.raises(RunFolderRefused, match="absolute path"):
        prepare(path, {})


def test_tilde_is_the_accounts_home():
    import pwd

    home = pwd.getpwuid(os.getuid()).pw_dir.rstrip("/")
    assert runfolder.absolute_folder("~/continuum-runs//r-1/") == f"{home}/continuum-runs/r-1"


def test_oversized_bundle_is_refused():
    with pytest.raises(RunFolderRefused, match="larger than 100 bytes"):
        read_bundle(io.BytesIO(b"{" + b" " * 200 + b"}"), limit=100)


@pytest.mark.parametrize(
    "change,message",
    [
        ({"version": 2}, "version 1"),
        ({"run": "x"}, "no run description"),
        ({"notebook": "not base64!"}, "notebook"),
        ({"notebook": "eyJhIjogMX0="}, "not a Jupyter notebook"),  # {"a": 1}
        ({"members": []}, "1 to 1000"),
        ({"members": [{"import": 1}]}, "parameters"),
        ({"members": [{"x": "a\x00b"}]}, "parameters"),
        ({"hub_token": "abc\ndef"}, "not a token"),
    ],
)
def test_bad_bundles_are_refused(change, message):
    from continuum_hub.workflows.executor import SiteExecutor

    bundle = {**json.loads(SiteExecutor().bundle(make_plan())), **change}
    with pytest.raises(RunFolderRefused, match=message):
        read_bundle(io.BytesIO(json.dumps(bundle).encode()))


@pytest.fixture
def finished(tmp_path) -> Path:
    folder = tmp_path / "r-0123456789ab"
    prepare(str(folder), bundle_of(make_plan(parameters=[{"n": 1}, {"n": 2}])))
    member = folder / "members" / "1"
    (member / "status.json").write_text('{"state": "done", "cell": 3, "cells": 3}')
    (member / "output.ipynb").write_bytes(notebook_bytes())
    (folder / "slurm-12_1.out").write_text("hello\n")
    return folder


def test_report(finished):
    found = report(str(finished))
    assert found["crate"] is False and found["folder"] == str(finished)
    assert found["members"] == [
        {"index": 0, "status": None, "output": False},
        {"index": 1, "status": {"state": "done", "cell": 3, "cells": 3}, "output": True},
    ]


def test_report_refuses_a_linked_status(finished, tmp_path):
    secret = tmp_path / "secret.json"
    secret.write_text('{"state": "done"}')
    (finished / "members" / "0" / "status.json").symlink_to(secret)
    with pytest.raises(RunFolderRefused):
        report(str(finished))


def test_cat_reads_results_only(finished, tmp_path):
    assert cat(str(finished), "members/1/output.ipynb") == notebook_bytes()
    assert cat(str(finished), "slurm-12_1.out") == b"hello\n"
    for rel in ("run.json", ".hub-token", "../x", "members/1/../../run.json", "/etc/passwd",
                "members/1/parameters.json", "slurm-1.sh"):  # fmt: skip
        with pytest.raises(RunFolderRefused, match="not a result file"):
            cat(str(finished), rel)
    with pytest.raises(RunFolderRefused, match="does not exist"):
        cat(str(finished), "members/0/output.ipynb")
    with pytest.raises(RunFolderRefused, match="larger than 3 bytes"):
        cat(str(finished), "slurm-12_1.out", limit=3)
    (finished / "output.ipynb").symlink_to(tmp_path / "elsewhere.ipynb")
    with pytest.raises(RunFolderRefused):
        cat(str(finished), "output.ipynb")


def test_command_line(finished, tmp_path):
    """The subcommands as the executor runs them: JSON out, exit 3 with a message when refused."""
    result = subprocess.run(
        [str(RUNNER), "report", str(finished)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and json.loads(result.stdout)["members"][1]["output"]
    result = subprocess.run(
        [str(RUNNER), "prepare", str(tmp_path / "r-222222222222")],
        input="{" + " " * runfolder.MAX_BUNDLE_BYTES + "}",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 3 and "larger than" in result.stderr
    assert not (tmp_path / "r-222222222222").exists()
    result = subprocess.run(
        [str(RUNNER), "cat", str(finished), "run.json"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 3 and "not a result file" in result.stderr
