"""Units of ``continuum_lab``: job information from the environment and the hub, settings."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from lab_support import JOB_ENV
from traitlets import TraitError

from continuum_lab.config import ContinuumLab
from continuum_lab.job import JobInfo, job_from_environment, job_from_hub, parse_time

pytestmark = pytest.mark.lab

NOW = datetime(2026, 11, 21, 6, 40, tzinfo=UTC)
# the shared job environment, for a job that started at 06:30 with an hour of walltime
ENV = {
    **JOB_ENV,
    "CONTINUUM_JOB_END": "2026-11-21T07:30:00Z",
    "SLURM_JOB_ID": "17",
}


@pytest.mark.parametrize(
    "text,expected",
    [
        ("2026-11-21T06:30:00Z", datetime(2026, 11, 21, 6, 30, tzinfo=UTC)),
        ("2026-11-21T07:30:00+01:00", datetime(2026, 11, 21, 6, 30, tzinfo=UTC)),
        ("2026-11-21T06:30:00", datetime(2026, 11, 21, 6, 30, tzinfo=UTC)),
        ("", None),
        ("tomorrow", None),
        (None, None),
        (1234, None),
    ],
    ids=["zulu", "offset", "naive-is-utc", "empty", "garbage", "none", "number"],
)
def test_parse_time(text: object, expected: datetime | None) -> None:
    assert parse_time(text) == expected


def test_environment_gives_the_whole_job() -> None:
    info = job_from_environment(ENV)
    assert info == JobInfo(
        source="environment",
        site="alpha",
        site_label="Alpha HPC centre (CPU)",
        partition="interactive",
        job_id="17",
        state="running",
        node="alpha-node1",
        cores=2,
        memory_gb=4.0,
        gpus=0,
        environment="default",
        walltime_minutes=60,
        start_time=datetime(2026, 11, 21, 6, 30, tzinfo=UTC),
        end_time=datetime(2026, 11, 21, 7, 30, tzinfo=UTC),
    )
    assert info.remaining_seconds(NOW) == 50 * 60


@pytest.mark.parametrize(
    "env,field,expected",
    [
        ({}, "state", "unknown"),
        ({"CONTINUUM_ENVIRONMENT": "root-6.32"}, "environment", "root-6.32"),
        ({"CONTINUUM_ENVIRONMENT": " "}, "environment", "default"),
        ({"CONTINUUM_CORES": "many"}, "cores", None),
        ({"CONTINUUM_MEMORY_GB": "1.5"}, "memory_gb", 1.5),
        ({"CONTINUUM_JOB_END": "soon"}, "end_time", None),
    ],
    ids=["no-job", "environment", "blank-environment", "bad-int", "float", "bad-time"],
)
def test_environment_values_are_checked(env: dict[str, str], field: str, expected: object) -> None:
    assert getattr(job_from_environment(env), field) == expected


def test_remaining_time_never_negative_and_unknown_without_end() -> None:
    info = job_from_environment(ENV)
    assert info.remaining_seconds(datetime(2026, 11, 21, 8, 0, tzinfo=UTC)) == 0
    assert job_from_environment({}).remaining_seconds(NOW) is None


def test_hub_answer_is_preferred_and_completed_from_the_environment() -> None:
    hub = job_from_hub(
        {
            "site": "alpha",
            "partition": "interactive",
            "job_id": "17",
            "state": "running",
            "node": "alpha-node2",
            "cores": 2,
            "memory_gb": 4,
            "gpus": 0,
            "walltime_minutes": 60,
            "start_time": "2026-11-21T06:31:00Z",
            "end_time": "2026-11-21T07:31:00Z",
            "remaining_seconds": 3000,
            "site_label": None,
        }
    )
    merged = hub.merged(job_from_environment(ENV))
    assert merged.source == "hub"
    assert merged.node == "alpha-node2"  # the scheduler's view wins
    assert merged.end_time == datetime(2026, 11, 21, 7, 31, tzinfo=UTC)
    assert merged.site_label == "Alpha HPC centre (CPU)"  # unknown to the hub: environment's


@pytest.mark.parametrize(
    "data,field,expected",
    [
        ({"state": "exploded"}, "state", "unknown"),
        ({"state": "pending"}, "state", "pending"),
        ({"cores": True}, "cores", None),
        ({"job_id": 17}, "job_id", "17"),
        ({"end_time": None}, "end_time", None),
    ],
    ids=["unknown-state", "pending", "bool-is-no-int", "numeric-job-id", "null-time"],
)
def test_hub_values_are_checked(data: dict[str, object], field: str, expected: object) -> None:
    assert getattr(job_from_hub(data), field) == expected


def test_json_for_the_frontend() -> None:
    data = job_from_environment(ENV).to_json(NOW)
    assert data["end_time"] == "2026-11-21T07:30:00Z"
    assert data["remaining_seconds"] == 3000
    assert data["now"] == "2026-11-21T06:40:00Z"
    assert data["source"] == "environment"


def test_warning_minutes_default_and_order() -> None:
    assert ContinuumLab().warning_minutes == [15, 5]
    assert ContinuumLab(warning_minutes=[5, 30, 5]).warning_minutes == [30, 5]
    assert ContinuumLab(warning_minutes=[]).frontend_settings()["warning_minutes"] == []


@pytest.mark.parametrize(
    "option,value",
    [
        ("warning_minutes", [0]),
        ("warning_minutes", [-5]),
        ("hub_timeout", 0),
        ("refresh_seconds", 1),
    ],
    ids=["zero-minutes", "negative-minutes", "zero-timeout", "too-frequent"],
)
def test_bad_settings_are_refused(option: str, value: object) -> None:
    with pytest.raises(TraitError):
        ContinuumLab(**{option: value})
