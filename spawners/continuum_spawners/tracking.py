"""A server's job as the hub follows it: status, polls, the saved state.

:class:`TrackingMixin` is part of :class:`~continuum_spawners.spawner.SiteSpawner`.  Status comes
from the site's shared monitor (one batched query per site per interval,
:mod:`continuum_spawners.schedulers.monitor`) and is translated into batchspawner's states; a
job the scheduler put back in the queue is followed (its rerun reports a new port).  The saved
state holds the validated request and the site account, so a restarted hub finds every job
again (and watches them all at once: one status query per site).
"""

from __future__ import annotations

import time
from typing import Any

from batchspawner import JobStatus as BatchJobStatus

from .metrics import QUEUE_WAIT
from .options import JobRequest
from .schedulers.base import JobState, JobStatus
from .sites import Site


class TrackingMixin:
    """Status, polls and state of a server's job, for
    :class:`~continuum_spawners.spawner.SiteSpawner` (see the module)."""

    # provided by SiteSpawner (traits and state), its other mixins and JupyterHub's Spawner
    request: JobRequest | None
    status: JobStatus | None
    last_status: JobStatus | None
    requeued: bool
    site: Site
    site_account: str
    job_id: str
    job_status: str
    starting: bool
    restored_starting: bool
    pending: Any
    phases: Any
    startup_poll_interval: float
    status_interval: float
    registry: Any
    log: Any
    _log_name: str
    _submitted_at: float | None
    monitor: Any
    known_site: Any
    note_saved_start: Any
    cancel_unfinished_start: Any

    async def query_job_status(self, max_age: float | None = None) -> BatchJobStatus:
        """Status from the site's monitor: fresh while starting, batched for polls."""
        if not self.job_id or self.request is None:
            self.status = None
            return BatchJobStatus.NOTFOUND
        age = self.startup_poll_interval if max_age is None else max_age
        status = await self.monitor(self.site).status(self.job_id, age)
        previous = self.status
        self.status = self.last_status = status
        submitted = self._submitted_at
        if self.phases is not None and status.state is JobState.RUNNING:
            self.phases.mark("running")
        if submitted is not None and status.state is JobState.RUNNING:
            self._submitted_at = None  # once per job: its wait in the queue ended
            QUEUE_WAIT.labels(site=self.site.name, partition=self.request.partition).observe(
                time.monotonic() - submitted
            )
        self.job_status = f"{status.raw_state or status.state.value} {status.reason}".strip()
        if (
            previous is not None
            and previous.state is JobState.RUNNING
            and status.state is JobState.PENDING
            and not self.pending
        ):
            self.requeued = True
            self.log.warning(
                "Job %s of %s on %s was requeued by the scheduler (%s); following it",
                self.job_id,
                self._log_name,
                self.site.name,
                status.reason or status.raw_state,
            )
        return {
            JobState.PENDING: BatchJobStatus.PENDING,
            JobState.RUNNING: BatchJobStatus.RUNNING,
            JobState.UNKNOWN: BatchJobStatus.UNKNOWN,
            JobState.GONE: BatchJobStatus.NOTFOUND,
        }[status.state]

    async def poll(self) -> int | None:
        """``None`` while the job is queued, running or unknown (scheduler down), else 1
        (also for a start the hub never finished: :mod:`.startup`)."""
        if await self.cancel_unfinished_start(self.request.site if self.request else "?"):
            return 1
        if not self.job_id:
            return 1
        state = await self.query_job_status(max_age=self.status_interval)
        if state in (BatchJobStatus.PENDING, BatchJobStatus.RUNNING, BatchJobStatus.UNKNOWN):
            return None
        last = self.last_status
        self.log.warning(
            "Job %s of %s on site %s is gone (%s): the server is stopped",
            self.job_id,
            self._log_name,
            self.request.site if self.request else "?",
            f"{last.raw_state} {last.reason}".strip() if last else "no status",
        )
        self.clear_state()
        return 1

    def state_ispending(self) -> bool:
        return self.status is not None and self.status.state is JobState.PENDING

    def state_isrunning(self) -> bool:
        return self.status is not None and self.status.state is JobState.RUNNING

    def state_isunknown(self) -> bool:
        return self.status is not None and self.status.state is JobState.UNKNOWN

    def state_gethost(self) -> str:
        site = self.site
        if site.node_address:
            return site.node_address
        if self.status is None or not self.status.node:
            raise RuntimeError(f"job {self.job_id} on {site.name} reports no node")
        return self.status.node

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        self.site_account = state.get("account", "")
        self.note_saved_start(state)
        request = state.get("request")
        if request:
            try:
                self.request = JobRequest(**request)
            except TypeError:
                self.log.warning("Ignoring unreadable saved request of %s", self._log_name)
        if self.job_id and self.request is not None:
            # a hub starting with many running servers checks them all at once: watched now,
            # the site's first status query covers every one of them (one call per site)
            try:
                site = self.registry.get(self.request.site)
                if site is not None:  # a site gone from the registry: its poll says so later
                    self.monitor(site).watch(self.job_id)
            except Exception as exc:  # an unreadable registry: the poll reports it
                self.log.debug("Not watching %s's job yet: %s", self._log_name, exc)

    def get_state(self) -> dict[str, Any]:
        state = super().get_state()
        if self.job_id and self.request is not None:
            state["request"] = self.request.values()
            state["account"] = self.site_account
            if self.starting:
                state["starting"] = True
        return state

    def clear_state(self) -> None:
        site = self.known_site()
        if self.job_id and site is not None:
            self.monitor(site).forget(self.job_id)
        super().clear_state()
        self.status = None
        self.site_account = ""
        self.starting = self.restored_starting = False
