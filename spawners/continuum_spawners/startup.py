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
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from batchspawner import JobStatus as BatchJobStatus
from traitlets import HasTraits, observe


class StartupMixin(HasTraits):
    """The start of a batch job's server (see the module); for ``SiteSpawner``.

    A ``HasTraits`` so that its ``@observe`` handler is bound.
    """

    # a job was submitted and start() has not returned yet (saved with the state)
    starting = False
    # the saved state was of a start the hub never finished (it stopped meanwhile)
    restored_starting = False
    _port_arrived: asyncio.Event | None = None
    # provided by the spawner
    log: Any
    db: Any
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
            self._port_arrived.set()

    async def start_job(self) -> tuple[str, int]:
        """Submit the job and follow it until it runs and reported its port."""
        self.ip = self.traits()["ip"].default_value
        self.port = 0
        if self.server:
            self.server.port = self.port
        self._port_arrived = asyncio.Event()
        await self.submit_batch_script()  # type: ignore[attr-defined]
        if not self.job_id:
            raise RuntimeError("Jupyter batch job submission failure (no jobid in output)")
        while True:
            status = await self.query_job_status()  # type: ignore[attr-defined]
            if status == BatchJobStatus.RUNNING and self.port:
                break
            if status not in (
                BatchJobStatus.PENDING,
                BatchJobStatus.RUNNING,
                BatchJobStatus.UNKNOWN,
            ):
                self.log.warning("Job %s ended while starting: %s", self.job_id, self.job_status)
                self.clear_state()  # type: ignore[attr-defined]
                raise RuntimeError("The Jupyter batch job ended before the server started.")
            self._port_arrived.clear()
            with contextlib.suppress(TimeoutError):  # the port report ends the wait early
                await asyncio.wait_for(self._port_arrived.wait(), self.startup_poll_interval)
        self.ip = self.state_gethost()  # type: ignore[attr-defined]
        self.db.commit()
        self.log.info("Notebook server job %s started at %s:%s", self.job_id, self.ip, self.port)
        return self.ip, self.port

    def save_state_now(self) -> None:
        """Write ``get_state()`` to the hub's database at once (JupyterHub saves it only after
        ``start()`` returns, as ``User.spawn`` does at its end)."""
        orm_spawner = getattr(self, "orm_spawner", None)
        if orm_spawner is None or self.db is None:  # a spawner outside a hub (unit tests)
            return
        orm_spawner.state = self.get_state()  # type: ignore[attr-defined]
        self.db.commit()

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
