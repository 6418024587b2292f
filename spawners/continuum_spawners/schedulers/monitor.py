"""``SiteMonitor``: one batched status query per site per interval, shared by all its callers.

batchspawner runs one ``squeue`` per server per poll: with hundreds of servers that is hundreds
of scheduler calls every poll interval, a load site admins notice.  Here every spawner of a site
(and, in its own process, the Dask Gateway) asks the site's one monitor
(:func:`continuum_spawners.schedulers.monitor_for`); the monitor answers from its last query
while that is fresh enough and otherwise runs *one* status command for all the jobs it watches.
Callers that arrive while a query is in flight wait for that query instead of starting another.

Jobs that are starting (a spawn waits for them) are followed by one *starting poll* per site
(:meth:`SiteMonitor.follow_start`): a single task runs the batched query every
``interval`` seconds while any job of the site is starting, and each waiting spawn wakes on its
result (:meth:`SiteMonitor.next_poll`), so N pending spawns cost one query per interval, not N.
A spawn whose server reported its port asks for a query that begins after the report
(``refresh(since=...)``) instead of waiting for the next round.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from ..metrics import STATUS_CALLS, STATUS_DURATION
from .base import JobState, JobStatus, SchedulerAdapter
from .transport import Transport

log = logging.getLogger(__name__)


class SiteMonitor:
    """Job status of one site, from batched queries.

    Parameters
    ----------
    name
        The site's name (for messages).
    adapter
        Builds the status command and parses its output.
    transport
        Runs it (as the hub's own account: status needs no user identity).
    clock
        Monotonic clock, replaceable in tests.
    """

    def __init__(
        self,
        name: str,
        adapter: SchedulerAdapter,
        transport: Transport,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.adapter = adapter
        self.transport = transport
        self.clock = clock
        self.watched: set[str] = set()
        self.statuses: dict[str, JobStatus] = {}
        self.fetched_at = float("-inf")
        self.queries = 0  # status commands run so far (exposed for metrics and benchmarks)
        self._inflight: asyncio.Future[None] | None = None
        # when the query in flight and the last finished one began (time.monotonic(), as the
        # port report's time that ``refresh(since=...)`` compares with; ``clock`` may be a test's)
        self._inflight_began = float("-inf")
        self.fetched_began = float("-inf")
        # the starting poll: jobs being started, its task, and the event of its next round
        self.starting: set[str] = set()
        self.starting_interval = 1.0
        self._starting_task: asyncio.Task[None] | None = None
        self._round: asyncio.Event | None = None

    def watch(self, job_id: str) -> None:
        """Include ``job_id`` in the batched queries from now on."""
        self.watched.add(job_id)

    def forget(self, job_id: str) -> None:
        """Stop following ``job_id`` (its server stopped)."""
        self.watched.discard(job_id)
        self.statuses.pop(job_id, None)

    async def status(self, job_id: str, max_age: float) -> JobStatus:
        """Status of ``job_id``, from a query no older than ``max_age`` seconds.

        A job not seen by the last query (just submitted) triggers a new one.
        """
        self.watch(job_id)
        fresh = self.clock() - self.fetched_at < max_age
        if not (fresh and job_id in self.statuses):
            await self.refresh()
            if job_id not in self.statuses:  # the query in flight began before we watched it
                await self.refresh()
        return self.statuses.get(job_id) or JobStatus(job_id, JobState.UNKNOWN)

    async def statuses_for(self, job_ids: list[str], max_age: float) -> dict[str, JobStatus]:
        """Status of each of ``job_ids`` and of their job arrays' tasks (``"<id>_<i>"``), from
        one query no older than ``max_age`` seconds (batch runs ask for all of a site's jobs at
        once)."""
        for job_id in job_ids:
            self.watch(job_id)
        fresh = self.clock() - self.fetched_at < max_age
        if not (fresh and all(job_id in self.statuses for job_id in job_ids)):
            await self.refresh()
            if not all(job_id in self.statuses for job_id in job_ids):
                await self.refresh()  # the query in flight began before we watched them
        wanted = set(job_ids)
        return {
            key: status
            for key, status in self.statuses.items()
            if key in wanted or key.partition("_")[0] in wanted
        } | {
            job_id: JobStatus(job_id, JobState.UNKNOWN)
            for job_id in job_ids
            if job_id not in self.statuses
        }

    async def refresh(self, since: float | None = None) -> None:
        """Query all watched jobs in one command (or wait for the query in flight).

        Parameters
        ----------
        since
            A ``time.monotonic()`` time: return only after a query that *began* then or later
            (a query already in flight that began earlier is waited for, then one more runs;
            callers with the same ``since`` share it).
        """
        while True:
            if since is not None and self.fetched_began >= since:
                return
            if self._inflight is not None:
                began = self._inflight_began
                await asyncio.shield(self._inflight)
                if since is None or began >= since:
                    return
                continue  # it began too early: join or run a later one
            self._inflight = asyncio.get_running_loop().create_future()
            self._inflight_began = began = time.monotonic()
            try:
                await self._query()
            finally:
                self.fetched_began = max(self.fetched_began, began)
                self._inflight.set_result(None)
                self._inflight = None
            return

    # -- the starting poll ---------------------------------------------------------------------

    def follow_start(self, job_id: str, interval: float) -> None:
        """Follow starting job ``job_id`` with the site's starting poll (one query every
        ``interval`` seconds for all starting jobs) until :meth:`end_start`."""
        self.watch(job_id)
        self.starting.add(job_id)
        self.starting_interval = interval
        if self._starting_task is None or self._starting_task.done():
            self._starting_task = asyncio.get_running_loop().create_task(
                self._poll_starting(), name=f"starting poll of site {self.name}"
            )

    def end_start(self, job_id: str) -> None:
        """``job_id`` is no longer starting (its spawn ended either way); the poll stops
        after its current round when no job is left."""
        self.starting.discard(job_id)

    @property
    def polling(self) -> bool:
        """Whether the starting poll's task runs."""
        return self._starting_task is not None and not self._starting_task.done()

    def next_poll(self) -> asyncio.Event:
        """The event set when the starting poll's next round has its answer."""
        if self._round is None:
            self._round = asyncio.Event()
        return self._round

    def covers(self, job_id: str) -> bool:
        """Whether the last query answered for ``job_id`` (one begun before the job was
        watched did not)."""
        return job_id in self.statuses

    async def _poll_starting(self) -> None:
        # checked before each round, with no await between the check and the return: a start
        # added while the last round slept is polled by this task, a later one starts another
        while self.starting:
            try:
                await self.refresh()
            except Exception:  # the poll must go on; _query already reports a dead scheduler
                log.exception("Starting poll of site %s failed", self.name)
            finished, self._round = self._round, None
            if finished is not None:
                finished.set()
            await asyncio.sleep(self.starting_interval)

    async def _query(self) -> None:
        ids = sorted(self.watched)
        if not ids:
            return
        self.queries += 1
        started = time.monotonic()  # the real clock: ``clock`` may be a test's
        try:
            result = await self.transport.run(self.adapter.status_argv(ids))
            statuses = self.adapter.parse_status(
                result.returncode, result.stdout, result.stderr, ids
            )
        except Exception as exc:  # a dead scheduler must not take the hub down
            log.warning("Status query on site %s failed: %s", self.name, exc)
            statuses = {i: JobStatus(i, JobState.UNKNOWN, reason=str(exc)[:200]) for i in ids}
        STATUS_DURATION.labels(site=self.name).observe(time.monotonic() - started)
        unknown = [s for s in statuses.values() if s.state is JobState.UNKNOWN]
        # every job unknown: the scheduler did not answer (the "site unreachable" alert)
        failed = bool(unknown) and len(unknown) == len(statuses)
        STATUS_CALLS.labels(site=self.name, outcome="error" if failed else "ok").inc()
        if unknown:
            log.warning(
                "Scheduler of site %s is not answering (%s); keeping %d servers",
                self.name,
                unknown[0].reason or "no reason",
                len(unknown),
            )
        self.statuses = dict(statuses)
        self.fetched_at = self.clock()
