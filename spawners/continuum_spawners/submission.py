"""A server's job on its way to the site and away: environment, script, resources, sbatch, scancel.

:class:`SubmissionMixin` is part of :class:`~continuum_spawners.spawner.SiteSpawner`.  The job
script is a fixed text whose only variable part is the shell-quoted launcher command
(:func:`~continuum_spawners.jobs.render_job_script`); resources go on the ``sbatch`` command
line as validated integers and names (:func:`~continuum_spawners.jobs.build_job_spec`), and
secrets (the server's API token) travel in the environment only.  Commands are the site
adapter's argument lists, run by the site's transport as the user's account there
(:mod:`continuum_spawners.schedulers`).
"""

from __future__ import annotations

import os
import shlex
import time
from pathlib import Path
from typing import Any

from tornado import web

from .jobs import build_job_spec, chosen_environment, job_environment, render_job_script
from .options import JobRequest
from .schedulers import adapter_for, transport_for
from .schedulers.base import JobSpec
from .schedulers.transport import Transport
from .sites import Environment, Site

# environment of the job beyond what JupyterHub provides
JOB_ENV_KEEP = ("LANG", "LC_ALL")


class SubmissionMixin:
    """Environment, script, resources, submission and cancellation of a server's job, for
    :class:`~continuum_spawners.spawner.SiteSpawner` (see the module)."""

    # provided by SiteSpawner (traits and state), its other mixins and JupyterHub's Spawner
    launcher: list[str]
    command_timeout: float
    job_name: str
    request: JobRequest | None
    site: Site
    site_account: str
    job_id: str
    starting: bool
    phases: Any
    cmd: list[str]
    user: Any
    log: Any
    _log_name: str
    _submitted_at: float | None
    unix_account: Any
    get_args: Any
    event_reservation: Any
    save_state_now: Any
    _record_usage: Any

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
