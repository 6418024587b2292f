"""``POST /hub/api/continuum/job-ending``: a running server says its job is ending.

The hub's half of "a job's end seen at once" (the job's half is :mod:`.job_end`).  Built like
the port report (:mod:`.api`): the body is exactly ``{"reason": <one of REASONS>}``, the token
must be the API token of the server itself, and the server must be running; nothing else can be
said or set.  The report is not believed blindly: it only makes the hub look at the job at once
and again every ``startup_poll_interval`` (:func:`follow_job_end`) until the scheduler no longer
lists it, and then stop the server through JupyterHub's own path (``poll_and_notify``: the
proxy route goes, the server is marked stopped).  A job the scheduler requeued instead is left
to the spawner, which follows it.  A false report costs a few status queries; polling stays the
backstop for what sends no signal (a lost node, ``SIGKILL``).

The reason is logged, counted (``continuum_job_ending_reports_total``) and shown on the user's
home and spawn pages (:func:`announcement`, a ``template_vars`` entry of the hub configuration).
"""

from __future__ import annotations

import asyncio
import html
import json
import time
from collections.abc import Iterable
from typing import Any

from batchspawner import JobStatus as BatchJobStatus
from jupyterhub import apihandlers
from jupyterhub.apihandlers import APIHandler
from tornado import web

from .api import own_spawner
from .job_end import REASONS
from .metrics import JOB_ENDING_REPORTS

JOB_ENDING_ROUTE = r"/api/continuum/job-ending"
#: what the user reads on the home and spawn pages after such an end
MESSAGES = {
    "walltime": "Your server {name}stopped: its job reached the end of its walltime.",
    "cancelled": "Your server {name}stopped: the site ended its job (cancelled or preempted).",
}
#: seconds to look at an ending job before leaving it to polling (Slurm's KillWait ≤ 30 s,
#: plus the server's own shutdown)
FOLLOW_TIMEOUT = 120.0

#: (user name, server name) → why its job ended, for the pages.  Not on the spawner:
#: JupyterHub drops a stopped server's spawner object.  A start forgets it (:func:`forget_end`).
_ENDED: dict[tuple[str, str], str] = {}


def accept_job_ending(body: Any, token: str, spawners: Iterable[Any]) -> tuple[Any, str]:
    """Check a job-ending report (the parsed ``body``, the request's ``token``, the signed-in
    user's ``spawners``); return the reporting spawner and the reason.

    Raises
    ------
    tornado.web.HTTPError
        400 for any body but ``{"reason": <one of REASONS>}``, 403 unless ``token`` is the API
        token of one of ``spawners``, 409 unless that server is running and has not reported yet.
    """
    if not isinstance(body, dict) or set(body) != {"reason"} or body["reason"] not in REASONS:
        raise web.HTTPError(400, f'the body must be exactly {{"reason": <one of {REASONS}>}}')
    spawner = own_spawner(spawners, token)
    if spawner is None:
        raise web.HTTPError(403, "only a server's own token may report its job's end")
    if spawner.pending or spawner.server is None:
        raise web.HTTPError(409, "the server is not running")
    if getattr(spawner, "end_reason", ""):
        raise web.HTTPError(409, "this job's end was already reported")
    return spawner, body["reason"]


async def follow_job_end(spawner: Any, give_up_after: float = FOLLOW_TIMEOUT) -> str:
    """Look at the ending job until the scheduler drops it; return what happened.

    ``"stopped"``: the job is gone and the server was stopped through ``poll_and_notify``;
    ``"requeued"``: the scheduler put the job back in the queue (the spawner follows it);
    ``"stopping"``: the server was stopped meanwhile by other means; ``"timeout"``: still
    listed after ``give_up_after`` seconds (left to polling).
    """
    interval = spawner.startup_poll_interval
    deadline = time.monotonic() + give_up_after
    while time.monotonic() < deadline:
        if spawner.pending or spawner.server is None:
            return "stopping"
        state = await spawner.query_job_status(max_age=interval)
        if state is BatchJobStatus.NOTFOUND:
            await spawner.poll_and_notify()
            return "stopped"
        if state is BatchJobStatus.PENDING or getattr(spawner, "requeued", False):
            spawner.end_reason = ""
            forget_end(spawner.user.name, spawner.name)
            return "requeued"
        await asyncio.sleep(interval)
    return "timeout"


class JobEndingHandler(APIHandler):
    """``POST /hub/api/continuum/job-ending``: a running server's job is ending; nothing else."""

    @web.authenticated
    async def post(self) -> None:
        user = self.current_user
        # services and other identities without servers have no spawners: refused with 403
        spawners = getattr(user, "spawners", None) or {}
        try:
            spawner, reason = accept_job_ending(
                self.get_json_body(), self.get_auth_token() or "", spawners.values()
            )
        except web.HTTPError as exc:
            JOB_ENDING_REPORTS.labels(reason="refused").inc()
            # a server the hub stops itself reports too (409 while stopping): no warning
            log = self.log.info if exc.status_code == 409 else self.log.warning
            log("Refused job-ending report of %s: %s", user.name, exc.log_message)
            raise
        JOB_ENDING_REPORTS.labels(reason=reason).inc()
        spawner.end_reason = reason
        _ENDED[(user.name, spawner.name)] = reason
        self.log.info("Server %s reported that its job is ending (%s)", spawner._log_name, reason)
        self.set_status(202)
        self.finish(json.dumps({"message": "the hub is looking at the job"}))
        # the handler's answer must not wait for the job to go (seconds, up to KillWait)
        task = asyncio.ensure_future(self._follow(spawner, reason))
        spawner._job_end_task = task  # a reference, so the task is not collected while it runs

    async def _follow(self, spawner: Any, reason: str) -> None:
        started = time.monotonic()
        try:
            outcome = await follow_job_end(spawner)
        except Exception:
            self.log.exception("Following the end of %s's job failed", spawner._log_name)
            return
        self.log.info(
            "Job end of %s (%s): %s after %.1f s",
            spawner._log_name,
            reason,
            outcome,
            time.monotonic() - started,
        )


def forget_end(user_name: str, server_name: str) -> None:
    """Forget why the server's last job ended (it starts again, or its job was requeued)."""
    _ENDED.pop((user_name, server_name), None)


def announcement(user: Any) -> str | None:
    """HTML for the home/spawn page: why the user's stopped servers ended (``None``: nothing).

    A ``template_vars`` value (JupyterHub calls it with the signed-in user, or ``None``).
    """
    if user is None:
        return None
    spawners = getattr(user, "spawners", {})
    notes = []
    for (owner, name), reason in sorted(_ENDED.items()):
        spawner = spawners.get(name)
        if owner != user.name or (spawner is not None and spawner.active):
            continue
        label = f"{name} " if name else ""
        notes.append(html.escape(MESSAGES[reason].format(name=label)))
    return " ".join(notes) or None


def install_job_end_handler() -> None:
    """Add the job-ending route to the hub's API handlers (idempotent).

    Called by :func:`.api.install_api_handlers`.
    """
    handlers = apihandlers.default_handlers
    handlers[:] = [h for h in handlers if h[0] != JOB_ENDING_ROUTE]
    handlers.append((JOB_ENDING_ROUTE, JobEndingHandler))
    for reason in (*REASONS, "refused"):  # at 0: "none reported" rather than no series
        JOB_ENDING_REPORTS.labels(reason=reason)
