"""A spawn's phases (``continuum_spawners.phases``) and its start (``.startup``).

The phase times, the log line and the histogram; the spawner's hooks (port trait, the port
report's launcher age, JupyterHub's ``_proxy_pending`` flag); the job id written to the hub's
database as soon as ``sbatch`` returns (through the ORM row's own session: no deprecated
``Spawner.db``), a start the hub never finished cancelled at the first poll after a restart, a
job that ends while starting failing the start at once, the port report ending the wait, and
the site's starting poll: one status query per interval for any number of pending spawns.
"""

from __future__ import annotations

import asyncio
import logging
import pwd
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from jupyterhub import orm
from prometheus_client import REGISTRY
from traitlets.config import Config

from continuum_spawners import accounts, ledger, startup
from continuum_spawners.phases import PHASES, SpawnPhases, parse_launcher_age
from continuum_spawners.schedulers import clear_monitors
from continuum_spawners.schedulers.monitor import SiteMonitor
from continuum_spawners.schedulers.slurm import SlurmAdapter
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


class ScriptedSqueue:
    """``squeue`` of a site whose jobs are in ``states`` (job id → Slurm state; a job not
    there has left the queue), counting its calls."""

    def __init__(self) -> None:
        self.states: dict[str, str] = {}
        self.calls = 0

    async def run(self, argv: list[str], **kwargs: Any) -> CommandResult:
        self.calls += 1
        ids = next(a for a in argv if a.startswith("--jobs=")).split("=", 1)[1].split(",")
        lines = (f"{i}|{self.states[i]}|None|node1|N/A\n" for i in ids if i in self.states)
        return CommandResult(0, "".join(lines), "")


@pytest.fixture
def make_spawner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Makes spawners of user ``alice`` on site ``alpha`` (a registry in ``tmp_path``)."""

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

    def make() -> SiteSpawner:
        spawner = SiteSpawner(user=user, config=config)  # no ``db``: its use would warn
        spawner.request = spawner.check_options({"site": "alpha"})
        return spawner

    return make


@pytest.fixture
def spawner(make_spawner: Any) -> SiteSpawner:
    return make_spawner()


@pytest.fixture
def orm_spawner(tmp_path: Path) -> Iterator[orm.Spawner]:
    """alice's spawner row in a hub database of its own."""
    session = orm.new_session_factory(f"sqlite:///{tmp_path / 'hub.sqlite'}")()
    row = orm.Spawner(user=orm.User(name="alice"), name="")
    session.add(row)
    session.commit()
    yield row
    session.close()


def saved_state(tmp_path: Path) -> Any:
    """alice's spawner state as another connection reads it (committed only)."""
    session = orm.new_session_factory(f"sqlite:///{tmp_path / 'hub.sqlite'}")()
    try:
        return session.query(orm.Spawner).one().state
    finally:
        session.close()


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


def test_the_job_id_is_saved_as_soon_as_it_is_known(spawner, orm_spawner, tmp_path, caplog):
    spawner.orm_spawner = orm_spawner
    spawner.job_id, spawner.site_account, spawner.starting = "91", "alice", True
    with caplog.at_level(logging.WARNING):
        spawner.save_state_now()
    state = saved_state(tmp_path)  # committed through the row's own session
    assert state["job_id"] == "91" and state["starting"] is True
    assert state["request"]["site"] == "alpha"
    assert "Spawner.db is deprecated" not in caplog.text
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


def on_site(spawner: SiteSpawner, monitor: SiteMonitor, squeue: ScriptedSqueue, job: str) -> None:
    """``spawner`` submits job ``job`` (queued at first) and reads the site's status from
    ``monitor``; its node is ``node1``."""

    async def submit() -> str:
        spawner.job_id = job
        squeue.states[job] = "PENDING"
        return job

    spawner.submit_batch_script = submit  # type: ignore[method-assign]
    spawner.monitor = lambda site: monitor  # type: ignore[method-assign]


@pytest.fixture
def squeue() -> ScriptedSqueue:
    return ScriptedSqueue()


@pytest.fixture
def monitor(squeue: ScriptedSqueue) -> SiteMonitor:
    return SiteMonitor("alpha", SlurmAdapter(), squeue)


async def rounds(monitor: SiteMonitor, count: int) -> None:
    """Until the starting poll answered ``count`` more rounds."""
    for _ in range(count):
        await asyncio.wait_for(monitor.next_poll().wait(), 5)


