"""The Slurm adapter: argument lists and parsers, on recorded command output."""

from dataclasses import replace

import pytest

from continuum_spawners.schedulers.base import JobSpec, JobState, SubmitError, checked_array
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
        "--array",
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


# -- job arrays and dependencies (batch runs) -------------------------------------------------


def test_submit_argv_of_an_array_with_dependencies():
    spec = replace(
        SPEC,
        array="0-2%2",
        dependency=["41", "42"],
        output="/r/slurm-%A_%a.out",
        error="/r/slurm-%A_%a.err",
    )
    assert SlurmAdapter().submit_argv(spec)[10:] == [
        "--output=/r/slurm-%A_%a.out",
        "--export=JUPYTERHUB_API_TOKEN,PATH",
        "--error=/r/slurm-%A_%a.err",
        "--array=0-2%2",
        "--dependency=afterok:41:42",
        "--kill-on-invalid-dep=yes",
        "--gres=gpu:demo:1",
        "--account=proj1",
    ]
    # a plain job has neither
    plain = SlurmAdapter().submit_argv(SPEC)
    assert not [a for a in plain if a.startswith(("--array", "--dependency", "--kill", "--error"))]


@pytest.mark.parametrize("array", ["0-0", "0-9", "3-7%1", "0-999%50"])
def test_arrays_accepted(array):
    assert checked_array(array) == array
    assert replace(SPEC, array=array).array == array


@pytest.mark.parametrize(
    "array,message",
    [
        ("0-1000", "more than 1000 tasks"),
        ("5-2", "below the first"),
        ("0-3%0", "at most 0"),
        ("1,2,3", "not a job array"),
        ("0-3;rm -rf /", "not a job array"),
        ("-1-3", "not a job array"),
        ("0-3%", "not a job array"),
    ],
)
def test_arrays_refused(array, message):
    with pytest.raises(ValueError, match=message):
        replace(SPEC, array=array)


@pytest.mark.parametrize("dependency", [["1,2"], ["afterok:1"], ["1 2"], [""], ["-1"]])
def test_dependencies_must_be_job_ids(dependency):
    with pytest.raises(ValueError, match="not a job id"):
        replace(SPEC, dependency=dependency)


# squeue --array: one line per task, pending ones too; an older squeue (or one without
# --array) prints a pending range as "ID_[FIRST-LAST%MAX]"
SQUEUE_ARRAY = """\
201_0|RUNNING|None|alpha-n1|2026-11-21T09:00:00
201_1|COMPLETING|None|alpha-n1|2026-11-21T09:00:00
201_2|PENDING|JobArrayTaskLimit||N/A
202_0|PENDING|Dependency||N/A
203_[4-6%2]|PENDING|Resources||2026-11-21T10:00:00
204|RUNNING|None|alpha-n2|2026-11-21T08:00:00
205_1|FAILED|NonZeroExitCode|alpha-n1|2026-11-21T08:00:00
"""


def test_parse_status_reports_array_tasks():
    status = SlurmAdapter().parse_status(0, SQUEUE_ARRAY, "", ["201", "202", "203", "204", "205"])
    assert status["201_0"].state is JobState.RUNNING and status["201_0"].node == "alpha-n1"
    assert status["201_1"].state is JobState.RUNNING
    assert status["201_2"].state is JobState.PENDING
    assert status["201_2"].reason == "JobArrayTaskLimit"
    # the array's own id: its liveliest task
    assert status["201"].state is JobState.RUNNING and status["201"].node == "alpha-n1"
    assert status["202"].state is JobState.PENDING and status["202"].reason == "Dependency"
    # an unexpanded pending range is expanded into its tasks
    assert [status[f"203_{i}"].state for i in (4, 5, 6)] == [JobState.PENDING] * 3
    assert "203_3" not in status and "203_7" not in status
    assert status["203"].state is JobState.PENDING and status["203"].reason == "Resources"
    # plain jobs as before
    assert status["204"].state is JobState.RUNNING and status["204"].node == "alpha-n2"
    assert status["205"].state is JobState.GONE and status["205_1"].raw_state == "FAILED"


def test_parse_status_array_gone_from_the_queue():
    status = SlurmAdapter().parse_status(0, "", "", ["301"])
    assert status == {"301": status["301"]} and status["301"].state is JobState.GONE


def test_parse_status_only_names_arrays_asked_for():
    status = SlurmAdapter().parse_status(0, "401_0|RUNNING|None|n1|N/A\n", "", ["402"])
    assert "401" not in status and status["402"].state is JobState.GONE


def test_find_by_name_argv():
    assert SlurmAdapter().find_name_argv("cw-r-0123456789ab") == [
        "squeue",
        "--noheader",
        "--me",
        "--states=all",
        "--name=cw-r-0123456789ab",
        "--format=%F",
    ]
    with pytest.raises(ValueError, match="not a job name"):
        SlurmAdapter().find_name_argv("a,b")
