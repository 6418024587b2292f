"""The Slurm adapter: argument lists and parsers, on recorded command output."""

import pytest

from continuum_spawners.schedulers.base import JobSpec, JobState, SubmitError
from continuum_spawners.schedulers.slurm import SlurmAdapter

SPEC = JobSpec(
    name="jupyterlab",
    partition="gpu",
    cores=2,
    memory_gb=4,
    walltime_minutes=90,
    workdir="/home/alice",
    output="/home/alice/.continuum-jupyterlab-%j.log",
    gpus=1,
    gpu_type="demo",
    account="proj1",
    env_names=("JUPYTERHUB_API_TOKEN", "PATH"),
)


def test_submit_argv():
    assert SlurmAdapter().submit_argv(SPEC) == [
        "sbatch",
        "--parsable",
        "--job-name=jupyterlab",
        "--partition=gpu",
        "--time=90",
        "--nodes=1",
        "--ntasks=1",
        "--cpus-per-task=2",
        "--mem=4G",
        "--chdir=/home/alice",
        "--output=/home/alice/.continuum-jupyterlab-%j.log",
        "--export=JUPYTERHUB_API_TOKEN,PATH",
        "--gres=gpu:demo:1",
        "--account=proj1",
    ]


def test_submit_argv_without_gpus_or_env():
    from dataclasses import replace

    argv = SlurmAdapter().submit_argv(replace(SPEC, gpus=0, account=None, env_names=()))
    assert "--export=NONE" in argv
    assert not any(a.startswith(("--gres", "--account")) for a in argv)


@pytest.mark.parametrize("out,job_id", [("42\n", "42"), ("17;alpha\n", "17"), ("7", "7")])
def test_parse_submit(out, job_id):
    assert SlurmAdapter().parse_submit(out) == job_id


@pytest.mark.parametrize("out", ["", "Submitted batch job\n", "x12;alpha", "1 2"])
def test_parse_submit_refuses_garbage(out):
    with pytest.raises(SubmitError):
        SlurmAdapter().parse_submit(out)


def test_status_is_one_call_for_all_jobs():
    assert SlurmAdapter().status_argv(["1", "22"]) == [
        "squeue",
        "--noheader",
        "--states=all",
        "--jobs=1,22",
        "--format=%i|%T|%r|%N|%S",
    ]
    with pytest.raises(ValueError):
        SlurmAdapter().status_argv(["1,2"])


SQUEUE = """\
101|PENDING|Resources||2026-11-21T10:00:00
102|RUNNING|None|alpha-n1|2026-11-21T09:00:00
103|COMPLETED|None|alpha-n1|2026-11-21T08:00:00
104|CONFIGURING|None|alpha-n1|N/A
"""


def test_parse_status_transcript():
    status = SlurmAdapter().parse_status(0, SQUEUE, "", ["101", "102", "103", "104", "105"])
    assert status["101"].state is JobState.PENDING
    assert status["101"].reason == "Resources"
    assert status["101"].start_time == "2026-11-21T10:00:00"
    assert status["102"].state is JobState.RUNNING and status["102"].node == "alpha-n1"
    assert status["103"].state is JobState.GONE
    assert status["104"].state is JobState.PENDING and status["104"].start_time == ""
    assert status["105"].state is JobState.GONE


def test_parse_status_purged_and_down():
    adapter = SlurmAdapter()
    purged = adapter.parse_status(1, "", "slurm_load_jobs error: Invalid job id specified", ["9"])
    assert purged["9"].state is JobState.GONE
    down = adapter.parse_status(
        1, "", "slurm_load_jobs error: Unable to contact slurm controller", ["9"]
    )
    assert down["9"].state is JobState.UNKNOWN


def test_cancel_argv():
    assert SlurmAdapter().cancel_argv(["5"]) == ["scancel", "5"]
    with pytest.raises(ValueError):
        SlurmAdapter().cancel_argv(["-u alice"])


def test_cancel_by_name_argv():
    name = "dg-0123456789abcdef0123456789abcdef"
    assert SlurmAdapter().cancel_name_argv(name) == ["scancel", f"--name={name}"]
    for bad in ("a,b", "x y", "", "n" * 65):
        with pytest.raises(ValueError, match="not a job name"):
            SlurmAdapter().cancel_name_argv(bad)


def test_estimate_is_a_test_only_submission():
    argv = SlurmAdapter().estimate_argv(SPEC)
    assert argv[:2] == ["sbatch", "--test-only"] and "--parsable" not in argv
    assert argv[2:] == SlurmAdapter().submit_argv(SPEC)[2:]


def test_parse_estimate_transcripts():
    adapter = SlurmAdapter()
    ok = adapter.parse_estimate(
        0,
        "",
        "sbatch: Job 7 to start at 2026-11-21T06:36:29 using 2 processors on nodes alpha-n1 "
        "in partition interactive\n",
    )
    assert ok.start is not None and ok.start.tzinfo is not None
    refused = adapter.parse_estimate(
        1, "", "allocation failure: Requested node configuration is not available\n"
    )
    assert refused.start is None and "not available" in refused.message