async def test_a_job_ending_after_it_ran_fails_the_start_at_once(spawner, monitor, squeue):
    on_site(spawner, monitor, squeue, "5")
    spawner.startup_poll_interval = 0.01
    start = asyncio.create_task(spawner.start_job())
    await rounds(monitor, 2)
    squeue.states["5"] = "RUNNING"
    await rounds(monitor, 2)
    del squeue.states["5"]  # the launcher failed: the job left the queue
    with pytest.raises(RuntimeError, match="ended before the server started"):
        await asyncio.wait_for(start, 5)  # not at start_timeout
    assert spawner.job_id == "" and not monitor.starting  # cleared: nothing left to cancel


async def test_the_port_report_ends_the_wait_at_once(
    spawner, monitor, squeue, orm_spawner, tmp_path, caplog
):
    on_site(spawner, monitor, squeue, "5")
    spawner.orm_spawner = orm_spawner
    spawner.startup_poll_interval = 30.0  # only the report can end the wait in time
    start = asyncio.create_task(spawner.start_job())
    await rounds(monitor, 1)  # queued in the first round; the next one is 30 s away
    squeue.states["5"] = "RUNNING"
    started = time.monotonic()
    with caplog.at_level(logging.WARNING):
        spawner.port = 8123
        assert await asyncio.wait_for(start, 5) == ("node1", 8123)
    assert time.monotonic() - started < 2
    assert squeue.calls == 2  # the round, then one query begun after the report
    assert "Spawner.db is deprecated" not in caplog.text


async def test_pending_spawns_share_one_status_query_per_interval(make_spawner, monitor, squeue):
    spawners = [make_spawner() for _ in range(20)]
    for number, spawner in enumerate(spawners):
        on_site(spawner, monitor, squeue, str(100 + number))
        spawner.startup_poll_interval = 0.05
    starts = [asyncio.create_task(s.start_job()) for s in spawners]
    await rounds(monitor, 1)
    calls = squeue.calls
    await rounds(monitor, 5)
    assert squeue.calls == calls + 5  # 20 pending spawns, one query a round
    assert all(s.status is not None and s.status.raw_state == "PENDING" for s in spawners)
    # their jobs run and the servers report their ports at once: one more query for all
    for job in squeue.states:
        squeue.states[job] = "RUNNING"
    before = squeue.calls
    for number, spawner in enumerate(spawners):
        spawner.port = 9000 + number
    addresses = await asyncio.wait_for(asyncio.gather(*starts), 5)
    assert addresses == [("node1", 9000 + n) for n in range(20)]
    assert squeue.calls - before <= 2  # a round may have been under way
    assert not monitor.starting
    assert monitor._starting_task is not None
    await asyncio.wait_for(monitor._starting_task, 5)  # the poll ends after its last round


async def test_the_usage_ledger_is_written_off_the_event_loop(spawner, tmp_path, monkeypatch):
    """The submission's ledger row (a synced SQLite commit) is written by a thread: the hub's
    loop goes on meanwhile."""
    url = f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    monkeypatch.setenv(ledger.ENV_URL, url)
    writers: list[str] = []
    write = ledger.JobLedger.record_submission

    def record(self: ledger.JobLedger, job: ledger.UsageJob) -> None:
        writers.append(threading.current_thread().name)
        write(self, job)

    monkeypatch.setattr(ledger.JobLedger, "record_submission", record)
    spawner.job_id = "31"
    spawner._record_usage(spawner.site, spawner.job_spec(["HOME"]))
    deadline = time.monotonic() + 10
    while not ledger.ledger_for(url).unfinished("alpha"):
        assert time.monotonic() < deadline, "the submission never reached the ledger"
        await asyncio.sleep(0.02)
    (job,) = ledger.ledger_for(url).unfinished("alpha")
    assert (job.job_id, job.user, job.kind) == ("31", "alice", "server")
    assert writers and writers[0] != threading.main_thread().name


async def test_a_dead_starting_poll_is_restarted_by_a_waiting_spawn(
    spawner, monitor, squeue, monkeypatch, caplog
):
    monkeypatch.setattr(startup, "STALLED_SECONDS", 0.2)
    on_site(spawner, monitor, squeue, "8")
    spawner.startup_poll_interval = 0.01
    start = asyncio.create_task(spawner.start_job())
    await rounds(monitor, 1)
    assert monitor._starting_task is not None
    monitor._starting_task.cancel()  # the poll dies (it never should)
    with caplog.at_level(logging.WARNING):
        await rounds(monitor, 1)  # restarted by the waiting spawn
    assert "Starting poll of site alpha had stopped: restarting it" in caplog.text
    squeue.states["8"] = "RUNNING"
    spawner.port = 8124
    assert await asyncio.wait_for(start, 5) == ("node1", 8124)
