"""``continuum-site``: start a user's JupyterLab as a batch job on the site they choose.

Built on batchspawner's ``BatchSpawnerBase`` for its lifecycle (submit, wait for the job to run,
wait for the port report, poll, cancel) while replacing its shell-string mechanics:

* user options are validated once into a :class:`~continuum_spawners.options.JobRequest`
  against the site registry and the user's groups (400/403 with a clear message), which carries
  the registry's site and partition from then on (:mod:`~continuum_spawners.choices`);
* scheduler commands are argument lists from the site's adapter, run by its transport as the
  user's account at the site, and status comes from the site's shared monitor — all through
  :mod:`continuum_spawners.schedulers` (``adapter_for``, ``transport_for``, ``monitor_for``);
  accounts come from :mod:`~continuum_spawners.account_map` (sites where the user has none are
  shown as unavailable and refused with 403);
* the job's environment, script, resources, submission and cancellation are in
  :mod:`~continuum_spawners.submission`; its status, polls and saved state in
  :mod:`~continuum_spawners.tracking`;
* budgets, workshop reservations and the usage ledger around the submission are in
  :mod:`~continuum_spawners.admission`;
* the start follows the job until its port report and saves the job id at once
  (:mod:`~continuum_spawners.startup`); each phase of a spawn is timed
  (:mod:`~continuum_spawners.phases`);
* the job script is a fixed text whose only variable part is the shell-quoted launcher command;
  resources go on the ``sbatch`` command line as validated integers and names, and secrets
  (the server's API token) travel in the environment only.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from batchspawner import BatchSpawnerBase
from tornado import web
from traitlets import Callable, Float, List, Type, Unicode, default

from . import api
from .account_map import AccountMapper
from .accounts import AccountResolver
from .admission import AdmissionMixin
from .choices import ChoicesMixin
from .estimates import EstimatesMixin
from .job_end_handler import forget_end
from .jobs import iso_utc, job_info, progress_message
from .locality import reason
from .metrics import SPAWN_DURATION
from .options import SOONEST, JobRequest, OptionsError
from .phases import SpawnPhases, SpawnPhasesMixin
from .schedulers import monitor_for
from .schedulers.base import JobStatus
from .schedulers.monitor import SiteMonitor
from .sites import Site
from .startup import StartupMixin
from .submission import SubmissionMixin
from .tracking import TrackingMixin


class SiteSpawner(
    StartupMixin,
    SpawnPhasesMixin,
    ChoicesMixin,
    EstimatesMixin,
    AdmissionMixin,
    SubmissionMixin,
    TrackingMixin,
    BatchSpawnerBase,
):
    """Spawn single-user servers as batch jobs on the sites of the registry."""

    registry_path = Unicode(
        config=True,
        help="""Path of the site registry (YAML); see ``continuum_spawners.sites``.

        Read at first use and again when the file changes (see ``registry_check_interval``).
        """,
    )

    registry_check_interval = Float(
        10.0,
        config=True,
        help="""Seconds between looks at whether the registry file changed (its modification
        time), for estimates and other reads.  Spawns and the spawn form always look; a running
        server keeps the site and partition it was started with.
        """,
    )

    launcher = List(
        Unicode(),
        config=True,
        help="""Command that starts the server inside the job.

        Defaults to ``continuum-singleuser`` of the hub's Python environment, which reports the
        server's port to the hub and then runs ``Spawner.cmd``.  Its path must exist on the
        site's compute nodes and be readable by the users.
        """,
    )

    @default("launcher")
    def _launcher_default(self) -> list[str]:
        return [str(Path(sys.prefix) / "bin" / "continuum-singleuser")]

    command_timeout = Float(
        60.0,
        config=True,
        help="Seconds after which a scheduler command (sbatch, squeue, scancel) is killed.",
    )

    job_name = Unicode(
        "jupyterlab",
        config=True,
        help="Name given to server jobs in the scheduler (letters, digits, '-', '_').",
    )

    # batchspawner's shell-string traits are unused; ``run_command`` refuses to run them.
    exec_prefix = Unicode("")
    startup_poll_interval = Float(
        1.0,
        config=True,
        help="""Seconds between a site's status queries while jobs start: one query for all
        the site's starting jobs (``continuum_spawners.startup``); the port report ends a
        wait at once.""",
    )

    status_interval = Float(
        30.0,
        config=True,
        help="""Seconds a site's batched status answer is reused for polls of running servers.

        All servers of a site share one status query (``squeue``) per interval; set it no lower
        than ``Spawner.poll_interval`` unless the site can take more queries.
        """,
    )

    account_resolver_class = Type(
        AccountMapper,
        klass=AccountResolver,
        config=True,
        help="""Maps hub usernames to POSIX accounts per site (class or import string).

        The default, ``continuum_spawners.account_map.AccountMapper``, applies each site's
        ``user_accounts`` policy (pattern, map file, pool) of the registry; sites without one
        follow ``AccountMapper.default_policy`` (the hub username).
        """,
    )

    reservation_hook = Callable(
        None,
        allow_none=True,
        config=True,
        help="""Names the scheduler reservation a server's job runs in, or ``None``.

        Called as ``hook(spawner, site)`` right before the submission (the request and the
        account are known); may return an awaitable.  Set by the workshops' configuration
        (``continuum_hub.workshops.add_workshops``): a participant of a running event starts in
        the event's reservation.  Default ``None``: no reservation.
        """,
    )

    event_options_hook = Callable(
        None,
        allow_none=True,
        config=True,
        help="""Checks a server's options before the user's own groups do, or ``None``.

        Called as ``hook(spawner, options, registry)``; returns a ``JobRequest`` (the options
        are a profile of a running workshop event the user takes part in), ``None`` (check as
        usual) or raises ``OptionsError``.  Set by the workshops' configuration
        (``continuum_hub.workshops.profiles.event_request``).  Default ``None``.
        """,
    )

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.request: JobRequest | None = None
        self.status: JobStatus | None = None
        # kept across clear_state(), for the message when a job dies while starting
        self.last_status: JobStatus | None = None
        # the scheduler put the running job back in the queue; its rerun reports a new port
        self.requeued = False
        # when the job was submitted (monotonic), until it runs: its queue wait for the metrics
        self._submitted_at: float | None = None
        # the account the job was submitted as, kept for status and cancel
        self.site_account = ""
        # why a ``soonest`` request went where it did (shown while the job starts)
        self.placement_reason = ""

    @default("options_form")
    def _options_form_default(self):  # type: ignore[no-untyped-def]
        return type(self)._render_options_form

    @default("apply_user_options")
    def _apply_user_options_default(self):  # type: ignore[no-untyped-def]
        return type(self)._apply_options

    # -- the site's shared monitor ---------------------------------------------------------------

    def monitor(self, site: Site) -> SiteMonitor:
        """The shared status monitor of ``site`` (:func:`~.schedulers.monitor_for`)."""
        return monitor_for(site, timeout=self.command_timeout)

    # -- batchspawner hooks ----------------------------------------------------------------------

    async def run_command(self, cmd, input=None, env=None):  # type: ignore[no-untyped-def]
        raise NotImplementedError("SiteSpawner never runs shell strings")

    async def start(self) -> tuple[str, int]:  # type: ignore[override]
        if not api.is_installed():
            raise web.HTTPError(
                500,
                "the safe port-report handler is not installed; see continuum_spawners.api",
            )
        forget_end(self.user.name, self.name)  # a new job: why the last one ended is old news
        self.phases = SpawnPhases(self._spawn_began())
        if self.request is None:
            self._apply_options(self.user_options)
        assert self.request is not None
        if self.request.site == SOONEST:
            try:
                (choice, estimate), *_ = await self.soonest(self.request)
            except OptionsError as exc:  # e.g. no fitting site holds the data any more
                raise web.HTTPError(exc.status, str(exc)) from None
            self.placement_reason = reason(
                choice.site, estimate, choice.data_sites, choice.transfer
            )
            self.log.info(
                "%s: soonest start on %s/%s (%s; %s)",
                self._log_name,
                choice.site,
                choice.partition,
                iso_utc(estimate.start) or estimate.message,
                self.placement_reason,
            )
            self.request = choice
        self.check_budget(self.request)
        self.site_account = self.unix_account(self.site, allocate=True).pw_name
        self.status = self.last_status = None
        self.phases.mark("validated")
        started = time.monotonic()
        outcome = "failure"
        try:
            address = await self.start_job()
            outcome = "success"
            self.starting = False  # JupyterHub saves the state once start() returns
            return address
        except RuntimeError as exc:
            # batchspawner clears the job's state before raising and does not say where to look
            last = self.last_status
            if last is None:
                raise
            detail = f"{last.raw_state} {last.reason}".strip()
            raise RuntimeError(
                f"Your server's job {last.job_id} on site {self.request.site} ended before "
                f"JupyterLab started ({detail or 'no reason given'}). Its output is in "
                f"~/.continuum-{self.job_name}-{last.job_id}.log on that site."
            ) from exc
        finally:
            SPAWN_DURATION.labels(
                site=self.request.site, partition=self.request.partition, outcome=outcome
            ).observe(time.monotonic() - started)

    # -- job facts for the Lab ---------------------------------------------------------------------

    def job_info(self) -> dict[str, Any]:
        """The server's job as the hub sees it (``GET /hub/api/continuum/job``)."""
        return job_info(self.request, self.known_site(), self.job_id, self.status)

    # -- progress --------------------------------------------------------------------------------

    async def progress(self) -> AsyncIterator[dict[str, Any]]:  # type: ignore[override]
        last = ""
        while True:
            message = self._progress_message()
            if message != last:
                last = message
                yield {"message": message}
            if self.port and self.state_isrunning():
                return
            await asyncio.sleep(self.startup_poll_interval)

    def _progress_message(self) -> str:
        if self.request is None:
            return "Checking your choices…"
        message = progress_message(self.request, self.site.label, self.job_id, self.status)
        if self.placement_reason and not self.job_id:
            return f"Chosen {self.placement_reason}. {message}"
        return message
