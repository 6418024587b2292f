"""What the hub checks and notes around a server's submission, beside the job itself.

:class:`AdmissionMixin` is part of :class:`~continuum_spawners.spawner.SiteSpawner`:

* **budget** — a server whose maximum use (cores × walltime) would pass the user's or their
  VO's monthly budget is refused with 403 before anything is submitted
  (:mod:`continuum_spawners.budgets`);
* **reservation** — a participant of a running workshop event starts inside the event's
  scheduler reservation (``SiteSpawner.reservation_hook``, set by the workshops' configuration);
* **usage** — a submitted job is noted in the usage ledger, where the hub's collector later
  finds its accounted use (:mod:`continuum_spawners.ledger`; a failure is only logged).
"""

from __future__ import annotations

import asyncio
import inspect
from datetime import UTC, datetime
from typing import Any

from tornado import web

from . import ledger
from .budgets import BudgetExceeded, enforce
from .estimates import budget_request
from .options import JobRequest
from .schedulers.base import JobSpec
from .sites import Site


class AdmissionMixin:
    """Budget, reservation and usage ledger of :class:`~continuum_spawners.spawner.SiteSpawner`."""

    # provided by SiteSpawner and JupyterHub's Spawner
    reservation_hook: Any
    site: Site
    user: Any
    user_groups: list[str]
    job_id: str
    name: str
    log: Any
    _log_name: str
    load_registry: Any

    def check_budget(self, request: JobRequest) -> None:
        """Refuse (403, with what is left, when it resets and whom to ask) a server whose
        maximum use would pass the user's or their VO's monthly budget (:mod:`.budgets`)."""
        wanted = budget_request(self.site, request)
        try:
            enforce(self.load_registry(), self.user.name, self.user_groups, wanted, "server")
        except BudgetExceeded as exc:
            self.log.warning("Refused %s on %s: budget (%s)", self._log_name, wanted.site.name, exc)
            raise web.HTTPError(403, exc.message) from None

    async def event_reservation(self, site: Site) -> str | None:
        """The reservation this server's job runs in (``reservation_hook``), or ``None``."""
        if self.reservation_hook is None:
            return None
        name = self.reservation_hook(self, site)
        if inspect.isawaitable(name):
            name = await name
        return name or None

    def _record_usage(self, site: Site, spec: JobSpec) -> None:
        """Note the submitted job in the usage ledger (a failure is only logged).

        The write (a synced SQLite commit, or a PostgreSQL round trip) runs in a thread: in the
        hub's event loop it took 6 % of the loop's time in the 200-user storm.
        """
        job = ledger.UsageJob(
            site=site.name,
            job_id=self.job_id,
            kind="server",
            label=self.name,
            user=self.user.name,
            vo=ledger.vo_for(site, self.user_groups),
            partition=spec.partition,
            submitted_at=datetime.now(UTC),
            req_cores=spec.cores,
            req_gpus=spec.gpus,
            req_memory_gb=float(spec.memory_gb),
            req_walltime_minutes=spec.walltime_minutes,
        )
        asyncio.get_running_loop().run_in_executor(None, ledger.record_submission, job, self.log)
