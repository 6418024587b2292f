"""The job ledger: every batch job the hub started, with what the site's accounting says it used.

Written by the hub process (servers), the Dask Gateway service (schedulers and workers) and the
workflows service (batch runs) right after a submission succeeded, and by the usage collector
with the values ``sacct`` reports; read by the usage REST API and the budgets.  One row per
``(site, job_id)``: every write is an idempotent upsert, so a collector that runs twice over the
same answer, or restarts, counts nothing twice.

SQLAlchemy 2 Core with its own tables (prefixed ``continuum_usage_``), so the ledger may share
the hub's PostgreSQL database (``postgresql+psycopg://…``) or live in its own SQLite file (WAL,
so the three writing processes and the readers do not block each other; created 0600).
Datetimes are UTC-aware everywhere; they are stored as naive UTC.  The records and sums
(:class:`UsageJob`, :class:`Totals`, :class:`Checkpoint`, :func:`vo_for`, the months) live in
:mod:`continuum_spawners.usage` and are re-exported here.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    select,
    tuple_,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Engine, make_url

from .private_file import private_engine
from .usage import (
    DATETIMES,
    JOB_FIELDS,
    KINDS,
    SOURCES,
    Checkpoint,
    Totals,
    UsageJob,
    month_start,
    next_month_start,
    utc,
    vo_for,
)

#: environment variable naming the ledger's database (set for the hub and its services)
ENV_URL = "CONTINUUM_USAGE_DB_URL"
#: the SQLite file's name beside the hub's own database
DEFAULT_FILE = "continuum-usage.sqlite"
#: most jobs one query returns
MAX_JOBS = 10_000

metadata = MetaData()

usage_jobs = Table(
    "continuum_usage_jobs",
    metadata,
    Column("site", String(64), primary_key=True),
    Column("job_id", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("label", String(255), nullable=False, default=""),
    Column("user", String(255), nullable=False, index=True),
    Column("vo", String(255), index=True),
    Column("partition", String(64), nullable=False, default=""),
    Column("submitted_at", DateTime, nullable=False, index=True),
    Column("req_cores", Integer, nullable=False),
    Column("req_gpus", Integer, nullable=False),
    Column("req_memory_gb", Float, nullable=False),
    Column("req_walltime_minutes", Integer, nullable=False),
    Column("state", String(32), nullable=False),
    Column("started_at", DateTime),
    Column("ended_at", DateTime),
    Column("elapsed_s", Integer, nullable=False),
    Column("alloc_cores", Integer, nullable=False),
    Column("alloc_gpus", Integer, nullable=False),
    Column("alloc_memory_gb", Float, nullable=False),
    Column("cpu_time_s", Integer, nullable=False),
    Column("consumed_energy_j", Float),
    Column("energy_kwh", Float, nullable=False),
    Column("co2e_kg", Float, nullable=False),
    Column("energy_measured", Boolean, nullable=False),
    Column("source", String(16), nullable=False),
    Column("final", Boolean, nullable=False, index=True),
    Column("updated_at", DateTime),
)

checkpoints = Table(
    "continuum_usage_checkpoints",
    metadata,
    Column("site", String(64), primary_key=True),
    Column("last_success_at", DateTime),
    Column("last_attempt_at", DateTime),
    Column("last_error", Text, nullable=False, default=""),
)

overrides = Table(
    "continuum_usage_overrides",
    metadata,
    Column("user", String(255), primary_key=True),
    Column("limits", JSON, nullable=False),
    Column("updated_at", DateTime),
)

#: what a submission writes; the rest is the collector's
REQUEST_FIELDS = (
    "kind",
    "label",
    "user",
    "vo",
    "partition",
    "submitted_at",
    "req_cores",
    "req_gpus",
    "req_memory_gb",
    "req_walltime_minutes",
)


def _stored(value: datetime | None) -> datetime | None:
    """``value`` as stored: naive UTC (SQLite keeps no zone; PostgreSQL the same for symmetry)."""
    aware = utc(value)
    return None if aware is None else aware.replace(tzinfo=None)


def _job(row: Any) -> UsageJob:
    return UsageJob(**{name: row[name] for name in JOB_FIELDS})


def _row(job: UsageJob) -> dict[str, Any]:
    row = {name: getattr(job, name) for name in JOB_FIELDS}
    for name in DATETIMES:
        row[name] = _stored(row[name])
    return row


class JobLedger:
    """The ledger in the database at ``url`` (its tables are made on first use)."""

    def __init__(self, url: str) -> None:
        self.url = url
        # SQLite: 0600, WAL (the hub, the gateway and the workflows service write while the API
        # reads), busy timeout
        self.engine: Engine = private_engine(url)
        self._dialect = self.engine.dialect.name
        metadata.create_all(self.engine)

    def _insert(self, table: Table) -> Any:
        return (pg_insert if self._dialect == "postgresql" else sqlite_insert)(table)

    def record_submission(self, job: UsageJob) -> None:
        """Record a job right after its submission (again: only the request is refreshed)."""
        row = _row(job)
        row["updated_at"] = _stored(datetime.now(UTC))
        statement = self._insert(usage_jobs).values(**row)
        statement = statement.on_conflict_do_update(
            index_elements=["site", "job_id"],
            set_={name: statement.excluded[name] for name in REQUEST_FIELDS},
        )
        with self.engine.begin() as db:
            db.execute(statement)

    def unfinished(self, site: str) -> list[UsageJob]:
        """The jobs at ``site`` whose final values are not collected yet, oldest first."""
        query = (
            select(usage_jobs)
            .where(usage_jobs.c.site == site, usage_jobs.c.final.is_(False))
            .order_by(usage_jobs.c.submitted_at, usage_jobs.c.job_id)
        )
        with self.engine.connect() as db:
            return [_job(row) for row in db.execute(query).mappings()]

    def unfinished_sites(self) -> list[str]:
        """The sites with unfinished jobs."""
        query = select(usage_jobs.c.site).where(usage_jobs.c.final.is_(False)).distinct()
        with self.engine.connect() as db:
            return sorted(db.execute(query).scalars())

    def update(self, jobs: Iterable[UsageJob]) -> int:
        """Write collected values (whole rows); returns how many rows changed.  A final row
        never goes back to unfinished: a late or repeated answer cannot undo a final count."""
        wanted = {(job.site, job.job_id): _row(job) for job in jobs}
        if not wanted:
            return 0
        changed = 0
        now = _stored(datetime.now(UTC))
        with self.engine.begin() as db:
            keys = list(wanted)
            current: dict[tuple[str, str], dict[str, Any]] = {}
            for start in range(0, len(keys), 500):
                query = select(usage_jobs).where(
                    tuple_(usage_jobs.c.site, usage_jobs.c.job_id).in_(keys[start : start + 500])
                )
                for row in db.execute(query).mappings():
                    current[(row["site"], row["job_id"])] = dict(row)
            for key, row in wanted.items():
                old = current.get(key)
                if old is not None and old["final"] and not row["final"]:
                    continue
                if old is not None and all(
                    old[name] == row[name] for name in JOB_FIELDS if name != "updated_at"
                ):
                    continue
                row["updated_at"] = now
                statement = self._insert(usage_jobs).values(**row)
                statement = statement.on_conflict_do_update(
                    index_elements=["site", "job_id"],
                    set_={name: statement.excluded[name] for name in row if name in JOB_FIELDS},
                )
                db.execute(statement)
                changed += 1
        return changed

    def jobs(
        self,
        *,
        user: str | None = None,
        vo: str | None = None,
        site: str | None = None,
        kind: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 500,
    ) -> list[UsageJob]:
        """Jobs submitted in ``[since, until)`` matching every filter given, newest first."""
        table = usage_jobs.c
        query = select(usage_jobs)
        for column, value in ((table.user, user), (table.vo, vo), (table.site, site)):
            if value is not None:
                query = query.where(column == value)
        if kind is not None:
            query = query.where(table.kind == kind)
        if since is not None:
            query = query.where(table.submitted_at >= _stored(since))
        if until is not None:
            query = query.where(table.submitted_at < _stored(until))
        query = query.order_by(table.submitted_at.desc(), table.job_id.desc())
        query = query.limit(max(0, min(limit, MAX_JOBS)))
        with self.engine.connect() as db:
            return [_job(row) for row in db.execute(query).mappings()]

    def totals(
        self,
        *,
        user: str | None = None,
        vo: str | None = None,
        since: datetime,
        until: datetime | None = None,
    ) -> Totals:
        """Sums over the jobs submitted in ``[since, until)`` of ``user`` and/or ``vo``."""
        return Totals.of(self.jobs(user=user, vo=vo, since=since, until=until, limit=MAX_JOBS))

    def checkpoint(self, site: str) -> Checkpoint | None:
        """The collector's state for ``site``, ``None`` before its first attempt."""
        query = select(checkpoints).where(checkpoints.c.site == site)
        with self.engine.connect() as db:
            row = db.execute(query).mappings().first()
        if row is None:
            return None
        return Checkpoint(
            site,
            utc(row["last_success_at"]),
            utc(row["last_attempt_at"]),
            row["last_error"] or "",
        )

    def set_checkpoint(self, site: str, *, ok: bool, at: datetime, error: str = "") -> None:
        """Note an attempt at ``site`` (a success clears the error)."""
        values: dict[str, Any] = {"last_attempt_at": _stored(at), "last_error": "" if ok else error}
        if ok:
            values["last_success_at"] = _stored(at)
        statement = self._insert(checkpoints).values(site=site, **values)
        statement = statement.on_conflict_do_update(index_elements=["site"], set_=values)
        with self.engine.begin() as db:
            db.execute(statement)

    def override(self, user: str) -> dict[str, float] | None:
        """The budget limits an admin set for ``user``, or ``None``."""
        query = select(overrides.c.limits).where(overrides.c.user == user)
        with self.engine.connect() as db:
            limits = db.execute(query).scalar()
        return None if limits is None else {k: float(v) for k, v in limits.items()}

    def set_override(self, user: str, limits: dict[str, float] | None) -> None:
        """Set ``user``'s budget override (``None`` removes it)."""
        with self.engine.begin() as db:
            db.execute(overrides.delete().where(overrides.c.user == user))
            if limits is not None:
                db.execute(
                    overrides.insert().values(
                        user=user,
                        limits={k: float(v) for k, v in limits.items()},
                        updated_at=_stored(datetime.now(UTC)),
                    )
                )


