"""A server job from its submission to its port report, and a start the hub never finished.

batchspawner 1.3's ``start()`` polls the job until it runs and then only sleeps until the port
arrives: a job that dies after it began running (the launcher failed, the node went away) holds
the spawn until ``start_timeout``, and the port report waits for the next sleep to end.
:class:`StartupMixin` follows the job until the port is reported (its end fails the spawn at
once, with the reason) and wakes as soon as the port arrives.

JupyterHub saves a spawner's state only after ``start()`` returns, so a hub that stops while a
job waits in the queue would forget the job, which would run later for nobody.  The state is
therefore saved as soon as ``sbatch`` returns (:meth:`StartupMixin.save_state_now`), marked
``starting``; a hub that loads such a state cancels the job at its first poll
(:meth:`StartupMixin.cancel_unfinished_start`): JupyterHub cannot resume a pending spawn
(nothing would wait for the job's port report, which the hub refuses outside a spawn), so the
server is stopped and the user starts again.

The job's status while it starts comes from the site's *starting poll*
(:meth:`~continuum_spawners.schedulers.monitor.SiteMonitor.follow_start`): one batched status
query per ``startup_poll_interval`` for all the site's starting jobs, whatever their number
(each spawn polling on its own ran ``squeue`` five times a second per site in the 200-user
storm).  The port report does not wait for the next round: it asks for a query begun after it.

Commits go through the session of the spawner's own ORM row
(``sqlalchemy.orm.object_session``): JupyterHub deprecates the shared ``Spawner.db`` and logs a
ten-line warning at every use.
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

from batchspawner import JobStatus as BatchJobStatus
from sqlalchemy.orm import object_session
from sqlalchemy.orm.exc import UnmappedInstanceError
from traitlets import HasTraits, observe

from .schedulers.monitor import SiteMonitor

#: the starting poll's rounds a spawn waits before it makes sure the poll still runs
STALLED_ROUNDS = 10
#: ... and at least these seconds
STALLED_SECONDS = 30.0


class StartupMixin(HasTraits):
    """The start of a batch job's server (see the module); for ``SiteSpawner``.

    A ``HasTraits`` so that its ``@observe`` handler is bound.
    """

    # a job was submitted and start() has not returned yet (saved with the state)
    starting = False
    # the saved state was of a start the hub never finished (it stopped meanwhile)
    restored_starting = False
    _port_arrived: asyncio.Event | None = None
    _port_arrived_at = 0.0  # time.monotonic() of the port report
    # provided by the spawner
    log: Any
    job_id: str
    job_status: str
    ip: str
    port: int
    server: Any
    startup_poll_interval: float
    _log_name: str

    @observe("port")
    def _wake_on_port(self, change: dict[str, Any]) -> None:
        if change["new"] and self._port_arrived is not None:
            self._port_arrived_at = time.monotonic()
            self._port_arrived.set()

    async def start_job(self) -> tuple[str, int]:
        """Submit the job and follow it until it runs and reported its port."""
        self.ip = self.traits()["ip"].default_value
        self.port = 0
        if self.server:
            self.server.port = self.port
        self._port_arrived = asyncio.Event()
        await self.submit_batch_script()  # type: ignore[attr-defined]
        job_id = self.job_id
        if not job_id:
            raise RuntimeError("Jupyter batch job submission failure (no jobid in output)")
        monitor: SiteMonitor = self.monitor(self.site)  # type: ignore[attr-defined]
        monitor.follow_start(job_id, self.startup_poll_interval)
        try:
            await self._follow_start(monitor, job_id)
        finally:  # done, failed or cancelled (start_timeout): the poll stops without this job
            monitor.end_start(job_id)
        self.ip = self.state_gethost()  # type: ignore[attr-defined]
        self.commit_orm()
        self.log.info("Notebook server job %s started at %s:%s", self.job_id, self.ip, self.port)
        return self.ip, self.port

    async def _follow_start(self, monitor: SiteMonitor, job_id: str) -> None:
        """Wait until the job runs and its port is reported; raise if it ends first."""
        port_seen = False
        while True:
            next_round = monitor.next_poll()
            if self.port and not port_seen:
                # the server listens, so the job runs: a query begun after the report says so
                # (and where); reports that arrived together share one
                port_seen = True
                await monitor.refresh(since=self._port_arrived_at)
            elif not monitor.covers(job_id):  # submitted after the last round began
                await self._wait_round(monitor, job_id, next_round, port_seen)
                continue
            status = await self.query_job_status(max_age=math.inf)  # type: ignore[attr-defined]
            if status == BatchJobStatus.RUNNING and self.port:
                return
            if status not in (
                BatchJobStatus.PENDING,
                BatchJobStatus.RUNNING,
                BatchJobStatus.UNKNOWN,
            ):
                self.log.warning("Job %s ended while starting: %s", self.job_id, self.job_status)
                self.clear_state()  # type: ignore[attr-defined]
                raise RuntimeError("The Jupyter batch job ended before the server started.")
            await self._wait_round(monitor, job_id, next_round, port_seen)

    async def _wait_round(
        self, monitor: SiteMonitor, job_id: str, next_round: asyncio.Event, port_seen: bool
    ) -> None:
        """Until the starting poll's next round answered or (once) the port arrives; a poll
        that died (it never should) is restarted after ``STALLED_ROUNDS`` rounds' time (a slow
        round is only waited for: a loaded scheduler took over 30 s per query in the storm)."""
        assert self._port_arrived is not None
        waits = [asyncio.ensure_future(next_round.wait())]
        if not port_seen:  # a report already handled must not end every later wait at once
            waits.append(asyncio.ensure_future(self._port_arrived.wait()))
        stalled = max(STALLED_ROUNDS * self.startup_poll_interval, STALLED_SECONDS)
        try:
            done, _ = await asyncio.wait(
                waits, timeout=stalled, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for wait in waits:
                wait.cancel()
        if not done and not monitor.polling:  # no round for long, and the poll is gone
            self.log.warning("Starting poll of site %s had stopped: restarting it", monitor.name)
            monitor.follow_start(job_id, self.startup_poll_interval)

    def commit_orm(self) -> None:
        """Commit the hub's database session that holds this spawner's ORM row (none outside a
        hub); ``Spawner.db``, the shared session, is deprecated."""
        orm_spawner = getattr(self, "orm_spawner", None)
        if orm_spawner is None:
            return
        try:
            session = object_session(orm_spawner)
        except UnmappedInstanceError:  # not an ORM object: a spawner outside a hub
            return
        if session is not None:
            session.commit()

    def save_state_now(self) -> None:
        """Write ``get_state()`` to the hub's database at once (JupyterHub saves it only after
        ``start()`` returns, as ``User.spawn`` does at its end)."""
        orm_spawner = getattr(self, "orm_spawner", None)
        if orm_spawner is None:  # a spawner outside a hub
            return
        orm_spawner.state = self.get_state()  # type: ignore[attr-defined]
        self.commit_orm()

    def note_saved_start(self, state: dict[str, Any]) -> None:
        """From ``load_state``: was this saved while its job was starting?"""
        self.restored_starting = bool(state.get("starting")) and bool(self.job_id)

    async def cancel_unfinished_start(self, site: str) -> bool:
        """Cancel the job of a start the hub never finished; whether there was one."""
        if not self.restored_starting:
            return False
        self.restored_starting = False
        self.log.warning(
            "Job %s of %s on site %s was still starting when the hub stopped: cancelling it",
            self.job_id,
            self._log_name,
            site,
        )
        await self.cancel_batch_job()  # type: ignore[attr-defined]
        self.clear_state()  # type: ignore[attr-defined]
        return True
