"""Slurm accounting: the ``sacct`` command of the usage collector and its ``--parsable2`` output.

Used by :class:`~.slurm.SlurmAdapter` (``accounting_argv``/``parse_accounting``), which also
takes Slurm's job states from here.  Core-hours
are ``CPUTimeRAW / 3600``; GPUs come from ``gres/gpu=N`` in ``AllocTRES``; ``ConsumedEnergyRaw``
(joules) only where the site measures energy (0 or unset otherwise).  States are sacct's first
word (``CANCELLED by 1001`` → ``CANCELLED``); times are the site's local time, turned into UTC.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime

from .base import AccountingRecord

#: Slurm's states of a job waiting, and of one running (squeue's and sacct's names)
PENDING_STATES = frozenset({"PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_HOLD", "RESIZING"})
RUNNING_STATES = frozenset({"RUNNING", "COMPLETING", "SUSPENDED", "STAGE_OUT", "SIGNALING"})
UNFINISHED_STATES = frozenset(
    {"PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_HOLD", "RESIZING"}
    | {"RUNNING", "COMPLETING", "SUSPENDED", "STAGE_OUT", "SIGNALING"}
)
# sacct fields (JobID last: it tells an array's tasks "123_4" from plain jobs)
ACCOUNTING_FORMAT = (
    "JobIDRaw,State,Start,End,ElapsedRaw,AllocCPUS,AllocTRES,CPUTimeRAW,ConsumedEnergyRaw,JobID"
)
# AllocTRES memory: a number and a unit (none: megabytes)
TRES_MEMORY = re.compile(r"^([0-9.]+)([KMGTP]?)$")
_GB_PER_UNIT = {
    "K": 1 / 1024**2,
    "M": 1 / 1024,
    "": 1 / 1024,
    "G": 1.0,
    "T": 1024.0,
    "P": 1024.0**2,
}
# "unset" counters in sacct (NO_VAL64 and friends) are huge; nothing real comes near 2**63
_NO_VALUE = 2**63


def _sacct_time(text: str) -> datetime | None:
    """A sacct time (the site's local time, no zone) in UTC; ``None`` for Unknown/None."""
    if not text or text in ("Unknown", "None", "N/A"):
        return None
    try:
        return datetime.fromisoformat(text).astimezone(UTC)
    except ValueError:
        return None


def _count(text: str) -> int:
    value = int(text) if text.strip().isdigit() else 0
    return 0 if value >= _NO_VALUE else value


def _tres(text: str) -> dict[str, str]:
    """``billing=2,cpu=2,gres/gpu=1,mem=2G,node=1`` as a mapping."""
    pairs = (item.partition("=") for item in text.split(",") if "=" in item)
    return {key.strip(): value.strip() for key, _, value in pairs}


def _memory_gb(text: str) -> float:
    match = TRES_MEMORY.match(text)
    return float(match.group(1)) * _GB_PER_UNIT[match.group(2)] if match else 0.0


def _accounting_record(fields: list[str]) -> AccountingRecord:
    _raw_id, state, start, end, elapsed, cpus, tres_text, cpu_time, energy, _ = fields
    tres = _tres(tres_text)
    # "CANCELLED by 1001": the state is the first word
    state = state.split(" ")[0] or "UNKNOWN"
    joules = _count(energy)
    return AccountingRecord(
        job_id=fields[9].partition("_")[0] or fields[0],
        state=state,
        start=_sacct_time(start),
        end=_sacct_time(end),
        elapsed_s=_count(elapsed),
        alloc_cores=_count(cpus) or _count(tres.get("cpu", "")),
        alloc_gpus=_count(tres.get("gres/gpu", "")),
        alloc_memory_gb=_memory_gb(tres.get("mem", "")),
        cpu_time_s=_count(cpu_time),
        # no energy plugin reports 0: that is no measurement
        consumed_energy_j=float(joules) if joules else None,
        final=state not in PENDING_STATES | RUNNING_STATES,
    )


def _merged(first: AccountingRecord, task: AccountingRecord) -> AccountingRecord:
    """One record for an array from two of its tasks' (sums; unfinished while one runs)."""
    energy = None
    if first.consumed_energy_j is not None or task.consumed_energy_j is not None:
        energy = (first.consumed_energy_j or 0.0) + (task.consumed_energy_j or 0.0)
    ended = [r for r in (first, task) if r.end is not None]
    started = [r.start for r in (first, task) if r.start is not None]
    live = next((r for r in (first, task) if not r.final), None)
    failed = next((r for r in (task, first) if r.state != "COMPLETED"), task)
    return AccountingRecord(
        job_id=first.job_id,
        state=(live or failed).state,
        start=min(started) if started else None,
        end=max(r.end for r in ended if r.end) if live is None and ended else None,
        elapsed_s=first.elapsed_s + task.elapsed_s,
        alloc_cores=max(first.alloc_cores, task.alloc_cores),
        alloc_gpus=max(first.alloc_gpus, task.alloc_gpus),
        alloc_memory_gb=max(first.alloc_memory_gb, task.alloc_memory_gb),
        cpu_time_s=first.cpu_time_s + task.cpu_time_s,
        consumed_energy_j=energy,
        final=live is None,
    )


def sacct_argv(job_ids: Sequence[str], since: datetime) -> list[str]:
    """One ``sacct`` for the (checked) ``job_ids`` of any user, eligible since ``since``."""
    # sacct reads and prints the site's local time
    start = since.astimezone().strftime("%Y-%m-%dT%H:%M:%S")
    return [
        "sacct",
        "-X",  # the allocation only, not its steps
        "--parsable2",
        "--noheader",
        "--allusers",
        f"--starttime={start}",
        f"--jobs={','.join(job_ids)}",
        f"--format={ACCOUNTING_FORMAT}",
    ]


def parse_sacct(stdout: str) -> list[AccountingRecord]:
    """The records of :func:`sacct_argv`'s output, one per job (an array's tasks summed)."""
    records: dict[str, AccountingRecord] = {}
    for line in stdout.splitlines():
        fields = line.strip().split("|")
        if len(fields) != 10 or not fields[0].isdigit():
            continue
        record = _accounting_record(fields)
        known = records.get(record.job_id)
        # an array's tasks (JobID "123_4") add up under the array's id
        records[record.job_id] = record if known is None else _merged(known, record)
    return list(records.values())
