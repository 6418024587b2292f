"""A spawn's phases (``continuum_spawners.phases``) and its start (``.startup``).

The phase times, the log line and the histogram; the spawner's hooks (port trait, the port
report's launcher age, JupyterHub's ``_proxy_pending`` flag); the job id written to the hub's
database as soon as ``sbatch`` returns, a start the hub never finished cancelled at the first
poll after a restart, a job that ends while starting failing the start at once, and the port
report ending the wait.
"""

from __future__ import annotations

import asyncio
import logging
import pwd
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from batchspawner import JobStatus as BatchJobStatus
from prometheus_client import REGISTRY
from traitlets.config import Config

from continuum_spawners import accounts
from continuum_spawners.phases import PHASES, SpawnPhases, parse_launcher_age
from continuum_spawners.schedulers import clear_monitors
from continuum_spawners.schedulers.transport import CommandResult
from continuum_spawners.spawner import SiteSpawner

pytestmark = pytest.mark.spawner

REGISTRY_YAML = """
sites:
  - name: alpha
    scheduler: slurm
    partitions:
      - {name: interactive, default: true, max_cores: 4, max_memory_gb: 8, max_walltime: "08:00:00"}
"""


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_phases_are_offsets_from_the_spawns_beginning_and_the_first_mark_counts():
    clock = Clock(100.0)
    phases = SpawnPhases(began=99.5, clock=clock)
    phases.mark("validated")
    clock.now = 100.4
    phases.mark("sbatch")
    phases.mark("port", at=102.0)  # the port report may arrive before RUNNING is seen
    phases.mark("running", at=102.3)
    phases.mark("port", at=109.0)  # a requeued job's rerun: the first report counts
    assert phases.offsets() == pytest.approx(
        {"validated": 0.5, "sbatch": 0.9, "running": 2.8, "port": 2.5}
    )
    assert list(phases.offsets()) == ["validated", "sbatch", "running", "port"]  # PHASES order
    # each phase's own duration runs from the latest earlier mark, whatever the order
    assert phases.durations() == pytest.approx(
        {"validated": 0.5, "sbatch": 0.4, "running": 0.3, "port": 1.6}
    )
    assert phases.line("alice", "alpha", "42") == (
        "spawn phases user=alice site=alpha job=42 validated=0.50 sbatch=0.90 running=2.80 "
        "port=2.50"
    )
    with pytest.raises(ValueError, match="unknown spawn phase 'queued'"):
        phases.mark("queued")


@pytest.mark.parametrize(
    ("header", "age"),
    [
        ("0.250", 0.25),
        ("0", 0.0),
        (None, None),
        ("", None),
        ("-1", None),
        ("nan", None),
        ("inf", None),
        ("601", None),
        ("1e2", 100.0),
        ("0.1; drop", None),
        ("1" * 30, None),
    ],
    ids=["plain", "zero", "missing", "empty", "negative", "nan", "inf", "too-old", "exponent",
         "junk", "long"],
)  # fmt: skip
def test_launcher_age_header_is_a_bounded_number_or_nothing(header, age):
    assert parse_launcher_age(header) == age


# -- the spawner's hooks ---------------------------------------------------------------------------


class FakeDb:
    def __init__(self) -> None:
        self.commits = 0

    def commit(self) -> None:
        self.commits += 1


