"""The scheduler adapter interface.

An adapter is pure: it builds argument lists (never shell strings) for submit, status, cancel
and estimate, and parses what those commands print.  Running them is a transport's job
(:mod:`.transport`: locally through ``sudo``; :mod:`.ssh`: on the site's login node), so an
adapter for another batch system (HTCondor, PBS) is one small subclass, tested with recorded
command transcripts, plus its entry in :data:`continuum_spawners.schedulers.ADAPTERS`.
"""

from __future__ import annotations

import enum
import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from ..accounts import POSIX_ACCOUNT

# Job ids are passed as arguments and shown to people: accept the schedulers' plain forms only.
JOB_ID = re.compile(r"^[0-9]+(?:[._][0-9]+)?$")
# job names are passed as arguments too: no option, no blank, no separator
JOB_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# reservation names are passed as arguments too (workshop events' reservations)
RESERVATION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
# a job array's indices: "0-(N-1)", optionally with a cap on tasks at once ("%M")
ARRAY = re.compile(r"^(\d{1,7})-(\d{1,7})(?:%(\d{1,7}))?$")
#: most tasks of one job array (Slurm's own MaxArraySize default is 1001)
MAX_ARRAY_TASKS = 1000


class JobState(enum.Enum):
    """What the hub needs to know of a job's state."""

    PENDING = "pending"
    RUNNING = "running"
    GONE = "gone"  # finished, cancelled, failed or purged
    UNKNOWN = "unknown"  # the scheduler did not answer


@dataclass(frozen=True)
class JobStatus:
    """One job's status as reported by the scheduler."""

    job_id: str
    state: JobState
    raw_state: str = ""
    reason: str = ""
    node: str = ""
    start_time: str = ""


@dataclass(frozen=True)
class JobSpec:
    """Everything needed to submit one job; all values already validated.

    ``env_names`` lists the environment variables handed to the job (their values travel in
    the submitting process's environment, never on a command line).  ``array`` makes the job a
    job array (``"0-9%3"``: ten tasks, at most three at once; see :func:`checked_array`);
    ``dependency`` lists jobs that must all succeed first (the job is cancelled by the scheduler
    when one of them fails).  Both are checked when the spec is made.
    """

    name: str
    partition: str
    cores: int
    memory_gb: int
    walltime_minutes: int
    workdir: str
    output: str
    gpus: int = 0
    gpu_type: str | None = None
    account: str | None = None
    env_names: Sequence[str] = field(default_factory=tuple)
    array: str | None = None
    dependency: Sequence[str] = field(default_factory=tuple)
    #: file for the job's standard error; ``None``: with its output
    error: str | None = None
    #: the scheduler reservation the job runs in (a workshop event's), checked
    reservation: str | None = None

    def __post_init__(self) -> None:
        if self.array is not None:
            checked_array(self.array)
        object.__setattr__(self, "dependency", tuple(checked_job_ids(self.dependency)))
        if self.reservation is not None:
            checked_reservation_name(self.reservation)


@dataclass(frozen=True)
class Estimate:
    """When the scheduler expects a job to start (``start`` is ``None`` if it cannot say)."""

    start: datetime | None
    message: str = ""


@dataclass(frozen=True)
class AccountingRecord:
    """What a site's accounting says one job used (times UTC-aware; ``None``: not yet).

    ``final`` is true once the job ended and the values will not change any more; a job array
    is one record with its tasks' sums (its own id; start of the first, end of the last).
    """

    job_id: str
    state: str
    start: datetime | None
    end: datetime | None
    elapsed_s: int
    alloc_cores: int
    alloc_gpus: int
    alloc_memory_gb: float
    cpu_time_s: int
    consumed_energy_j: float | None
    final: bool


@dataclass(frozen=True)
class ReservationSpec:
    """A scheduler reservation to make: ``cores`` on ``partition`` from ``start`` to ``end``
    (UTC-aware) for the POSIX accounts ``users``; every value checked when made."""

    name: str
    partition: str
    start: datetime
    end: datetime
    cores: int
    users: Sequence[str]

    def __post_init__(self) -> None:
        checked_reservation_name(self.name)
        checked_job_name(self.partition)
        object.__setattr__(self, "users", tuple(checked_accounts(self.users)))
        if self.cores < 1 or self.end <= self.start or self.start.tzinfo is None:
            raise ValueError(f"reservation {self.name}: no cores or an empty window")


@dataclass(frozen=True)
class ReservationInfo:
    """A reservation as the scheduler shows it (times as printed, in the site's zone)."""

    name: str
    state: str
    start: str
    end: str
    users: tuple[str, ...]
    cores: int
    partition: str


class SubmitError(RuntimeError):
    """The scheduler refused a submission; the message is the scheduler's own."""