_LEDGERS: dict[str, JobLedger] = {}
_LOCK = threading.Lock()


def ledger_for(url: str) -> JobLedger:
    """The process-wide ledger for ``url`` (made on first use)."""
    with _LOCK:
        ledger = _LEDGERS.get(url)
        if ledger is None:
            ledger = _LEDGERS[url] = JobLedger(url)
        return ledger


def record_submission(job: UsageJob, log: logging.Logger | logging.LoggerAdapter[Any]) -> bool:
    """Record ``job`` in the ledger named by ``$CONTINUUM_USAGE_DB_URL`` (nothing without it).

    For the submitters (spawner, gateway, workflows service): a ledger that cannot be written
    is logged and never fails the submission; the URL (it may hold a password) is not logged.
    """
    url = os.environ.get(ENV_URL, "").strip()
    if not url:
        return False
    try:
        ledger_for(url).record_submission(job)
    except Exception as exc:
        log.warning(
            "Job %s on %s not recorded in the usage ledger: %s",
            job.job_id,
            job.site,
            type(exc).__name__,
        )
        return False
    return True


def ledger_url(hub_db_url: str) -> str:
    """The ledger's URL: ``$CONTINUUM_USAGE_DB_URL``, else the hub's own PostgreSQL database,
    else ``continuum-usage.sqlite`` beside the hub's SQLite file (or in the working folder)."""
    explicit = os.environ.get(ENV_URL, "").strip()
    if explicit:
        return explicit
    url = make_url(hub_db_url)
    if url.get_backend_name() == "postgresql":
        # psycopg 3 is the driver installed here (JupyterHub's plain URL means psycopg2)
        return url.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    folder = Path.cwd()
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        folder = Path(str(url.database)).absolute().parent
    return f"sqlite:///{folder / DEFAULT_FILE}"


__all__: Sequence[str] = (
    "KINDS",
    "SOURCES",
    "Checkpoint",
    "JobLedger",
    "Totals",
    "UsageJob",
    "ledger_for",
    "ledger_url",
    "month_start",
    "next_month_start",
    "record_submission",
    "vo_for",
)
