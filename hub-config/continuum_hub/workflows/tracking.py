"""The tracking loop: every run that is not final, followed with one status query per site.

Every ``poll_interval`` seconds :meth:`Tracker.poll` takes all live runs from the store (so a
restarted service resumes each of them), asks each site with jobs once for all of them
(``executor.status`` → the site's shared :class:`~continuum_spawners.schedulers.monitor.
SiteMonitor`: one ``squeue``, never one per run), and

* ``queued`` runs show Slurm's reason (``Priority``, ``Resources``, ``Dependency``);
* ``running`` runs have their members' ``status.json`` read (``executor.report`` as the user):
  node, executing cell of how many;
* runs whose job left the queue are finished from that report: ``done`` when every member
  finished, ``failed`` with the failing cell, and a job that ended without its notebook
  finishing (node failure, preemption, ``scancel`` from outside) is submitted again while its
  ``retries`` allow — where ``allow_move`` says so on the other site the user may use where
  it starts soonest by the sites' estimates (:mod:`.placement`); each attempt is kept (and
  reaches the crate through the run folder's ``run.json``);
* ``pending`` runs are submitted once their dependencies allow (chains across sites);
* every ``sign_in_interval`` seconds, a running run's credential is tried against the hub's
  token endpoint: when the owner's provider session has ended the run shows ``needs-sign-in``
  with the link to sign in again, and goes back to ``running`` once they did;
* a run found ``submitting`` (the service stopped between ``prepare`` and the job id) is looked
  for by its job name before being submitted again (:meth:`Tracker.recover`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from typing import Any

from continuum_spawners.schedulers import adapter_for, transport_for
from continuum_spawners.schedulers.base import JobState

from .credentials import HubError
from .executor import LOST, NEVER_STARTED, member_states, run_state
from .manager import JOB_PREFIX, REVOKED, RunManager
from .placement import Placement, soonest
from .store import FINAL, now
from .validation import RequestError

log = logging.getLogger(__name__)

#: what the store keeps of each member's state (executor.member_states)
MEMBER_FIELDS = ("state", "reason", "node", "cell", "cells", "started", "ended")


class Tracker:
    """Follows the runs of a :class:`~.manager.RunManager` until each is final."""

    def __init__(
        self,
        manager: RunManager,
        poll_interval: float = 10.0,
        sign_in_interval: float = 60.0,
        book: Any = None,
    ) -> None:
        self.manager = manager
        self.book = book  # the workflows (schedules), a definitions.WorkflowBook
        self.poll_interval = poll_interval
        self.sign_in_interval = sign_in_interval
        self._checked: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None

    @property
    def store(self) -> Any:
        return self.manager.store

    def start(self) -> None:
        """Run :meth:`loop` in the background."""
        self._task = asyncio.ensure_future(self.loop())

    async def loop(self) -> None:
        await self.recover()
        while True:
            try:
                await self.poll()
            except Exception:  # the loop must outlive any one bad poll
                log.exception("Tracking runs failed; trying again in %s s", self.poll_interval)
            await asyncio.sleep(self.poll_interval)

    async def recover(self) -> None:
        """Runs left ``submitting`` by a stopped service: found by job name, or submitted."""
        for run in self.store.runs(state="submitting"):
            site = self.manager.registry().get(run["site"] or "")
            finder = getattr(self.manager.executor, "find_job", None)
            job_id = None
            if site is not None and finder is not None:
                try:
                    job_id = await finder(site, run["account"], run["id"])
                except (OSError, RuntimeError, ValueError) as exc:
                    log.warning("Looking for the job of run %s: %s", run["id"], exc)
                    continue  # try again at the next start; never submit blindly
            if job_id:
                number = run["attempts"][-1]["number"] if run["attempts"] else None
                if number is not None:
                    self.store.update_attempt(run["id"], number, job_id=job_id, state="queued")
                self.store.update_run(run["id"], state="queued", job_id=job_id)
                log.info("Run %s: found its job %s after a restart", run["id"], job_id)
                continue
            if site is not None and finder is None and run["account"]:
                # without a lookup, make sure no copy is left before submitting again
                argv = adapter_for(site).cancel_name_argv(f"{JOB_PREFIX}{run['id']}")
                await transport_for(site).run(argv, user=run["account"])
            self.store.update_run(run["id"], state="pending")
            for attempt in run["attempts"]:
                if attempt["state"] == "submitting":
                    self.store.update_attempt(
                        run["id"], attempt["number"], state="failed", reason="not submitted"
                    )
            await self.manager.advance(run["id"])

    async def poll(self) -> None:
        """One round: schedules, pending runs advanced, every site asked once, runs updated."""
        if self.book is not None:
            await self.book.due()
        for run in self.store.runs(state="pending"):
            await self.manager.advance(run["id"])
        live = self.store.runs(states=("queued", "running", "needs-sign-in"))
        by_site: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for run in live:
            if run["job_id"]:
                by_site[run["site"]].append(run)
        registry = self.manager.registry()
        for site_name, runs in by_site.items():
            site = registry.get(site_name)
            if site is None:
                continue
            try:
                statuses = await self.manager.executor.status(site, [r["job_id"] for r in runs])
            except (OSError, RuntimeError) as exc:
                log.warning("Status of site %s: %s", site_name, exc)
                continue
            for run in runs:
                try:
                    await self.update(run, site, statuses)
                except (OSError, RuntimeError, ValueError, HubError) as exc:
                    log.warning("Updating run %s: %s", run["id"], exc)

    def fresh(self, run_id: str) -> dict[str, Any] | None:
        """The run as stored now, unless it became final meanwhile (cancelled through the API,
        or by a step before it during this round)."""
        run = self.store.run(run_id)
        return None if run is None or run["state"] in FINAL else run

    async def update(self, run: dict[str, Any], site: Any, statuses: dict[str, Any]) -> None:
        found = self.fresh(run["id"])
        if found is None or found["job_id"] != run["job_id"]:
            return
        run = found
        status = statuses.get(run["job_id"])
        if status is None or status.state is JobState.UNKNOWN:
            return  # the scheduler did not answer: nothing is known
        revoked = run["reason"] == REVOKED
        if status.state is JobState.PENDING:
            reason = run["reason"] if revoked else status.reason or run["reason"]
            if run["state"] != "queued" or reason != run["reason"]:
                self.store.update_run(run["id"], state="queued", reason=reason)
            return
        report = await self.manager.executor.report(site, run["account"], run["folder"])
        if self.fresh(run["id"]) is None:
            return
        members = member_states(report, statuses, run["job_id"])
        for member in members:
            fields = {k: member[k] for k in MEMBER_FIELDS}
            self.store.update_member(run["id"], member["index"], **fields)
        if status.state is JobState.RUNNING:
            fields = {}
            if run["state"] == "queued":
                fields = {"state": "running", "reason": run["reason"] if revoked else ""}
            if run["started"] is None:
                fields["started"] = now()
            if fields:
                self.store.update_run(run["id"], **fields)
            await self.check_credential(self.store.run(run["id"]) or run)
            return
        await self.finish(self.store.run(run["id"]) or run, members)

    async def finish(self, run: dict[str, Any], members: list[dict[str, Any]]) -> None:
        """The job left the queue: done, failed (the notebook's error), or lost and retried."""
        state = run_state(members)
        prefix = f"{REVOKED}: " if run["reason"] == REVOKED else ""
        if state == "done":
            await self.manager.end_run(run, "done", prefix.rstrip(": "))
            return
        sweep = run["sweep"] is not None
        failed = [
            f"member {m['index']}: {m['reason']}" if sweep else m["reason"]
            for m in members
            if m["state"] == "failed" and m["reason"] not in (LOST, NEVER_STARTED)
        ]
        if failed:
            more = f" (and {len(failed) - 3} more)" if len(failed) > 3 else ""
            await self.manager.end_run(run, "failed", prefix + "; ".join(failed[:3]) + more)
            return
        if state == "cancelled":
            reason = next((m["reason"] for m in members if m["reason"]), "cancelled")
            await self.manager.end_run(run, "cancelled", prefix + reason)
            return
        lost = next((m["reason"] for m in members if m["state"] == "failed"), LOST)
        await self.lost(run, lost)

    async def lost(self, run: dict[str, Any], reason: str) -> None:
        """Retry a run whose job ended without finishing, or end it as failed."""
        attempts = run["attempts"]
        if attempts:
            self.store.update_attempt(
                run["id"], attempts[-1]["number"], state="failed", reason=reason, ended=now()
            )
        if len(attempts) > run["retries"]:
            await self.manager.end_run(run, "failed", reason)
            return
        placement = await self.elsewhere(run) if run["allow_move"] else None
        site = placement.request.site if placement else run["site"]
        log.info("Run %s: attempt %d lost; retrying on %s", run["id"], len(attempts), site)
        self.store.update_run(run["id"], state="pending", job_id=None, reason=f"retrying: {reason}")
        fresh = self.store.run(run["id"]) or run
        why = f"moved to {placement.reason}" if placement else ""
        await self.manager.submit(fresh, site=site, placement=placement, why=why)

    async def elsewhere(self, run: dict[str, Any]) -> Placement | None:
        """The soonest other site the owner may use for the run's resources, by estimate."""
        try:
            return await soonest(self.manager, run["owner"], run["resources"], {run["site"]})
        except (RequestError, HubError, OSError, RuntimeError) as exc:
            log.warning("Run %s: no other site: %s", run["id"], exc)
            return None

    async def check_credential(self, run: dict[str, Any]) -> None:
        """Needs-sign-in: can the run's credential still get the owner's access token?"""
        if run["state"] in FINAL or not run["credential_id"]:
            return
        last = self._checked.get(run["id"], float("-inf"))
        if time.monotonic() - last < self.sign_in_interval:
            return
        self._checked[run["id"]] = time.monotonic()
        credential = self.store.credential(run["credential_id"])
        if credential is None:
            return
        if credential["revoked"] or not credential["token"]:
            answer = "revoked"
        else:
            answer = await self.manager.hub.check_run_token(run["owner"], credential["token"])
            self.store.update_credential(credential["id"], last_used=now())
        if answer == "ok" and run["state"] == "needs-sign-in":
            self.store.update_run(run["id"], state="running", reason="")
        elif answer == "sign-in" and run["state"] != "needs-sign-in":
            login = f"{self.manager.hub_public_url}/hub/login"
            self.store.update_run(
                run["id"],
                state="needs-sign-in",
                reason=f"sign in again at {login} to continue",
            )
        elif answer == "revoked" and run["reason"] != REVOKED:
            self.store.update_run(run["id"], reason=REVOKED)
