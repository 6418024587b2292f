"""SiteMonitor: batched, coalesced status queries (a fake transport counts the calls)."""

import asyncio
import time

import pytest

from continuum_spawners.schedulers.base import JobState
from continuum_spawners.schedulers.monitor import SiteMonitor
from continuum_spawners.schedulers.slurm import SlurmAdapter
from continuum_spawners.schedulers.transport import CommandResult, TransportError


class FakeSqueue:
    """Answers ``squeue`` for a set of running jobs, counting calls."""

    def __init__(self, running=(), fail=None, delay=0.01):
        self.running = set(running)
        self.fail = fail
        self.delay = delay
        self.calls: list[list[str]] = []

    async def run(self, argv, **kwargs):
        self.calls.append(list(argv))
        await asyncio.sleep(self.delay)
        if self.fail:
            raise self.fail
        ids = next(a for a in argv if a.startswith("--jobs=")).split("=", 1)[1].split(",")
        out = "".join(
            f"{i}|RUNNING|None|alpha-n1|2026-11-21T06:00:00\n" for i in ids if i in self.running
        )
        return CommandResult(0, out, "")


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def clock():
    return Clock()


async def test_fifty_servers_one_query_per_interval(clock):
    squeue = FakeSqueue(running=[str(i) for i in range(50)])
    monitor = SiteMonitor("alpha", SlurmAdapter(), squeue, clock=clock)
    for i in range(50):
        monitor.watch(str(i))
    statuses = await asyncio.gather(*(monitor.status(str(i), max_age=30) for i in range(50)))
    assert all(s.state is JobState.RUNNING for s in statuses)
    assert len(squeue.calls) == 1 and monitor.queries == 1
    assert squeue.calls[0][3] == "--jobs=" + ",".join(sorted(str(i) for i in range(50)))
    # polls spread over the interval are answered from that one query
    for i in range(50):
        clock.now += 0.5
        await monitor.status(str(i), max_age=30)
    assert len(squeue.calls) == 1
    clock.now += 30
    await monitor.status("7", max_age=30)
    assert len(squeue.calls) == 2


async def test_new_job_triggers_a_query_and_gone_jobs_are_reported(clock):
    squeue = FakeSqueue(running=["1"])
    monitor = SiteMonitor("alpha", SlurmAdapter(), squeue, clock=clock)
    assert (await monitor.status("1", max_age=30)).state is JobState.RUNNING
    assert (await monitor.status("2", max_age=30)).state is JobState.GONE
    assert len(squeue.calls) == 2
    monitor.forget("2")
    assert "2" not in monitor.watched


async def test_scheduler_down_means_unknown_not_gone(clock):
    squeue = FakeSqueue(fail=TransportError("squeue did not answer within 30 s"))
    monitor = SiteMonitor("alpha", SlurmAdapter(), squeue, clock=clock)
    status = await monitor.status("1", max_age=30)
    assert status.state is JobState.UNKNOWN and "did not answer" in status.reason


async def test_callers_during_a_query_share_it(clock):
    squeue = FakeSqueue(running=["1", "2"], delay=0.2)
    monitor = SiteMonitor("alpha", SlurmAdapter(), squeue, clock=clock)
    monitor.watch("1")
    monitor.watch("2")
    first = asyncio.create_task(monitor.refresh())
    await asyncio.sleep(0.05)
    await asyncio.gather(monitor.refresh(), monitor.refresh())
    await first
    assert len(squeue.calls) == 1


class ArraySqueue(FakeSqueue):
    """Answers with fixed lines (job arrays' tasks), counting calls."""

    def __init__(self, lines):
        super().__init__()
        self.lines = lines

    async def run(self, argv, **kwargs):
        self.calls.append(list(argv))
        return CommandResult(0, self.lines, "")


async def test_statuses_for_reports_array_tasks_in_one_query(clock):
    squeue = ArraySqueue("7_0|RUNNING|None|n1|N/A\n7_1|PENDING|JobArrayTaskLimit||N/A\n")
    monitor = SiteMonitor("alpha", SlurmAdapter(), squeue, clock=clock)
    statuses = await monitor.statuses_for(["7", "8"], max_age=30)
    assert sorted(statuses) == ["7", "7_0", "7_1", "8"]
    assert statuses["7"].state is JobState.RUNNING
    assert statuses["7_1"].reason == "JobArrayTaskLimit"
    assert statuses["8"].state is JobState.GONE
    # fresh enough: answered from the last query
    await monitor.statuses_for(["7"], max_age=30)
    assert len(squeue.calls) == 1
    clock.now += 31
    await monitor.statuses_for(["7"], max_age=30)
    assert len(squeue.calls) == 2


async def test_a_refresh_since_a_moment_runs_after_the_query_in_flight(clock):
    """The port report's query: one begun after the report, shared by reports made together."""
    squeue = FakeSqueue(running=["1"], delay=0.1)
    monitor = SiteMonitor("alpha", SlurmAdapter(), squeue, clock=clock)
    monitor.watch("1")
    early = asyncio.create_task(monitor.refresh())  # began before the reports
    await asyncio.sleep(0.02)
    reported = time.monotonic()
    await asyncio.gather(*(monitor.refresh(since=reported) for _ in range(10)))
    await early
    assert len(squeue.calls) == 2 and monitor.fetched_began >= reported
    await monitor.refresh(since=reported)  # already answered by a later query
    assert len(squeue.calls) == 2
