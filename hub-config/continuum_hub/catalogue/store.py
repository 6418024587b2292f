"""The catalogue service's database: users' *make available* requests.

SQLAlchemy 2, so any SQLAlchemy URL works (``sqlite:///<state_dir>/catalogue.sqlite`` by
default, created 0600; ``postgresql+psycopg://…``).  A request records who asked for which
entry at which site, the source's own request id (a Rucio rule id) and the last state the
source reported, so the service can restart without losing any; the sources hold the truth
about the state, which :meth:`Store.update` refreshes.  Records are the REST API's shape.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Column, MetaData, String, Table, Text, insert, select, update
from sqlalchemy.engine import Engine

from continuum_spawners.private_file import private_engine

metadata = MetaData()

requests = Table(
    "requests",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("owner", String(255), index=True, nullable=False),
    Column("entry_id", Text, nullable=False),
    Column("source", String(64), nullable=False),
    Column("site", String(64), nullable=False),
    Column("source_request", Text, nullable=False),
    Column("state", String(32), nullable=False),
    Column("message", Text, nullable=False, default=""),
    Column("created", String(32), nullable=False),
    Column("updated", String(32), nullable=False),
)


def now() -> str:
    """The time now, UTC, ISO 8601 with seconds."""
    return datetime.now(UTC).isoformat(timespec="seconds")


class Store:
    """Requests in the database at ``url`` (tables made if missing)."""

    def __init__(self, url: str) -> None:
        self.engine: Engine = private_engine(url)  # SQLite: 0600, WAL, busy timeout
        metadata.create_all(self.engine)

    def add(
        self, owner: str, entry_id: str, source: str, site: str, answer: dict[str, Any]
    ) -> dict[str, Any]:
        """Record a request the source accepted (``answer``: its ``id``, ``state``,
        ``message``); the new record."""
        stamp = now()
        row = {
            "id": f"q-{secrets.token_hex(8)}",
            "owner": owner,
            "entry_id": entry_id,
            "source": source,
            "site": site,
            "source_request": str(answer.get("id", "")),
            "state": str(answer.get("state", "requested")),
            "message": str(answer.get("message", "")),
            "created": stamp,
            "updated": stamp,
        }
        with self.engine.begin() as db:
            db.execute(insert(requests).values(**row))
        return row

    def owned(self, owner: str, request_id: str | None = None) -> list[dict[str, Any]]:
        """``owner``'s requests, newest first (only ``request_id`` when given)."""
        query = select(requests).where(requests.c.owner == owner)
        if request_id is not None:
            query = query.where(requests.c.id == request_id)
        with self.engine.connect() as db:
            rows = db.execute(query.order_by(requests.c.created.desc(), requests.c.id))
            return [dict(row) for row in rows.mappings()]

    def update(self, request_id: str, state: str, message: str) -> None:
        """Record the state a source reported now."""
        with self.engine.begin() as db:
            db.execute(
                update(requests)
                .where(requests.c.id == request_id)
                .values(state=state, message=message, updated=now())
            )
