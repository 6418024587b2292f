"""Slurm commands as slurmrestd requests, and slurmrestd's answers as the commands' output.

:class:`~.slurmrest.SlurmRestTransport` runs the argument lists that
:class:`~.slurm.SlurmAdapter` builds (``sbatch``, ``squeue``, ``scancel``, ``scontrol ping``)
against a site's slurmrestd instead of a shell, so every caller (spawner, monitor, probe,
batch runs) keeps one adapter and one parser.  This module is the pure half: it reads those
argument lists into requests (:func:`read_command`, :func:`job_properties`) and writes
slurmrestd's JSON back as the commands would have printed it (:func:`squeue_lines`,
:func:`ping_lines`, :func:`name_lines`), plus :func:`partitions` (what ``sinfo`` tells).

Written against the REST API of Slurm 22.05, ``v0.0.38`` (its ``/openapi/v3``): the job
``environment`` is an object, times are epoch seconds, memory is MiB.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .base import JOB_ID, checked_job_ids, checked_job_name
from .transport import SAFE_PATH, TransportError

#: the REST API version this module reads and writes (Slurm 22.05's newest)
API_VERSION = "v0.0.38"

# sbatch option → (job property, how its value is read)
_SBATCH_OPTIONS: dict[str, tuple[str, Any]] = {
    "--job-name": ("name", checked_job_name),
    "--partition": ("partition", checked_job_name),
    "--time": ("time_limit", int),
    "--nodes": ("nodes", lambda v: [int(v), int(v)]),
    "--ntasks": ("tasks", int),
    "--cpus-per-task": ("cpus_per_task", int),
    "--mem": ("memory_per_node", lambda v: _mebibytes(v)),
    "--chdir": ("current_working_directory", str),
    "--output": ("standard_output", str),
    "--error": ("standard_error", str),
    "--array": ("array", str),
    "--dependency": ("dependency", str),
    "--kill-on-invalid-dep": ("kill_on_invalid_dependency", lambda v: v == "yes"),
    "--gres": ("gres", str),
    "--account": ("account", str),
    "--reservation": ("reservation", str),
}


def _mebibytes(value: str) -> int:
    """``--mem`` (``4G``, ``512M``, ``512``: MiB) in MiB."""
    units = {"K": 1 / 1024, "M": 1, "G": 1024, "T": 1024 * 1024}
    if value and value[-1].upper() in units:
        return max(1, int(int(value[:-1]) * units[value[-1].upper()]))
    return int(value)


@dataclass(frozen=True)
class Command:
    """One Slurm command read from its argument list.

    ``kind`` is ``submit``, ``status``, ``find``, ``cancel``, ``cancel_name`` or ``ping``;
    ``job_ids`` the ids it names, ``name`` the job name it names, ``options`` the ``sbatch``
    options (``--key`` → value) of a submission.
    """

    kind: str
    job_ids: tuple[str, ...] = ()
    name: str = ""
    options: Mapping[str, str] = field(default_factory=dict)


def _options(argv: Sequence[str]) -> dict[str, str]:
    """``--key=value`` and bare ``--flag`` arguments as a mapping (flags map to ``""``)."""
    found: dict[str, str] = {}
    for arg in argv:
        if not arg.startswith("--"):
            raise TransportError(f"{arg[:40]!r} is not an option this transport knows")
        key, _, value = arg.partition("=")
        found[key] = value
    return found


def read_command(argv: Sequence[str]) -> Command:
    """What ``argv`` (built by :class:`~.slurm.SlurmAdapter`) asks of the scheduler.

    Raises
    ------
    TransportError
        For a command or option slurmrestd cannot serve (accounting, estimates, reservations,
        anything unknown), naming it.
    """
    if not argv:
        raise TransportError("no command to run")
    head, rest = argv[0], list(argv[1:])
    if head == "scontrol" and rest == ["ping"]:
        return Command("ping")
    if head == "scancel":
        if len(rest) == 1 and rest[0].startswith("--name="):
            return Command("cancel_name", name=checked_job_name(rest[0].partition("=")[2]))
        return Command("cancel", job_ids=tuple(_ids(rest)))
    if head == "squeue":
        options = _options(rest)
        if "--me" in options and "--name" in options:
            return Command("find", name=checked_job_name(options["--name"]))
        if "--jobs" in options:
            return Command("status", job_ids=tuple(_ids(options["--jobs"].split(","))))
    if head == "sbatch":
        options = _options(rest)
        if "--test-only" in options:
            raise TransportError("slurmrestd 0.0.38 gives no start estimates (sbatch --test-only)")
        options.pop("--parsable", None)
        unknown = sorted(set(options) - set(_SBATCH_OPTIONS) - {"--export"})
        if unknown:
            raise TransportError(f"sbatch option {unknown[0]} has no slurmrestd equivalent here")
        return Command("submit", options=options)
    raise TransportError(f"{head} {' '.join(rest[:1])} cannot run over slurmrestd".strip())


def _ids(values: Iterable[str]) -> list[str]:
    try:
        return checked_job_ids(values)
    except ValueError as exc:
        raise TransportError(str(exc)) from None


def job_properties(options: Mapping[str, str], env: Mapping[str, str]) -> dict[str, Any]:
    """The ``job`` object of a submission: the ``sbatch`` ``options`` and the environment.

    As with ``sbatch --export=NAMES``, only the named variables of ``env`` reach the job
    (``NONE``: none); slurmrestd wants at least one, so ``PATH`` is the transport's fixed one
    unless named.
    """
    job: dict[str, Any] = {}
    for option, value in options.items():
        if option in _SBATCH_OPTIONS:
            key, read = _SBATCH_OPTIONS[option]
            try:
                job[key] = read(value)
            except ValueError as exc:
                raise TransportError(f"sbatch {option}: {exc}") from None
    export = options.get("--export", "NONE")
    names = [] if export == "NONE" else [name for name in export.split(",") if name]
    missing = [name for name in names if name not in env]
    if missing:
        raise TransportError(f"exported variable {missing[0]} has no value")
    job["environment"] = {"PATH": SAFE_PATH, **{name: env[name] for name in names}}
    return job


def _task_id(job: Mapping[str, Any]) -> str:
    """squeue's ``%i`` of one record: ``123``, ``123_4`` or ``123_[5-9]`` (pending tasks)."""
    array_id, task = job.get("array_job_id") or 0, job.get("array_task_id")
    if array_id and task is not None:
        return f"{array_id}_{task}"
    if array_id and job.get("array_task_string"):
        return f"{array_id}_[{job['array_task_string']}]"
    return str(job.get("job_id", ""))


