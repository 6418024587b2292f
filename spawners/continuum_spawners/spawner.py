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
import os
import shlex
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from batchspawner import BatchSpawnerBase
from batchspawner import JobStatus as BatchJobStatus
from tornado import web
from traitlets import Callable, Float, List, Type, Unicode, default

from . import api
from .account_map import AccountMapper
from .accounts import AccountResolver
from .admission import AdmissionMixin
from .choices import ChoicesMixin
from .estimates import EstimatesMixin
from .job_end_handler import forget_end
from .jobs import (
    build_job_spec,
    chosen_environment,
    iso_utc,
    job_environment,
    job_info,
    progress_message,
    render_job_script,
)
from .locality import reason
from .metrics import QUEUE_WAIT, SPAWN_DURATION
from .options import SOONEST, JobRequest, OptionsError
from .phases import SpawnPhases, SpawnPhasesMixin
from .schedulers import adapter_for, monitor_for, transport_for
from .schedulers.base import JobSpec, JobState, JobStatus
from .schedulers.monitor import SiteMonitor
from .schedulers.transport import Transport
from .sites import Environment, Site
from .startup import StartupMixin

# environment of the job beyond what JupyterHub provides
JOB_ENV_KEEP = ("LANG", "LC_ALL")


class SiteSpawner(
    StartupMixin, SpawnPhasesMixin, ChoicesMixin, EstimatesMixin, AdmissionMixin, BatchSpawnerBase
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
        0.2,
        config=True,
        help="Seconds between status queries while a server's job is starting.",
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

    # -- pieces of a submission ----------------------------------------------------------------

    def monitor(self, site: Site) -> SiteMonitor:
        """The shared status monitor of ``site`` (:func:`~.schedulers.monitor_for`)."""
        return monitor_for(site, timeout=self.command_timeout)

    def transport(self, site: Site) -> Transport:
        """How ``site``'s commands run (:func:`~.schedulers.transport_for`)."""
        return transport_for(site, timeout=self.command_timeout)

    def get_env(self) -> dict[str, str]:
        env = super().get_env()
        account = self.unix_account()
        site = self.site
        env.update(
            HOME=account.pw_dir,
            USER=account.pw_name,
            LOGNAME=account.pw_name,
            SHELL=account.pw_shell or "/bin/bash",
            PATH=f"{Path(self.launcher[0]).parent}:/usr/local/bin:/usr/bin:/bin",
            CONTINUUM_BIND_IP=site.bind_address or "0.0.0.0",  # noqa: S104 - compute node
            **job_environment(site, self.request),
        )
        for key in JOB_ENV_KEEP:
            if key in os.environ:
                env[key] = os.environ[key]
        return env

    @property
    def software_environment(self) -> Environment:
        """The chosen software environment of the request's site.

        (Not ``environment``: that is JupyterHub's trait for extra environment variables.)
        """
        return chosen_environment(self.site, self.request)

    def job_script(self) -> str:
        environment = self.software_environment
        launcher = [environment.launcher] if environment.launcher else self.launcher
        return render_job_script([*launcher, *self.cmd, *self.get_args()], environment.modules)

    def job_spec(self, env_names: list[str], reservation: str | None = None) -> JobSpec:
        assert self.request is not None
        home = self.unix_account().pw_dir
        return build_job_spec(self.site, self.request, home, self.job_name, env_names, reservation)

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

    async def submit_batch_script(self) -> str:
        site = self.site
        env = self.get_env()
        spec = self.job_spec(sorted(env), await self.event_reservation(site))
        adapter = adapter_for(site)
        argv = adapter.submit_argv(spec)
        account = self.unix_account().pw_name
        self.log.info(
            "Submitting %s on site %s as %s: %s",
            self._log_name,
            site.name,
            account,
            shlex.join(argv),
        )
        result = await self.transport(site).run(
            argv, user=account, env=env, stdin=self.job_script()
        )
        if result.returncode != 0:
            message = result.stderr.strip() or result.stdout.strip()
            self.log.error("Submission on %s refused: %s", site.name, message)
            raise web.HTTPError(500, f"site {site.name} refused the job: {message[:300]}")
        self.job_id = adapter.parse_submit(result.stdout)
        self._submitted_at = time.monotonic()
        if self.phases is not None:
            self.phases.mark("sbatch")
        self.log.info("Submitted job %s on %s for %s", self.job_id, site.name, self._log_name)
        # saved now, not when start() returns: a hub restarted meanwhile must find the job
        self.starting = True
        self.save_state_now()
        self._record_usage(site, spec)
        return self.job_id

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

    async def cancel_batch_job(self) -> None:
        if not self.job_id or self.request is None:
            return
        site = self.site
        argv = adapter_for(site).cancel_argv([self.job_id])
        self.log.info("Cancelling job %s on %s for %s", self.job_id, site.name, self._log_name)
        # jobs saved before accounts were mapped ran as the hub username
        result = await self.transport(site).run(argv, user=self.site_account or self.user.name)
        if result.returncode != 0:
            self.log.warning("scancel %s on %s: %s", self.job_id, site.name, result.stderr.strip())

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

    # -- state -----------------------------------------------------------------------------------

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