class SchedulerAdapter(ABC):
    """Builds scheduler commands and parses their output."""

    kind: str = ""

    @abstractmethod
    def submit_argv(self, spec: JobSpec) -> list[str]:
        """Command that submits a job script read from standard input."""

    @abstractmethod
    def parse_submit(self, stdout: str) -> str:
        """Job id from the submit command's output; raise :class:`SubmitError` if none."""

    @abstractmethod
    def status_argv(self, job_ids: Iterable[str]) -> list[str]:
        """One command that reports the status of all ``job_ids``."""

    @abstractmethod
    def parse_status(
        self, returncode: int, stdout: str, stderr: str, job_ids: Iterable[str]
    ) -> Mapping[str, JobStatus]:
        """Status of every one of ``job_ids`` (missing jobs are :attr:`JobState.GONE`), and of
        each task the scheduler lists of the job arrays among them (keys ``"<id>_<index>"``;
        an array's own id has the state of its liveliest task)."""

    @abstractmethod
    def cancel_argv(self, job_ids: Iterable[str]) -> list[str]:
        """Command that cancels ``job_ids``."""

    @abstractmethod
    def cancel_name_argv(self, name: str) -> list[str]:
        """Command that cancels every job of the calling user named ``name`` (checked against
        :data:`JOB_NAME`), including jobs whose ids were never recorded."""

    def find_name_argv(self, name: str) -> list[str]:
        """Command listing the ids of the calling user's jobs named ``name`` (checked against
        :data:`JOB_NAME`), one per line; finished ones too while the scheduler lists them."""
        raise NotImplementedError(f"{self.kind}: no lookup of jobs by name")

    def probe_argv(self) -> list[str]:
        """A cheap command that succeeds while the site's scheduler answers (no job needed:
        the hub's per-site probe, ``continuum_hub.hub_metrics.SiteProbe``)."""
        raise NotImplementedError(f"{self.kind}: no scheduler probe")

    def parse_probe(self, returncode: int, stdout: str, stderr: str) -> bool:
        """Whether the probe's output says the scheduler is up (default: it exited 0)."""
        return returncode == 0

    @abstractmethod
    def estimate_argv(self, spec: JobSpec) -> list[str]:
        """Command that asks when ``spec`` would start, without submitting (script on stdin)."""

    @abstractmethod
    def parse_estimate(self, returncode: int, stdout: str, stderr: str) -> Estimate:
        """The estimate from that command's output; a refusal gives ``start=None`` and why."""

    def accounting_argv(self, job_ids: Sequence[str], since: datetime) -> list[str]:
        """One command reporting what ``job_ids`` (of any user, submitted after ``since``)
        used, run as the hub's own account."""
        raise NotImplementedError(f"{self.kind}: no accounting")

    def parse_accounting(self, stdout: str) -> list[AccountingRecord]:
        """The records in that command's output (jobs the accounting does not know are absent)."""
        raise NotImplementedError(f"{self.kind}: no accounting")

    # reservations (workshop events), run as the hub's own account (a scheduler operator)
    def create_reservation_argv(self, spec: ReservationSpec) -> list[str]:
        """Command that makes the reservation ``spec``."""
        raise NotImplementedError(f"{self.kind}: no reservations")

    def update_reservation_argv(self, name: str, users: Sequence[str]) -> list[str]:
        """Command that sets the accounts allowed in reservation ``name`` to ``users``."""
        raise NotImplementedError(f"{self.kind}: no reservations")

    def delete_reservation_argv(self, name: str) -> list[str]:
        """Command that removes reservation ``name``."""
        raise NotImplementedError(f"{self.kind}: no reservations")

    def show_reservation_argv(self, name: str) -> list[str]:
        """Command that shows reservation ``name``."""
        raise NotImplementedError(f"{self.kind}: no reservations")

    def parse_reservation(
        self, returncode: int, stdout: str, stderr: str
    ) -> ReservationInfo | None:
        """The reservation that command showed; ``None`` when the scheduler has none of that
        name (other failures raise :class:`RuntimeError` with the scheduler's message)."""
        raise NotImplementedError(f"{self.kind}: no reservations")


def checked_job_ids(job_ids: Iterable[str]) -> list[str]:
    """``job_ids`` as a list, each checked against :data:`JOB_ID`."""
    ids = list(job_ids)
    for job_id in ids:
        if not JOB_ID.match(job_id):
            raise ValueError(f"not a job id: {job_id!r}")
    return ids


def checked_array(array: str, limit: int = MAX_ARRAY_TASKS) -> str:
    """``array`` (``"FIRST-LAST"`` or ``"FIRST-LAST%MAX"``), checked: ascending, at most
    ``limit`` tasks, a cap of at least one."""
    match = ARRAY.match(array)
    if match is None:
        raise ValueError(f"not a job array: {array[:40]!r}")
    first, last, cap = match.groups()
    if int(last) < int(first):
        raise ValueError(f"job array {array!r}: the last index is below the first")
    if int(last) - int(first) + 1 > limit:
        raise ValueError(f"job array {array!r} has more than {limit} tasks")
    if cap is not None and int(cap) < 1:
        raise ValueError(f"job array {array!r}: at most 0 tasks at once")
    return array


def checked_reservation_name(name: str) -> str:
    """``name``, checked against :data:`RESERVATION_NAME`."""
    if not isinstance(name, str) or not RESERVATION_NAME.match(name):
        raise ValueError(f"not a reservation name: {str(name)[:80]!r}")
    return name


def checked_accounts(accounts: Iterable[str]) -> list[str]:
    """``accounts`` as a non-empty list of POSIX account names."""
    names = list(accounts)
    if not names or not all(isinstance(a, str) and POSIX_ACCOUNT.match(a) for a in names):
        raise ValueError(f"not a list of account names: {names[:5]!r}")
    return names


def checked_job_name(name: str) -> str:
    """``name``, checked against :data:`JOB_NAME`."""
    if not JOB_NAME.match(name):
        raise ValueError(f"not a job name: {name[:80]!r}")
    return name
