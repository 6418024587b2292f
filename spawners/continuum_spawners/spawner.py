"""``continuum-site``: start a user's JupyterLab as a batch job on the site they choose.

Built on batchspawner's ``BatchSpawnerBase`` for its lifecycle (submit, wait for the job to run,
wait for the port report, poll, cancel) while replacing its shell-string mechanics:

* user options are validated into a :class:`~continuum_spawners.options.JobRequest` against the
  site registry and the user's groups (``apply_user_options``: 400/403 with a clear message);
* scheduler commands are argument lists from a :mod:`scheduler adapter
  <continuum_spawners.schedulers>`, run by a :mod:`transport <continuum_spawners.transport>` as
  the user's account at the site (:mod:`~continuum_spawners.accounts`: sites where the user has
  none are shown as unavailable and refused with 403);
* the job script is a fixed text whose only variable part is the shell-quoted launcher command;
  resources go on the ``sbatch`` command line as validated integers and names, and secrets
  (the server's API token) travel in the environment only.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import shlex
import sys
from collections.abc import AsyncIterator
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

from batchspawner import BatchSpawnerBase
from batchspawner import JobStatus as BatchJobStatus
from tornado import web
from traitlets import Float, List, Type, Unicode, default

from . import api
from .accounts import AccountResolver, NoAccountError, checked_passwd, shared_resolver
from .estimates import EstimatesMixin
from .form import render_form
from .jobs import (
    build_job_spec,
    iso_utc,
    job_environment,
    parse_start_time,
    render_job_script,
)
from .monitor import SiteMonitor
from .options import (
    SOONEST,
    JobRequest,
    OptionsError,
    options_from_form,
    validate_options,
)
from .schedulers.base import JobSpec, JobState, JobStatus, SchedulerAdapter
from .schedulers.slurm import SlurmAdapter
from .sites import Environment, Site, SiteRegistry, format_walltime
from .transport import Transport, transport_for

ADAPTERS: dict[str, type[SchedulerAdapter]] = {"slurm": SlurmAdapter}
# environment of the job beyond what JupyterHub provides
JOB_ENV_KEEP = ("LANG", "LC_ALL")


class SiteSpawner(EstimatesMixin, BatchSpawnerBase):
    """Spawn single-user servers as batch jobs on the sites of the registry."""

    registry_path = Unicode(
        config=True,
        help="""Path of the site registry (YAML); see ``continuum_spawners.sites``.

        Read at first use and again whenever the file changes.
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
        AccountResolver,
        klass=AccountResolver,
        config=True,
        help="""Maps hub usernames to POSIX accounts per site (class or import string).

        The default runs everything as the hub username.  The hub's configuration sets
        ``continuum_hub.account_map.AccountMapper``, which applies each site's
        ``user_accounts`` policy (pattern, map file, pool) of the registry.
        """,
    )

    _registry_cache: ClassVar[dict[str, tuple[float, SiteRegistry]]] = {}
    _monitors: ClassVar[dict[tuple[Any, ...], SiteMonitor]] = {}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.request: JobRequest | None = None
        self.status: JobStatus | None = None
        # kept across clear_state(), for the message when a job dies while starting
        self.last_status: JobStatus | None = None
        # the scheduler put the running job back in the queue; its rerun reports a new port
        self.requeued = False
        # the account the job was submitted as, kept for status and cancel
        self.site_account = ""

    # -- registry and options ----------------------------------------------------------------

    @property
    def registry(self) -> SiteRegistry:
        """The site registry, reloaded when its file changes."""
        if not self.registry_path:
            raise RuntimeError("SiteSpawner.registry_path is not set")
        mtime = os.stat(self.registry_path).st_mtime
        cached = self._registry_cache.get(self.registry_path)
        if cached is None or cached[0] != mtime:
            cached = (mtime, SiteRegistry.from_file(self.registry_path))
            self._registry_cache[self.registry_path] = cached
        return cached[1]

    @property
    def user_groups(self) -> list[str]:
        return [group.name for group in self.user.groups]

    @property
    def accounts(self) -> AccountResolver:
        """The hub-wide account resolver."""
        return shared_resolver(self.account_resolver_class, self.config, log=self.log)

    def unavailable_sites(self) -> dict[str, str]:
        """Sites the user's groups allow but where they have no account: name → message."""
        sites = self.registry.for_groups(self.user_groups)
        return self.accounts.unavailable(self.user.name, sites)

    def check_options(self, options: dict[str, Any]) -> JobRequest:
        """:func:`validate_options` for this user: their groups, and sites they have accounts at."""
        unavailable = self.unavailable_sites()
        return validate_options(options, self.registry, self.user_groups, unavailable)

    @default("options_form")
    def _options_form_default(self):  # type: ignore[no-untyped-def]
        return type(self)._render_options_form

    def _render_options_form(self) -> str:
        last = None
        if self.user_options:
            try:
                last = self.check_options(self.user_options)
            except OptionsError:
                last = None  # the old choice is no longer allowed: offer the defaults
        sites = self.registry.for_groups(self.user_groups)
        return render_form(sites, last, self.unavailable_sites())

    def options_from_form(self, form_data: dict[str, list[str]]) -> dict[str, Any]:
        try:
            options = options_from_form(form_data)
            # check now so that the form is shown again with the message
            self.check_options(options)
        except OptionsError as exc:
            raise web.HTTPError(exc.status, str(exc)) from None
        return options

    @default("apply_user_options")
    def _apply_user_options_default(self):  # type: ignore[no-untyped-def]
        return type(self)._apply_options

    def _apply_options(self, user_options: dict[str, Any]) -> None:
        try:
            self.request = self.check_options(user_options or {})
        except OptionsError as exc:
            self.log.warning("Refused options of %s: %s", self._log_name, exc)
            raise web.HTTPError(exc.status, str(exc)) from None

    # -- pieces of a submission ----------------------------------------------------------------

    @property
    def site(self) -> Site:
        if self.request is None:
            raise RuntimeError("no validated request")
        site = self.registry.get(self.request.site)
        if site is None:
            raise RuntimeError(f"site {self.request.site!r} is no longer in the registry")
        return site

    def adapter(self, site: Site) -> SchedulerAdapter:
        return ADAPTERS[site.scheduler]()

    def monitor(self, site: Site) -> SiteMonitor:
        """The hub-wide status monitor of ``site`` (a new one if its connection changed)."""
        key = (site.name, site.scheduler, site.ssh, tuple(sorted(site.env.items())))
        monitor = self._monitors.get(key)
        if monitor is None:
            monitor = SiteMonitor(site.name, self.adapter(site), self.transport(site))
            self._monitors[key] = monitor
        return monitor

    def transport(self, site: Site) -> Transport:
        """How ``site``'s commands run: locally through sudo, or over SSH on its login node."""
        return transport_for(site, timeout=self.command_timeout)

    def unix_account(self, site: Site | None = None, allocate: bool = False) -> pwd.struct_passwd:
        """The user's POSIX account at ``site`` (default: the job's, as submitted); 403 with a
        clear message if there is none."""
        try:
            if site is None and self.site_account:
                return checked_passwd(self.site_account)
            name = self.accounts.require(self.user.name, site or self.site, allocate=allocate)
            return checked_passwd(name)
        except NoAccountError as exc:
            raise web.HTTPError(403, str(exc)) from None

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
        site = self.site
        chosen = site.environment(self.request.environment) if self.request else None
        return chosen or site.default_environment

    def job_script(self) -> str:
        environment = self.software_environment
        launcher = [environment.launcher] if environment.launcher else self.launcher
        return render_job_script([*launcher, *self.cmd, *self.get_args()], environment.modules)

    def job_spec(self, env_names: list[str]) -> JobSpec:
        assert self.request is not None
        return build_job_spec(
            self.site, self.request, self.unix_account().pw_dir, self.job_name, env_names
        )

    # -- batchspawner hooks ----------------------------------------------------------------------

    async def run_command(self, cmd, input=None, env=None):  # type: ignore[no-untyped-def]
        raise NotImplementedError("SiteSpawner never runs shell strings")

    async def start(self) -> tuple[str, int]:  # type: ignore[override]
        if not api.is_installed():
            raise web.HTTPError(
                500,
                "the safe port-report handler is not installed; see continuum_spawners.api",
            )
        if self.request is None:
            self._apply_options(self.user_options)
        assert self.request is not None
        if self.request.site == SOONEST:
            (choice, estimate), *_ = await self.soonest(self.request)
            self.log.info(
                "%s: soonest start on %s/%s (%s)",
                self._log_name,
                choice.site,
                choice.partition,
                iso_utc(estimate.start) or estimate.message,
            )
            self.request = choice
        self.site_account = self.unix_account(self.site, allocate=True).pw_name
        self.status = self.last_status = None
        try:
            return await super().start()
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

    async def submit_batch_script(self) -> str:
        site = self.site
        env = self.get_env()
        spec = self.job_spec(sorted(env))
        argv = self.adapter(site).submit_argv(spec)
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
        self.job_id = self.adapter(site).parse_submit(result.stdout)
        self.log.info("Submitted job %s on %s for %s", self.job_id, site.name, self._log_name)
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
        """``None`` while the job is queued, running or unknown (scheduler down), else 1."""
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
        argv = self.adapter(site).cancel_argv([self.job_id])
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
        request = state.get("request")
        if request:
            try:
                self.request = JobRequest(**request)
            except TypeError:
                self.log.warning("Ignoring unreadable saved request of %s", self._log_name)

    def get_state(self) -> dict[str, Any]:
        state = super().get_state()
        if self.job_id and self.request is not None:
            state["request"] = asdict(self.request)
            state["account"] = self.site_account
        return state

    def clear_state(self) -> None:
        site = self.registry.get(self.request.site) if self.request else None
        if self.job_id and site is not None:
            self.monitor(site).forget(self.job_id)
        super().clear_state()
        self.status = None
        self.site_account = ""

    # -- job facts for the Lab ---------------------------------------------------------------------

    def job_info(self) -> dict[str, Any]:
        """The server's job as the hub sees it (``GET /hub/api/continuum/job``)."""
        request, status = self.request, self.status
        site = self.registry.get(request.site) if request else None
        start = end = None
        if status is not None and status.state is JobState.RUNNING:
            start = parse_start_time(status.start_time)
        if start is not None and request is not None:
            end = start + timedelta(minutes=request.walltime_minutes)
        remaining = None
        if end is not None:
            remaining = max(0, int((end - datetime.now(UTC)).total_seconds()))
        return {
            "site": request.site if request else None,
            "site_label": site.label if site else None,
            "partition": request.partition if request else None,
            "job_id": self.job_id or None,
            "state": status.state.value if status else "unknown",
            "node": status.node if status and status.node else None,
            "cores": request.cores if request else None,
            "memory_gb": request.memory_gb if request else None,
            "gpus": request.gpus if request else None,
            "walltime_minutes": request.walltime_minutes if request else None,
            "environment": self.software_environment.label if request and site else None,
            "start_time": iso_utc(start),
            "end_time": iso_utc(end),
            "remaining_seconds": remaining,
        }

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
        site = self.site.label
        request = self.request
        if not self.job_id:
            return (
                f"Submitting to {site}, partition {request.partition} "
                f"({request.cores} cores, {request.memory_gb} GB, "
                f"{format_walltime(request.walltime_minutes)} h)…"
            )
        status = self.status
        if status is None:
            return f"Job {self.job_id} submitted to {site}"
        if status.state is JobState.PENDING:
            reason = f" ({status.reason})" if status.reason else ""
            start = f", expected start {status.start_time}" if status.start_time else ""
            return f"Job {self.job_id} waiting in the queue of {site}{reason}{start}"
        if status.state is JobState.RUNNING:
            node = f" on node {status.node}" if status.node else ""
            return f"Job {self.job_id} running{node} at {site}; JupyterLab is starting…"
        if status.state is JobState.UNKNOWN:
            return f"Job {self.job_id}: the scheduler of {site} is not answering, retrying…"
        return f"Job {self.job_id} has ended ({status.raw_state or 'gone'})"