class FakeTransport:
    """Records the commands a spawner runs at its site."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[str], str | None]] = []

    async def run(self, argv: list[str], user: str | None = None, **kwargs: Any) -> CommandResult:
        self.calls.append((list(argv), user))
        return CommandResult(0, "", "")


@pytest.fixture(autouse=True)
def fresh_monitors() -> Iterator[None]:
    clear_monitors()
    yield
    clear_monitors()


@pytest.fixture
def spawner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SiteSpawner:
    def entry(name: str) -> pwd.struct_passwd | None:
        if name != "alice":
            return None
        return pwd.struct_passwd((name, "x", 2000, 2000, "", "/home/alice", "/bin/sh"))

    monkeypatch.setattr(accounts, "passwd_entry", entry)
    registry = tmp_path / "sites.yaml"
    registry.write_text(REGISTRY_YAML)
    user = SimpleNamespace(
        name="alice", groups=[SimpleNamespace(name="vo.hep.example")], url="/user/alice/"
    )
    config = Config({"SiteSpawner": {"registry_path": str(registry)}})
    spawner = SiteSpawner(user=user, config=config, db=FakeDb())
    spawner.request = spawner.check_options({"site": "alpha"})
    return spawner


def histogram_count(site: str, phase: str) -> float:
    labels = {"site": site, "phase": phase}
    return REGISTRY.get_sample_value("continuum_spawn_phase_seconds_count", labels) or 0.0


def test_spawner_marks_port_launcher_and_logs_once_the_proxy_route_is_added(spawner, caplog):
    began = datetime.now(UTC).timestamp() - 3
    spawner.phases = SpawnPhases(began)
    spawner.job_id = "77"
    spawner.phases.mark("validated", began + 0.01)
    spawner.launcher_reported("0.5")
    spawner.launcher_reported("junk")  # an odd header marks nothing and raises nothing
    spawner.port = 8123
    assert {"launcher", "port"} <= set(spawner.phases.marks)
    assert spawner.phases.marks["port"] - spawner.phases.marks["launcher"] == pytest.approx(
        0.5, abs=0.05
    )
    before = histogram_count("alpha", "proxy")
    spawner._server = object()  # the hub's Server of this spawn (no ORM here)
    with caplog.at_level(logging.INFO):
        spawner._proxy_pending = True  # JupyterHub: the server answered, adding the route
        assert spawner._proxy_pending and "answering" in spawner.phases.marks
        spawner._proxy_pending = False  # the route is there
    assert spawner.phases is None and not spawner._proxy_pending
    (line,) = [r.getMessage() for r in caplog.records if "spawn phases" in r.getMessage()]
    assert line.startswith("spawn phases user=alice site=alpha job=77 validated=0.01 ")
    names = [field.split("=")[0] for field in line.split()[5:]]
    assert names == ["validated", "launcher", "port", "answering", "proxy"]
    assert set(names) <= set(PHASES)
    assert histogram_count("alpha", "proxy") == before + 1
    # outside a spawn (a restarted hub's resumed server) the flag logs nothing
    caplog.clear()
    spawner._proxy_pending = True
    spawner._proxy_pending = False
    assert not [r for r in caplog.records if "spawn phases" in r.getMessage()]


def test_a_failed_proxy_route_logs_no_phases(spawner, caplog):
    spawner.phases = SpawnPhases(0.0)
    spawner._proxy_pending = True
    spawner._server = None  # JupyterHub stopped the server: the route could not be added
    with caplog.at_level(logging.INFO):
        spawner._proxy_pending = False
    assert not [r for r in caplog.records if "spawn phases" in r.getMessage()]


def test_the_job_id_is_saved_as_soon_as_it_is_known(spawner):
    orm_spawner = SimpleNamespace(state=None, server=None, started=None)
    spawner.orm_spawner = orm_spawner
    spawner.job_id, spawner.site_account, spawner.starting = "91", "alice", True
    spawner.save_state_now()
    assert orm_spawner.state["job_id"] == "91" and orm_spawner.state["starting"] is True
    assert orm_spawner.state["request"]["site"] == "alpha"
    assert spawner.db.commits == 1
    spawner.starting = False  # start() returned: JupyterHub saves the state without the flag
    assert "starting" not in spawner.get_state()


async def test_a_start_the_hub_never_finished_is_cancelled_at_the_first_poll(spawner, caplog):
    transport = FakeTransport()
    spawner.transport = lambda site: transport  # type: ignore[method-assign]
    saved = {
        "job_id": "91",
        "request": spawner.request.values(),
        "account": "alice",
        "starting": True,
    }
    spawner.request = None
    spawner.load_state(saved)
    assert spawner.restored_starting
    assert await spawner.poll() == 1
    assert transport.calls == [(["scancel", "91"], "alice")]
    assert spawner.job_id == "" and not spawner.restored_starting
    assert "was still starting when the hub stopped: cancelling it" in caplog.text
    # JupyterHub then stops the server: its poll finds nothing left to cancel
    assert await spawner.poll() == 1
    assert len(transport.calls) == 1
    # a server that had started is resumed as before (no flag in its saved state)
    spawner.load_state({k: v for k, v in saved.items() if k != "starting"})
    assert not spawner.restored_starting


# -- from the submission to the port report (continuum_spawners.startup) -------------------------


def follow(spawner: SiteSpawner, statuses: list[BatchJobStatus]) -> list[str]:
    """Give ``spawner`` a submission that records itself and the job statuses ``statuses``
    (the last one repeated)."""
    calls: list[str] = []

    async def submit() -> str:
        spawner.job_id = "5"
        calls.append("sbatch")
        return "5"

    async def status(max_age: float | None = None) -> BatchJobStatus:
        calls.append("status")
        return statuses.pop(0) if len(statuses) > 1 else statuses[0]

    spawner.submit_batch_script = submit  # type: ignore[method-assign]
    spawner.query_job_status = status  # type: ignore[method-assign]
    spawner.state_gethost = lambda: "node1"  # type: ignore[method-assign]
    return calls


async def test_a_job_ending_after_it_ran_fails_the_start_at_once(spawner):
    follow(spawner, [BatchJobStatus.PENDING, BatchJobStatus.RUNNING, BatchJobStatus.NOTFOUND])
    spawner.startup_poll_interval = 0.01
    with pytest.raises(RuntimeError, match="ended before the server started"):
        await asyncio.wait_for(spawner.start_job(), 5)  # not at start_timeout
    assert spawner.job_id == ""  # cleared: nothing left to cancel


async def test_the_port_report_ends_the_wait_at_once(spawner):
    calls = follow(spawner, [BatchJobStatus.RUNNING])
    spawner.startup_poll_interval = 30.0  # only the report can end the wait in time
    asyncio.get_running_loop().call_later(0.05, setattr, spawner, "port", 8123)
    started = time.monotonic()
    assert await asyncio.wait_for(spawner.start_job(), 5) == ("node1", 8123)
    assert time.monotonic() - started < 2
    assert calls[0] == "sbatch" and spawner.db.commits == 1
