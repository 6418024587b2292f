"""Where a spawn's seconds go: the time of each phase, one log line and a histogram per spawn.

A server's start crosses the hub, the site's scheduler, the job and the proxy; a single total
(JupyterHub's "took N seconds to start") cannot say which of them to make faster.  The spawner
marks each phase as it sees it happen (:class:`SpawnPhases`):

``validated``
    the user's options checked into a request (budget included);
``sbatch``
    the submission command returned a job id;
``running``
    the hub first saw the job ``RUNNING``;
``launcher``
    ``continuum-singleuser``'s process started in the job (the port report says how long
    before it, see :data:`LAUNCHER_AGE_HEADER`);
``port``
    the port report arrived (the launcher reports once the server listens: material pull and
    the server's own start are in this phase);
``answering``
    JupyterHub's check of the server's ``/api`` answered (the spawn future resolved);
``proxy``
    the proxy route was added: the user's browser leaves the pending page.

Each is logged as seconds since the spawn began (``Spawner.orm_spawner.started``, set by the
hub before the options are applied), so phases that overlap (the port report may arrive before
the hub's poll sees ``RUNNING``) stay readable.  The histogram observes each phase's own
duration, from the latest earlier phase, by site and phase.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import UTC
from typing import Any

from traitlets import HasTraits, observe

from .metrics import SPAWN_PHASE

#: phases in the order a spawn normally passes them
PHASES = ("validated", "sbatch", "running", "launcher", "port", "answering", "proxy")
#: header of the port report: seconds from the launcher's start to the report (a number only)
LAUNCHER_AGE_HEADER = "X-Continuum-Launcher-Age"
#: a launcher age beyond this is not believed (a clock or a client gone wrong)
MAX_LAUNCHER_AGE = 600.0


def parse_launcher_age(value: str | None) -> float | None:
    """The launcher's age from :data:`LAUNCHER_AGE_HEADER`: a finite number of seconds in
    ``[0, MAX_LAUNCHER_AGE]``, else ``None`` (the header is informational; nothing fails)."""
    if not value or len(value) > 20:
        return None
    try:
        age = float(value)
    except ValueError:
        return None
    return age if math.isfinite(age) and 0 <= age <= MAX_LAUNCHER_AGE else None


class SpawnPhases:
    """The phases of one spawn, in seconds of ``clock`` (wall-clock epoch seconds).

    Parameters
    ----------
    began
        When the spawn began.
    clock
        Returns the time now; replaceable in tests.
    """

    def __init__(self, began: float, clock: Callable[[], float] = time.time) -> None:
        self.began = began
        self.clock = clock
        self.marks: dict[str, float] = {}

    def mark(self, phase: str, at: float | None = None) -> None:
        """Record ``phase`` now (or ``at``); the first mark of a phase counts (a requeued job's
        rerun reports its port again)."""
        if phase not in PHASES:
            raise ValueError(f"unknown spawn phase {phase!r}")
        self.marks.setdefault(phase, self.clock() if at is None else at)

    def offsets(self) -> dict[str, float]:
        """Seconds since the spawn began of each phase marked, in :data:`PHASES` order."""
        return {p: self.marks[p] - self.began for p in PHASES if p in self.marks}

    def durations(self) -> dict[str, float]:
        """Each phase's own duration: from the latest phase marked before it (or the spawn's
        beginning), never negative."""
        durations: dict[str, float] = {}
        previous = self.began
        for phase, at in sorted(self.marks.items(), key=lambda item: item[1]):
            durations[phase] = max(0.0, at - previous)
            previous = at
        return {p: durations[p] for p in PHASES if p in durations}

    def line(self, user: str, site: str, job: str) -> str:
        """The log line: ``spawn phases user=… site=… job=… validated=0.01 sbatch=0.40 …``."""
        offsets = " ".join(f"{phase}={at:.2f}" for phase, at in self.offsets().items())
        return f"spawn phases user={user} site={site} job={job or '-'} {offsets}"

    def observe(self, site: str) -> None:
        """Add each phase's duration to the ``continuum_spawn_phase_seconds`` histogram."""
        for phase, seconds in self.durations().items():
            SPAWN_PHASE.labels(site=site, phase=phase).observe(seconds)


class SpawnPhasesMixin(HasTraits):
    """The spawner's side: marks the phases it sees and, once the proxy route is added, logs
    the line and observes the histogram.

    The spawner marks ``validated``, ``sbatch`` and ``running`` itself (it creates
    :attr:`phases` in ``start()``); ``port`` is marked when the port trait is set,
    ``launcher`` by the port report's handler (:meth:`launcher_reported`), ``answering`` and
    ``proxy`` from JupyterHub's ``_proxy_pending`` flag.  (A ``HasTraits`` so that its
    ``@observe`` handler is bound.)
    """

    #: the phases of the spawn in progress (None outside a spawn)
    phases: SpawnPhases | None = None
    _proxy_flag = False
    # provided by the spawner
    log: Any
    user: Any
    request: Any
    job_id: str
    server: Any

    def _spawn_began(self) -> float:
        """When the hub began this spawn (``orm_spawner.started``, set before the options are
        applied), as epoch seconds; now when unknown."""
        started = getattr(getattr(self, "orm_spawner", None), "started", None)
        if started is None:
            return time.time()
        return float(started.replace(tzinfo=UTC).timestamp())

    @observe("port")
    def _port_reported(self, change: dict[str, Any]) -> None:
        if change["new"] and self.phases is not None:
            self.phases.mark("port")

    def launcher_reported(self, age_header: str | None) -> None:
        """The port report's launcher age (seconds from the launcher's start to the report):
        marks the ``launcher`` phase; a missing or odd header marks nothing."""
        age = parse_launcher_age(age_header)
        if age is not None and self.phases is not None:
            self.phases.mark("launcher", time.time() - age)

    # JupyterHub sets ``_proxy_pending`` right after the server answered (the spawn future
    # resolved) and clears it once the route is added: the two phases only the hub sees, with
    # no log parsing.  A property keeps the base class's plain attribute working.
    @property
    def _proxy_pending(self) -> bool:
        return self._proxy_flag

    @_proxy_pending.setter
    def _proxy_pending(self, value: bool) -> None:
        self._proxy_flag = value
        phases = self.phases
        if phases is None:
            return
        if value:
            phases.mark("answering")
        elif "answering" in phases.marks and self.server is not None:
            phases.mark("proxy")
            site = self.request.site if self.request is not None else "?"
            self.log.info("%s", phases.line(self.user.name, site, self.job_id))
            phases.observe(site)
            self.phases = None
