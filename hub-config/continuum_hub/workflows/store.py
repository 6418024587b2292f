"""The workflow service's database: runs, their members and attempts, workflows, credentials.

SQLAlchemy 2 (installed with JupyterHub), so any SQLAlchemy URL works (``sqlite:///…`` by
default, ``postgresql+psycopg://…``).  Everything the service knows lives here, so the service,
the hub and the users' servers can all stop and start again without losing a run: on start the
manager resumes tracking every run found in a state that is not final.

Records travel as plain dicts in the REST API's shape (the contract's ``Run``, ``Workflow`` and
``Credential``); a few fields stay internal and never reach the API (:data:`INTERNAL`): the
run's POSIX account, its notebook snapshot's digest, the run's hub token.  A SQLite file is
created 0600: it holds the run tokens (see :mod:`.credentials`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Engine

from continuum_spawners.private_file import private_engine

#: run states after which nothing changes any more
FINAL = frozenset({"done", "failed", "cancelled"})
#: fields of a run record that the REST API never shows
INTERNAL = ("account", "snapshot", "notebook_bytes")

metadata = MetaData()

runs = Table(
    "runs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("owner", String(255), index=True, nullable=False),
    Column("name", String(255), nullable=False),
    Column("workflow_id", String(32), index=True),
    Column("step", String(64)),
    Column("state", String(32), index=True, nullable=False),
    Column("reason", Text, nullable=False, default=""),
    Column("job_id", String(64)),
    Column("site", String(64)),
    Column("account", String(64)),
    Column("folder", Text),
    Column("snapshot", String(64)),
    Column("created", String(32), nullable=False),
    Column("submitted", String(32)),
    Column("started", String(32)),
    Column("ended", String(32)),
    Column("based_on", String(32)),
    Column("credential_id", String(32)),
    # what was asked for, as validated: notebook, parameters, sweep, resources, inputs, …
    Column("spec", JSON, nullable=False),
)

members = Table(
    "members",
    metadata,
    Column("run_id", String(32), primary_key=True),
    Column("idx", Integer, primary_key=True),
    Column("parameters", JSON, nullable=False),
    Column("state", String(32), nullable=False),
    Column("reason", Text, nullable=False, default=""),
    Column("node", String(255), nullable=False, default=""),
    Column("cell", Integer),
    Column("cells", Integer),
    Column("started", String(32)),
    Column("ended", String(32)),
)

attempts = Table(
    "attempts",
    metadata,
    Column("run_id", String(32), primary_key=True),
    Column("number", Integer, primary_key=True),
    Column("site", String(64), nullable=False),
    Column("job_id", String(64)),
    Column("state", String(32), nullable=False),
    Column("reason", Text, nullable=False, default=""),
    Column("submitted", String(32)),
    Column("ended", String(32)),
)

workflows = Table(
    "workflows",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("owner", String(255), index=True, nullable=False),
    Column("name", String(255), nullable=False),
    Column("state", String(32), nullable=False),
    Column("reason", Text, nullable=False, default=""),
    Column("yaml", Text, nullable=False),
    Column("steps", JSON, nullable=False),
    Column("schedule", String(255)),
    Column("next_run", String(32)),
    Column("created", String(32), nullable=False),
    # path → snapshot digest of the notebooks it was submitted with (scheduled runs reuse them)
    Column("notebooks", JSON, nullable=False),
)

credentials = Table(
    "credentials",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("owner", String(255), index=True, nullable=False),
    Column("run_id", String(32)),
    Column("workflow_id", String(32)),
    Column("hub_token_id", String(64)),
    Column("token", Text),
    Column("created", String(32), nullable=False),
    Column("expires", String(32)),
    Column("revoked", Boolean, nullable=False, default=False),
    Column("last_used", String(32)),
)

_RUN_COLUMNS = frozenset(c.name for c in runs.columns) - {"spec"}


def now() -> str:
    """The current time as the API writes it: ISO 8601, UTC, ``Z``."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Store:
    """Runs, workflows and credentials in the database at ``url`` (tables made if missing)."""

    def __init__(self, url: str) -> None:
        self.engine: Engine = private_engine(url)  # SQLite: 0600, WAL, busy timeout
        metadata.create_all(self.engine)

    # --- runs ---------------------------------------------------------------------------------
    def add_run(self, run: dict[str, Any]) -> None:
        """Insert a new run with its members (``run["members"]``), no attempts yet."""
        row = {key: run.get(key) for key in _RUN_COLUMNS}
        row["reason"] = row["reason"] or ""
        row["spec"] = run["spec"]
        with self.engine.begin() as db:
            db.execute(insert(runs).values(**row))
            for member in run["members"]:
                db.execute(insert(members).values(run_id=run["id"], **_member_row(member)))

    def run(self, run_id: str) -> dict[str, Any] | None:
        """The run ``run_id`` with its members and attempts, or ``None``."""
        with self.engine.connect() as db:
            row = db.execute(select(runs).where(runs.c.id == run_id)).mappings().first()
            return None if row is None else self._assemble(db, [row])[0]

    def runs(
        self,
        owner: str | None = None,
        state: str | None = None,
        workflow_id: str | None = None,
        states: Iterable[str] | None = None,
    ) -> list[dict[str, Any]]:
        """Runs matching every filter given, newest first."""
        query = select(runs)
        if owner is not None:
            query = query.where(runs.c.owner == owner)
        if state is not None:
            query = query.where(runs.c.state == state)
        if states is not None:
            query = query.where(runs.c.state.in_(list(states)))
        if workflow_id is not None:
            query = query.where(runs.c.workflow_id == workflow_id)
        query = query.order_by(runs.c.created.desc(), runs.c.id.desc())
        with self.engine.connect() as db:
            return self._assemble(db, list(db.execute(query).mappings()))

    def run_counts(self) -> dict[str, int]:
        """How many runs are in each state (the ``continuum_batch_runs`` gauge)."""
        query = select(runs.c.state, func.count()).group_by(runs.c.state)
        with self.engine.connect() as db:
            return {str(state): int(count) for state, count in db.execute(query)}

    def update_run(self, run_id: str, **fields: Any) -> None:
        """Change columns of a run (``spec`` keys go through :meth:`update_spec`)."""
        unknown = set(fields) - _RUN_COLUMNS
        if unknown:
            raise KeyError(f"not run columns: {sorted(unknown)}")
        with self.engine.begin() as db:
            db.execute(update(runs).where(runs.c.id == run_id).values(**fields))

    def update_member(self, run_id: str, index: int, **fields: Any) -> None:
        with self.engine.begin() as db:
            db.execute(
                update(members)
                .where(members.c.run_id == run_id, members.c.idx == index)
                .values(**fields)
            )

    def add_attempt(self, run_id: str, attempt: dict[str, Any]) -> int:
        """Record a new attempt; returns its number (1, 2, …)."""
        with self.engine.begin() as db:
            count = len(
                db.execute(select(attempts.c.number).where(attempts.c.run_id == run_id)).all()
            )
            number = count + 1
            db.execute(insert(attempts).values(run_id=run_id, number=number, **attempt))
        return number

    def update_attempt(self, run_id: str, number: int, **fields: Any) -> None:
        with self.engine.begin() as db:
            db.execute(
                update(attempts)
                .where(attempts.c.run_id == run_id, attempts.c.number == number)
                .values(**fields)
            )

    def _assemble(self, db: Any, rows: list[Any]) -> list[dict[str, Any]]:
        if not rows:
            return []
        ids = [row["id"] for row in rows]
        found_members: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
        found_attempts: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
        query = select(members).where(members.c.run_id.in_(ids)).order_by(members.c.idx)
        for member in db.execute(query).mappings():
            entry = dict(member)
            entry["index"] = entry.pop("idx")
            found_members[entry.pop("run_id")].append(entry)
        query = select(attempts).where(attempts.c.run_id.in_(ids)).order_by(attempts.c.number)
        for attempt in db.execute(query).mappings():
            entry = dict(attempt)
            found_attempts[entry.pop("run_id")].append(entry)
        result = []
        for row in rows:
            run = dict(row)
            spec = run.pop("spec")
            run.update(spec)
            run["members"] = found_members[run["id"]]
            run["attempts"] = found_attempts[run["id"]]
            result.append(run)
        return result

    # --- workflows and credentials: records of one table each ---------------------------------
    def _add(self, table: Table, record: dict[str, Any]) -> None:
        with self.engine.begin() as db:
            db.execute(insert(table).values(**record))

    def _one(self, table: Table, ident: str) -> dict[str, Any] | None:
        with self.engine.connect() as db:
            row = db.execute(select(table).where(table.c.id == ident)).mappings().first()
            return None if row is None else dict(row)

    def _all(self, table: Table, owner: str | None) -> list[dict[str, Any]]:
        """Records of ``owner`` (everyone's for ``None``), newest first."""
        query = select(table).order_by(table.c.created.desc(), table.c.id.desc())
        if owner is not None:
            query = query.where(table.c.owner == owner)
        with self.engine.connect() as db:
            return [dict(row) for row in db.execute(query).mappings()]

    def _update(self, table: Table, ident: str, fields: dict[str, Any]) -> None:
        with self.engine.begin() as db:
            db.execute(update(table).where(table.c.id == ident).values(**fields))

    def add_workflow(self, workflow: dict[str, Any]) -> None:
        self._add(workflows, workflow)

    def workflow(self, workflow_id: str) -> dict[str, Any] | None:
        return self._one(workflows, workflow_id)

    def workflows(self, owner: str | None = None) -> list[dict[str, Any]]:
        return self._all(workflows, owner)

    def update_workflow(self, workflow_id: str, **fields: Any) -> None:
        self._update(workflows, workflow_id, fields)

    def add_credential(self, credential: dict[str, Any]) -> None:
        self._add(credentials, credential)

    def credential(self, credential_id: str) -> dict[str, Any] | None:
        return self._one(credentials, credential_id)

    def credentials(self, owner: str | None = None) -> list[dict[str, Any]]:
        return self._all(credentials, owner)

    def update_credential(self, credential_id: str, **fields: Any) -> None:
        self._update(credentials, credential_id, fields)


