"""What the hub's jobs used: the usage ledger's records and sums, months and VOs.

The data model of :mod:`continuum_spawners.ledger` (which stores it and re-exports every name
here): :class:`UsageJob` (one batch job, what it asked for and what the site's accounting says
it used), :class:`Totals` (sums over jobs), :class:`Checkpoint` (the collector's state per
site), :func:`vo_for` (the VO a job counts for) and the calendar months budgets reset with.
Datetimes are UTC-aware everywhere.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .sites import Site

KINDS = ("server", "dask", "batch")
SOURCES = ("pending", "sacct", "estimated")  # pending: not collected yet
#: the datetime fields of a job
DATETIMES = ("submitted_at", "started_at", "ended_at", "updated_at")


def utc(value: datetime | None) -> datetime | None:
    """``value`` as an aware UTC datetime (naive values are taken as UTC, as stored)."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@dataclass
class UsageJob:
    """One batch job the hub started, with what was asked for and what was used."""

    site: str
    job_id: str
    kind: str
    label: str
    user: str
    vo: str | None
    partition: str
    submitted_at: datetime
    req_cores: int
    req_gpus: int
    req_memory_gb: float
    req_walltime_minutes: int
    state: str = "PENDING"
    started_at: datetime | None = None
    ended_at: datetime | None = None
    elapsed_s: int = 0
    alloc_cores: int = 0
    alloc_gpus: int = 0
    alloc_memory_gb: float = 0.0
    cpu_time_s: int = 0
    consumed_energy_j: float | None = None
    energy_kwh: float = 0.0
    co2e_kg: float = 0.0
    energy_measured: bool = False
    source: str = "pending"
    final: bool = False
    updated_at: datetime | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"not a usage kind: {self.kind!r}")
        if self.source not in SOURCES:
            raise ValueError(f"not a usage source: {self.source!r}")
        for name in DATETIMES:
            setattr(self, name, utc(getattr(self, name)))

    @property
    def core_hours(self) -> float:
        return self.cpu_time_s / 3600

    @property
    def gpu_hours(self) -> float:
        return self.elapsed_s * self.alloc_gpus / 3600

    @property
    def committed_core_hours(self) -> float:
        """What the job used, or while it may still run, at least all it asked for."""
        if self.final:
            return self.core_hours
        return max(self.core_hours, self.req_cores * self.req_walltime_minutes / 60)

    @property
    def committed_gpu_hours(self) -> float:
        if self.final:
            return self.gpu_hours
        return max(self.gpu_hours, self.req_gpus * self.req_walltime_minutes / 60)

    @property
    def committed_co2e_kg(self) -> float:
        """CO2e so far, extrapolated at its rate so far to the requested walltime if unfinished
        (a job with no values yet commits nothing here: budgets add the request's estimate)."""
        if self.final or self.elapsed_s <= 0:
            return self.co2e_kg
        return max(self.co2e_kg, self.co2e_kg * self.req_walltime_minutes * 60 / self.elapsed_s)

    def as_json(self) -> dict[str, Any]:
        """Every field (datetimes ISO 8601 with ``+00:00``) plus core- and GPU-hours."""
        data = asdict(self)
        for name in DATETIMES:
            value = data[name]
            data[name] = None if value is None else value.isoformat()
        data["core_hours"] = self.core_hours
        data["gpu_hours"] = self.gpu_hours
        return data


JOB_FIELDS = tuple(f.name for f in fields(UsageJob))


@dataclass
class Totals:
    """Sums over a set of jobs; ``estimated`` when any of them is not (yet) from ``sacct``."""

    jobs: int = 0
    core_hours: float = 0.0
    gpu_hours: float = 0.0
    energy_kwh: float = 0.0
    co2e_kg: float = 0.0
    committed_core_hours: float = 0.0
    committed_gpu_hours: float = 0.0
    committed_co2e_kg: float = 0.0
    estimated: bool = False

    @classmethod
    def of(cls, jobs: Iterable[UsageJob]) -> Totals:
        totals = cls()
        for job in jobs:
            totals.jobs += 1
            totals.core_hours += job.core_hours
            totals.gpu_hours += job.gpu_hours
            totals.energy_kwh += job.energy_kwh
            totals.co2e_kg += job.co2e_kg
            totals.committed_core_hours += job.committed_core_hours
            totals.committed_gpu_hours += job.committed_gpu_hours
            totals.committed_co2e_kg += job.committed_co2e_kg
            totals.estimated = totals.estimated or job.source != "sacct"
        return totals


@dataclass
class Checkpoint:
    """The collector's state for one site."""

    site: str
    last_success_at: datetime | None
    last_attempt_at: datetime | None
    last_error: str


def vo_for(site: Site, groups: Iterable[str]) -> str | None:
    """The access group of ``site`` that let a member of ``groups`` use it (the first in sorted
    order, as the registry keeps a set), else ``None``."""
    if not site.groups:
        return None
    mine = set(groups)
    return next((group for group in sorted(site.groups) if group in mine), None)


def month_start(now: datetime) -> datetime:
    """The start of ``now``'s calendar month, UTC."""
    now = utc(now) or datetime.now(UTC)
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def next_month_start(now: datetime) -> datetime:
    """The start of the calendar month after ``now``'s, UTC."""
    start = month_start(now)
    if start.month == 12:
        return start.replace(year=start.year + 1, month=1)
    return start.replace(month=start.month + 1)