def _time(epoch: Any) -> str:
    """squeue's ``%S``: local time without a zone, ``N/A`` when unset."""
    if not isinstance(epoch, int) or epoch <= 0:
        return "N/A"
    return datetime.fromtimestamp(epoch).strftime("%Y-%m-%dT%H:%M:%S")


def squeue_lines(jobs: Iterable[Mapping[str, Any]], job_ids: Iterable[str]) -> str:
    """What ``squeue --format=%i|%T|%r|%N|%S --array --jobs=IDS`` prints for ``job_ids``
    (and their array tasks) among slurmrestd's ``jobs``."""
    wanted = set(job_ids)
    lines = []
    for job in jobs:
        own, array = str(job.get("job_id", "")), str(job.get("array_job_id") or "")
        if own not in wanted and array not in wanted:
            continue
        fields = (
            _task_id(job),
            str(job.get("job_state", "")),
            str(job.get("state_reason", "") or "None"),
            str(job.get("nodes", "") or ""),
            _time(job.get("start_time")),
        )
        lines.append("|".join(field.replace("|", " ") for field in fields))
    return "".join(line + "\n" for line in lines)


def named_jobs(jobs: Iterable[Mapping[str, Any]], user: str, name: str) -> list[Mapping[str, Any]]:
    """``user``'s jobs named ``name`` among slurmrestd's ``jobs``."""
    return [j for j in jobs if j.get("user_name") == user and j.get("name") == name]


def name_lines(jobs: Iterable[Mapping[str, Any]]) -> str:
    """``squeue --format=%F`` of ``jobs``: each array's own id (a plain job's id) once."""
    ids = dict.fromkeys(str(j.get("array_job_id") or j.get("job_id")) for j in jobs)
    return "".join(f"{job_id}\n" for job_id in ids if JOB_ID.match(job_id))


def ping_lines(pings: Iterable[Mapping[str, Any]]) -> tuple[int, str]:
    """``scontrol ping``'s exit status and output from slurmrestd's ``pings``."""
    lines = [
        f"Slurmctld({p.get('mode', 'primary')}) at {p.get('hostname', '?')} is "
        f"{'UP' if p.get('ping') == 'UP' else 'DOWN'}"
        for p in pings
    ]
    up = any(line.endswith(" is UP") for line in lines)
    return (0 if up else 1), "".join(line + "\n" for line in lines)


def errors_text(body: Mapping[str, Any]) -> str:
    """slurmrestd's ``errors`` of an answer, as one line (empty when there are none)."""
    errors = body.get("errors") or []
    texts = [str(e.get("description") or e.get("error") or e) for e in errors if e]
    return "; ".join(texts)[:500]


@dataclass(frozen=True)
class PartitionInfo:
    """One partition as ``sinfo`` would summarise it."""

    name: str
    state: str
    nodes: str  # Slurm's host list, as written (``alpha-n[1-4]``)
    total_cpus: int
    max_time_minutes: int | None
    default_time_minutes: int | None


def partitions(body: Mapping[str, Any]) -> list[PartitionInfo]:
    """The partitions of slurmrestd's ``GET /partitions`` answer (``None``: no limit)."""

    def minutes(value: Any) -> int | None:
        # slurmrestd 0.0.38 writes Slurm's INFINITE/NO_VAL as large numbers
        return value if isinstance(value, int) and 0 <= value < 0xFFFFFFFE else None

    return [
        PartitionInfo(
            name=str(p.get("name", "")),
            state=str(p.get("state", "")),
            nodes=str(p.get("nodes", "")),
            total_cpus=int(p.get("total_cpus") or 0),
            max_time_minutes=minutes(p.get("max_time_limit")),
            default_time_minutes=minutes(p.get("default_time_limit")),
        )
        for p in body.get("partitions") or []
    ]
