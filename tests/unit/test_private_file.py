"""Private database files: made 0600 without ever opening one that exists.

The regression: every store used to ``os.close(os.open(path, O_CREAT))`` its SQLite file each
time it was made.  Closing a descriptor drops all of the process's POSIX locks on the file, so a
second ledger made in a process that already had one took the first one's SQLite locks away;
another process then deleted the write-ahead log as if it were the last user, and the first
ledger's later writes went into the deleted file, seen by nobody else.  The test below makes
that sequence with real processes.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.exc import OperationalError

from continuum_spawners.ledger import JobLedger
from continuum_spawners.private_file import create_private, private_engine
from fixtures.ledger_jobs import usage_job

OTHER_PROCESS = """
import sys
from datetime import UTC, datetime
from continuum_spawners.ledger import JobLedger, UsageJob
ledger = JobLedger(sys.argv[1])
if sys.argv[2] == "write":
    ledger.record_submission(UsageJob(
        site="alpha", job_id="other", kind="server", label="", user="bob", vo=None,
        partition="interactive", submitted_at=datetime.now(UTC), req_cores=1, req_gpus=0,
        req_memory_gb=1.0, req_walltime_minutes=10))
else:
    print(" ".join(sorted(j.job_id for j in ledger.jobs(limit=100))))
ledger.engine.dispose()
"""


def other_process(url: str, what: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", OTHER_PROCESS, url, what],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout.strip()


def test_a_new_file_is_private_and_an_existing_one_is_never_opened(tmp_path: Path, monkeypatch):
    made = create_private(tmp_path / "new.sqlite")
    assert stat.S_IMODE(made.stat().st_mode) == 0o600 and made.stat().st_size == 0
    existing = tmp_path / "old.sqlite"
    existing.write_bytes(b"data")
    existing.chmod(0o644)
    opened: list[object] = []
    real_open = os.open
    monkeypatch.setattr(os, "open", lambda *a, **k: opened.append(a[0]) or real_open(*a, **k))
    create_private(existing)
    assert opened == [existing.absolute()]  # only the O_EXCL attempt, refused by the kernel
    assert stat.S_IMODE(existing.stat().st_mode) == 0o600 and existing.read_bytes() == b"data"


def test_a_second_ledger_in_one_process_keeps_the_first_ones_writes_visible(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'usage.sqlite'}"
    first = JobLedger(url)
    first.record_submission(usage_job("1"))
    second = JobLedger(url)  # the same file again, in the same process
    other_process(url, "write")  # another process writes and closes: it must not be "last"
    first.record_submission(usage_job("2"))
    assert other_process(url, "read") == "1 2 other"
    assert {j.job_id for j in second.jobs()} == {"1", "2", "other"}


def test_private_engine_makes_a_private_wal_file_and_reads_postgresql_as_psycopg(tmp_path):
    path = tmp_path / "new" / "store.sqlite"
    engine = private_engine(f"sqlite:///{path}", timeout=2.5)
    with engine.connect() as db:
        assert db.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert db.exec_driver_sql("PRAGMA busy_timeout").scalar() == 2500
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    # JupyterHub's spelling would mean psycopg2, which is not installed: psycopg 3 it is
    assert private_engine("postgresql://hub@db.example/hub").dialect.driver == "psycopg"


def test_immediate_transactions_take_turns_and_readers_wait_for_none(tmp_path):
    url = f"sqlite:///{tmp_path / 'alloc.sqlite'}"
    first, second = (private_engine(url, immediate=True, timeout=0.2) for _ in range(2))
    with first.begin() as db:
        db.exec_driver_sql("CREATE TABLE t (x)")
    with first.begin() as db:
        db.exec_driver_sql("SELECT count(*) FROM t")  # reads, then would write: holds the lock
        with pytest.raises(OperationalError, match="database is locked"):
            with second.begin() as other:  # a second allocator waits (here: gives up)
                other.exec_driver_sql("SELECT count(*) FROM t")
        with second.connect().execution_options(sqlite_deferred=True) as reader:
            assert reader.exec_driver_sql("SELECT count(*) FROM t").scalar() == 0
