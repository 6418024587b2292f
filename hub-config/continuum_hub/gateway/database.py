"""The gateway's cluster database on PostgreSQL: :func:`use_postgresql_types`.

dask-gateway-server (2026.3.0) was written for SQLite and fails on PostgreSQL twice: its
clusters' token column is ``BINARY(140)``, a type PostgreSQL does not have (``type "binary"
does not exist`` when the gateway makes its tables), and its start and stop times are
milliseconds since 1970 in ``INTEGER`` columns, beyond PostgreSQL's 32-bit ``integer``
(``integer out of range`` at the first cluster).  :func:`use_postgresql_types` gives those
columns of its two tables PostgreSQL's types (``BYTEA``, ``BIGINT``) before the gateway makes
or reads them; SQLite keeps the library's own.  Called by the gateway's process for a
PostgreSQL ``GatewayService.db_url``, never on import.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, LargeBinary
from sqlalchemy.engine import make_url
from sqlalchemy.types import BINARY

__all__ = ["use_postgresql_types"]

#: the columns holding milliseconds since 1970
MILLISECONDS = ("start_time", "stop_time")


def use_postgresql_types(url: str) -> None:
    """When ``url`` is PostgreSQL, retype dask-gateway-server's columns that PostgreSQL lacks
    or overflows (its tables are module-level objects: this holds for the whole process)."""
    if make_url(url).get_backend_name() != "postgresql":
        return
    from dask_gateway_server.backends import db_base

    for table in (db_base.clusters, db_base.workers):
        for column in table.columns:
            if isinstance(column.type, BINARY):
                column.type = LargeBinary(column.type.length)
            elif column.name in MILLISECONDS:
                column.type = BigInteger()