def _member_row(member: dict[str, Any]) -> dict[str, Any]:
    return {
        "idx": member["index"],
        "parameters": member.get("parameters", {}),
        "state": member.get("state", "pending"),
        "reason": member.get("reason", ""),
        "node": member.get("node", ""),
        "cell": member.get("cell"),
        "cells": member.get("cells"),
        "started": member.get("started"),
        "ended": member.get("ended"),
    }


def public_run(run: dict[str, Any]) -> dict[str, Any]:
    """The run as the REST API shows it (internal fields left out, ``submitting`` shown as
    ``pending``)."""
    shown = {key: value for key, value in run.items() if key not in INTERNAL}
    if shown.get("state") == "submitting":
        shown["state"] = "pending"
    return shown


def public_credential(credential: dict[str, Any]) -> dict[str, Any]:
    """The credential as the REST API shows it: never the token, nor the hub's token id."""
    return {
        key: credential.get(key)
        for key in ("id", "owner", "run_id", "workflow_id", "created", "expires", "revoked")
    } | ({"last_used": credential["last_used"]} if credential.get("last_used") else {})


def public_workflow(workflow: dict[str, Any]) -> dict[str, Any]:
    """The workflow as the REST API shows it."""
    return {key: value for key, value in workflow.items() if key != "notebooks"}
