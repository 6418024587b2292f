"""The workflow service's database on a real PostgreSQL (Debian's 15), not only SQLite.

A throwaway cluster (``initdb`` as the ``postgres`` account in a temporary folder, listening on
127.0.0.1 and a private socket folder) holds the store; a second ``Store`` on the same URL is the
service after a restart.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from continuum_federation.process import free_port
from continuum_hub.workflows.store import Store, public_run

pytestmark = [pytest.mark.integration, pytest.mark.workflows]

BIN = Path("/usr/lib/postgresql/15/bin")


def as_postgres(*argv: str, log: Path | None = None) -> None:
    """Run a PostgreSQL command as its account; output to ``log`` (the server started by
    ``pg_ctl`` keeps its output open, so nothing here may wait on a pipe)."""
    with open(log or "/dev/null", "ab") as output:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", *argv],
            check=True,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            timeout=120,
        )


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    folder = Path(tempfile.mkdtemp(prefix="continuum-pg-"))
    shutil.chown(folder, "postgres", "postgres")
    data, port = folder / "data", free_port()
    as_postgres(str(BIN / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust")
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1"
    log = folder / "postgres.log"
    as_postgres(str(BIN / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(log), "-w", "start")
    try:
        as_postgres(str(BIN / "createdb"), "-h", "127.0.0.1", "-p", str(port), "workflows")
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/workflows"
    finally:
        as_postgres(str(BIN / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop")
        shutil.rmtree(folder, ignore_errors=True)


def test_runs_survive_a_restart_on_postgresql(postgres_url: str) -> None:
    store = Store(postgres_url)
    store.add_run(
        {
            "id": "r-00000000000a",
            "owner": "alice",
            "name": "analysis.ipynb",
            "state": "queued",
            "job_id": "12",
            "account": "alice",
            "created": "2026-01-01T00:00:00Z",
            "spec": {"parameters": {"label": "x", "n": [1, 2]}, "sweep": {"grid": {"e": [1, 2]}}},
            "members": [{"index": 0, "parameters": {"e": 1}}, {"index": 1, "parameters": {"e": 2}}],
        }
    )
    store.add_attempt("r-00000000000a", {"site": "alpha", "job_id": "12", "state": "queued"})
    store.update_member("r-00000000000a", 1, state="running", cell=1, cells=3)
    again = Store(postgres_url)  # the service started again
    (run,) = again.runs(states=("queued", "running"))
    assert run["parameters"] == {"label": "x", "n": [1, 2]} and run["sweep"]["grid"] == {
        "e": [1, 2]
    }
    assert [m["state"] for m in run["members"]] == ["pending", "running"]
    assert run["attempts"][0]["job_id"] == "12"
    assert "account" not in public_run(run)
