"""Slurm accounting: the ``sacct`` argument list and its ``--parsable2`` output (transcripts)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from continuum_spawners.schedulers.base import AccountingRecord
from continuum_spawners.schedulers.sacct import ACCOUNTING_FORMAT
from continuum_spawners.schedulers.slurm import SlurmAdapter

ADAPTER = SlurmAdapter()


def local(text: str) -> datetime:
    """A sacct time (the site's local time) as the parser converts it."""
    return datetime.fromisoformat(text).astimezone(UTC)


def test_accounting_argv_is_one_sacct_for_all_jobs() -> None:
    since = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)
    argv = ADAPTER.accounting_argv(["12", "13", "14"], since)
    assert argv[:5] == ["sacct", "-X", "--parsable2", "--noheader", "--allusers"]
    assert "--jobs=12,13,14" in argv
    assert f"--format={ACCOUNTING_FORMAT}" in argv
    start = since.astimezone().strftime("%Y-%m-%dT%H:%M:%S")
    assert f"--starttime={start}" in argv


@pytest.mark.parametrize("bad", ["12;rm -rf /", "--allusers", "", "1 2"])
def test_accounting_argv_refuses_what_is_not_a_job_id(bad: str) -> None:
    with pytest.raises(ValueError):
        ADAPTER.accounting_argv(["12", bad], datetime.now(UTC))


# sacct -X --parsable2 --noheader --format=<ACCOUNTING_FORMAT>, Slurm 22.05 (Debian bookworm)
TRANSCRIPT = (
    "12|COMPLETED|2026-12-05T04:10:00|2026-12-05T04:20:00|600|2"
    "|billing=2,cpu=2,mem=2G,node=1|1200|0|12\n"
    "13|CANCELLED by 1001|2026-12-05T04:11:00|2026-12-05T04:12:01|61|4"
    "|billing=4,cpu=4,gres/gpu=1,gres/gpu:a100=1,mem=1500M,node=1|244|5400|13\n"
    "14|RUNNING|2026-12-05T04:30:00|Unknown|120|1|billing=1,cpu=1,mem=512M,node=1|120||14\n"
    "15|PENDING|Unknown|Unknown|0|0||0|0|15\n"
    "16|TIMEOUT|2026-12-05T03:00:00|2026-12-05T04:00:00|3600|8"
    "|billing=8,cpu=8,mem=1T,node=1|28800|18446744073709551614|16\n"
    "17|FAILED|None|2026-12-05T04:00:00|0|2|billing=2,cpu=2,mem=2048,node=1|0|0|17\n"
)


def by_id(records: list[AccountingRecord]) -> dict[str, AccountingRecord]:
    return {r.job_id: r for r in records}


def test_parse_accounting_reads_every_field() -> None:
    records = by_id(ADAPTER.parse_accounting(TRANSCRIPT))
    assert set(records) == {"12", "13", "14", "15", "16", "17"}
    done = records["12"]
    assert done == AccountingRecord(
        job_id="12",
        state="COMPLETED",
        start=local("2026-12-05T04:10:00"),
        end=local("2026-12-05T04:20:00"),
        elapsed_s=600,
        alloc_cores=2,
        alloc_gpus=0,
        alloc_memory_gb=2.0,
        cpu_time_s=1200,
        consumed_energy_j=None,  # 0: the site measures nothing
        final=True,
    )


@pytest.mark.parametrize(
    ("job_id", "state", "final", "gpus", "memory_gb", "energy"),
    [
        ("13", "CANCELLED", True, 1, 1500 / 1024, 5400.0),
        ("14", "RUNNING", False, 0, 0.5, None),
        ("15", "PENDING", False, 0, 0.0, None),
        ("16", "TIMEOUT", True, 0, 1024.0, None),  # NO_VAL64 energy: unset
        ("17", "FAILED", True, 0, 2.0, None),  # memory without unit: megabytes
    ],
    ids=["cancelled-by-uid", "running", "pending", "timeout", "failed-mb"],
)
def test_parse_accounting_states_tres_and_units(
    job_id: str, state: str, final: bool, gpus: int, memory_gb: float, energy: float | None
) -> None:
    record = by_id(ADAPTER.parse_accounting(TRANSCRIPT))[job_id]
    assert (record.state, record.final, record.alloc_gpus) == (state, final, gpus)
    assert record.alloc_memory_gb == pytest.approx(memory_gb)
    assert record.consumed_energy_j == energy


def test_parse_accounting_unknown_and_none_times() -> None:
    records = by_id(ADAPTER.parse_accounting(TRANSCRIPT))
    assert records["14"].end is None
    assert (records["15"].start, records["15"].end) == (None, None)
    assert records["17"].start is None
    assert records["17"].end == local("2026-12-05T04:00:00")


def test_parse_accounting_sums_an_arrays_tasks() -> None:
    # sacct -j 20 for a job array of three tasks: one still running, one pending range
    stdout = (
        "20|COMPLETED|2026-12-05T04:00:00|2026-12-05T04:01:40|100|2|cpu=2,mem=1G|200|0|20_0\n"
        "21|RUNNING|2026-12-05T04:00:00|Unknown|50|2|cpu=2,mem=1G,node=1|100|0|20_1\n"
        "20|PENDING|Unknown|Unknown|0|2|cpu=2,mem=1G|0|0|20_[2-3%1]\n"
    )
    (record,) = ADAPTER.parse_accounting(stdout)
    assert record.job_id == "20"
    assert (record.state, record.final) == ("RUNNING", False)
    assert (record.elapsed_s, record.cpu_time_s, record.alloc_cores) == (150, 300, 2)
    assert record.end is None
    done = ADAPTER.parse_accounting(
        "20|COMPLETED|2026-12-05T04:00:00|2026-12-05T04:01:40|100|2|cpu=2|200|0|20_0\n"
        "21|FAILED|2026-12-05T04:00:00|2026-12-05T04:02:00|120|2|cpu=2|240|0|20_1\n"
    )[0]
    assert (done.state, done.final, done.cpu_time_s) == ("FAILED", True, 440)
    assert done.end == local("2026-12-05T04:02:00")


def test_parse_accounting_ignores_noise() -> None:
    stdout = "sacct: warning: something\n\nJobIDRaw|State\n" + TRANSCRIPT.splitlines()[0]
    assert [r.job_id for r in ADAPTER.parse_accounting(stdout)] == ["12"]
