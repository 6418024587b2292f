"""The job's half of "a job's end seen at once": tell the hub when the scheduler ends the job.

A site ends a server's job with ``SIGTERM`` and, ``KillWait`` seconds later, ``SIGKILL``: at the
end of the walltime, on ``scancel`` and on preemption.  Without word from the job the hub learns
of it only at its next poll (up to ``Spawner.poll_interval`` plus the batched status' age, about
a minute).  The launcher therefore stays the parent of the server (:func:`supervise`); on
``SIGTERM`` it passes the signal on, posts once, with the server's own token, to
``POST /hub/api/continuum/job-ending`` with ``{"reason": <one of REASONS>}`` and lets the server
shut down.  The hub then looks at the job at once (:mod:`.job_end_handler`).

Only the standard library: this runs in every job, before the server starts.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from datetime import datetime
from types import FrameType

#: what a job-ending report may say (the hub refuses anything else)
REASONS = ("walltime", "cancelled")
#: a SIGTERM this close to the walltime's end is the walltime's (Slurm may be a little late)
WALLTIME_MARGIN = 60.0
#: the report must not hold up the shutdown: Slurm's KillWait is 30 s by default, 5 s on ours
REPORT_TIMEOUT = 3.0
#: under ``JUPYTERHUB_API_URL`` (which ends in ``/hub/api``)
REPORT_PATH = "/continuum/job-ending"
#: signals passed on to the server unchanged (SIGTERM is passed on and reported)
FORWARDED = (signal.SIGINT, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2)


def ending_reason(environ: Mapping[str, str], now: float | None = None) -> str:
    """Why the job is ending, judged when its ``SIGTERM`` arrives.

    ``"walltime"`` within :data:`WALLTIME_MARGIN` of ``CONTINUUM_JOB_END`` (set by the
    launcher), else ``"cancelled"``: Slurm sends the same signal for ``scancel``, preemption
    and a node's drain, so the job cannot tell those apart.
    """
    now = time.time() if now is None else now
    end = environ.get("CONTINUUM_JOB_END", "")
    try:
        end_epoch = datetime.strptime(end, "%Y-%m-%dT%H:%M:%S%z").timestamp()
    except ValueError:
        return "cancelled"
    return "walltime" if now >= end_epoch - WALLTIME_MARGIN else "cancelled"


def report_job_ending(
    api_url: str, token: str, reason: str, timeout: float = REPORT_TIMEOUT
) -> int:
    """Post ``{"reason": reason}`` to the hub with the server's token; return the HTTP status.

    Raises
    ------
    ValueError
        For a reason not in :data:`REASONS` or an API URL that is not http(s).
    OSError
        When the hub cannot be reached in ``timeout`` seconds (``urllib.error.URLError``).
    """
    if reason not in REASONS:
        raise ValueError(f"unknown job-ending reason {reason!r}")
    if not api_url.startswith(("http://", "https://")):
        raise ValueError(f"JUPYTERHUB_API_URL is not an http(s) URL: {api_url!r}")
    request = urllib.request.Request(  # noqa: S310 - scheme checked above
        api_url.rstrip("/") + REPORT_PATH,
        data=json.dumps({"reason": reason}).encode(),
        headers={"Authorization": f"token {token}", "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as exc:  # refused (e.g. the hub is stopping the server)
        return int(exc.code)


class Supervisor:
    """Runs the server as a child, reports the job's end once, passes signals on.

    Parameters
    ----------
    argv
        The server command.
    api_url, token
        The hub's API URL and the server's own API token.
    environ
        The launcher's environment (for :func:`ending_reason`).
    """

    def __init__(
        self, argv: list[str], api_url: str, token: str, environ: Mapping[str, str]
    ) -> None:
        self.argv = argv
        self.api_url = api_url
        self.token = token
        self.environ = environ
        self.child: subprocess.Popen[bytes] | None = None
        self.reported: str | None = None

    def run(self) -> int:
        """Start the server, wait for it; its exit status (128 + signal when killed)."""
        signal.signal(signal.SIGTERM, self._on_term)
        for signum in FORWARDED:
            signal.signal(signum, self._forward)
        self.child = subprocess.Popen(self.argv)  # the configured server command
        returncode = self.child.wait()  # PEP 475: retried after each signal handler
        return 128 - returncode if returncode < 0 else returncode

    def _forward(self, signum: int, frame: FrameType | None = None) -> None:
        if self.child is not None and self.child.poll() is None:
            self.child.send_signal(signum)

    def _on_term(self, signum: int, frame: FrameType | None = None) -> None:
        # first the server (Slurm signals it too, a plain `kill` of the launcher does not),
        # then the hub: the report only makes the hub look at the job now
        self._forward(signum)
        if self.reported is not None:
            return
        self.reported = ending_reason(self.environ)
        try:
            status = report_job_ending(self.api_url, self.token, self.reported)
        except (OSError, ValueError) as exc:
            status = 0
            print(f"continuum-singleuser: job-ending report failed: {exc}", file=sys.stderr)
        print(
            f"continuum-singleuser: job ending ({self.reported}); hub answered {status}",
            file=sys.stderr,
            flush=True,
        )


def supervise(argv: list[str], environ: Mapping[str, str] | None = None) -> int:
    """Run ``argv`` under a :class:`Supervisor` with the hub settings of ``environ``."""
    env = os.environ if environ is None else environ
    return Supervisor(argv, env["JUPYTERHUB_API_URL"], env["JUPYTERHUB_API_TOKEN"], env).run()
