"""Batch runs on a site: the run folder, the Slurm job (array), its status, its results.

The workflow service's manager decides *what* runs (a :class:`RunPlan`: validated resources,
the notebook snapshot, each member's parameters, the run's hub token); :class:`SiteExecutor`
makes it happen on the site through the one site-access path of the house
(:func:`~continuum_spawners.schedulers.adapter_for`, ``transport_for``, ``monitor_for``), as
the user's POSIX account:

1. :meth:`~SiteExecutor.prepare` runs ``continuum-workflow-run prepare FOLDER`` as the account,
   with the run's files as one JSON bundle on standard input (:mod:`.runfolder`): nothing the
   user wrote is on a command line, and the files are the account's own, 0600 in a 0700 folder;
2. :meth:`~SiteExecutor.submit` submits one job — a sweep is one job array
   (``--array=0-(N-1)%M``), a step after others on the same site waits for them
   (``--dependency=afterok:…``, cancelled by Slurm when one fails) — whose script is fixed text:
   the environment's modules, the token agent (when the run has a hub token), then
   ``exec continuum-workflow-run FOLDER``; the job's variables travel in the environment;
3. :meth:`~SiteExecutor.status` asks the site's shared monitor (one ``squeue`` per site per
   interval, array tasks as ``<id>_<i>``); a job gone from the queue is judged by what the
   runner wrote (:meth:`~SiteExecutor.report`, :func:`member_states`), not by the queue alone;
4. :meth:`~SiteExecutor.read_file` returns an executed notebook, the crate or a log, bounded.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import pwd
import re
import shlex
import sys
from collections.abc import AsyncIterator
from contextlib import suppress
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from continuum_spawners import ledger
from continuum_spawners.estimates import estimate_start
from continuum_spawners.impact import model_for
from continuum_spawners.jobs import build_job_spec, module_setup
from continuum_spawners.jobs import job_environment as site_facts
from continuum_spawners.options import JobRequest
from continuum_spawners.schedulers import adapter_for, monitor_for, transport_for
from continuum_spawners.schedulers.base import Estimate, JobState, JobStatus, SubmitError
from continuum_spawners.schedulers.transport import SAFE_PATH
from continuum_spawners.sites import Site

from ..workshops.usable import event_reservation
from .runfolder import BEARER_TOKEN, HUB_TOKEN

log = logging.getLogger(__name__)

RUN_ID = re.compile(r"^r-[0-9a-f]{6,32}$")
#: seconds a run folder's archive may take to stream (at least the executor's timeout)
ARCHIVE_SECONDS = 600.0

RUN_SCRIPT = """#!/bin/bash
# Batch run {run_id} of Continuum Hub: papermill executes the notebook snapshot in the run
# folder. Resources are on the sbatch command line; parameters and credentials are files in
# the run folder; nothing in this script comes from the run's submitter.
{setup}set -euo pipefail
umask 077
{agent}exec {command}
"""

#: why a member that the queue no longer lists, and that never wrote a status, did not run
NEVER_STARTED = "the job ended before the notebook started"
LOST = "the job ended while the notebook ran (walltime, node failure or cancel)"


@dataclass(frozen=True)
class RunPlan:
    """Everything the executor needs to run one attempt of a run (built by the manager)."""

    run_id: str
    owner: str
    account: str
    site: Site
    request: JobRequest
    notebook_name: str
    notebook: bytes
    parameters: list[dict[str, Any]]
    max_parallel: int | None = None
    outputs: list[str] = field(default_factory=list)
    inputs: list[dict[str, Any]] = field(default_factory=list)
    hub_token: str | None = None
    hub_api_url: str = ""
    depends_on_jobs: list[str] = field(default_factory=list)
    #: the owner's hub groups (the usage ledger's VO)
    groups: tuple[str, ...] = ()
    attempt: int = 1
    provenance: dict[str, Any] = field(default_factory=dict)


class SiteExecutor:
    """Runs :class:`RunPlan` s on their sites (see the module's docstring).

    Parameters
    ----------
    runs_root
        Where run folders go on a site: ``~/…`` is below the account's home there.
    runner_command
        ``continuum-workflow-run`` as the site's accounts run it; default: the one of this
        Python environment (``sys.prefix/bin``), which the accounts must be able to read.
    token_agent
        ``continuum-token-agent`` in jobs; default: the one of this environment.  Empty:
        runs get no ``BEARER_TOKEN_FILE``.
    status_max_age
        Seconds a site's batched status answer is reused.
    timeout
        Seconds after which a command on the site is killed.
    """

    def __init__(
        self,
        runs_root: str = "~/continuum-runs",
        runner_command: list[str] | None = None,
        token_agent: list[str] | None = None,
        status_max_age: float = 5.0,
        timeout: float = 60.0,
    ) -> None:
        bin_dir = os.path.join(sys.prefix, "bin")
        self.runs_root = runs_root.rstrip("/")
        self.runner_command = runner_command or [os.path.join(bin_dir, "continuum-workflow-run")]
        self.token_agent = (
            [os.path.join(bin_dir, "continuum-token-agent")] if token_agent is None else token_agent
        )
        self.status_max_age = status_max_age
        self.timeout = timeout
        # folders prepare made, by site and run id: the absolute path where runs_root names a
        # home (a run moved to another site has its folder there)
        self._prepared: dict[tuple[str, str], str] = {}

    # -- the folder ---------------------------------------------------------------------------

    def folder(self, plan: RunPlan) -> str:
        """The run folder on the site (absolute when the account's home is known here)."""
        if not RUN_ID.match(plan.run_id):
            raise ValueError(f"not a run id: {plan.run_id[:40]!r}")
        if (plan.site.name, plan.run_id) in self._prepared:
            return self._prepared[plan.site.name, plan.run_id]
        root = self.runs_root
        if root.startswith("~/") and plan.site.transport == "local":
            root = pwd.getpwnam(plan.account).pw_dir.rstrip("/") + root[1:]
        return f"{root}/{plan.run_id}"

    def run_json(self, plan: RunPlan) -> dict[str, Any]:
        """``run.json``'s facts for the job's provenance crate (no secret among them)."""
        request, site = plan.request, plan.site
        provenance = plan.provenance
        return {
            "run_id": plan.run_id,
            "name": provenance.get("name") or plan.notebook_name,
            "workflow": provenance.get("workflow") or provenance.get("workflow_id") or "",
            "step": provenance.get("step") or "",
            "source": provenance.get("source") or plan.notebook_name,
            "person": {
                "username": plan.owner,
                "name": provenance.get("person_name", ""),
                "orcid": provenance.get("orcid"),
            },
            "site": site.name,
            "partition": request.partition,
            "cores": request.cores,
            "memory_gb": request.memory_gb,
            "gpus": request.gpus,
            "walltime_minutes": request.walltime_minutes,
            "environment": request.environment or site.default_environment.name,
            # the impact model's figures (registry, codecarbon's data, defaults) for the crate
            "power": model_for(site).as_json(),
            "outputs": list(plan.outputs),
            "inputs": list(plan.inputs),
            "attempt": plan.attempt,
            "previous_attempts": list(provenance.get("previous_attempts") or []),
            "based_on": provenance.get("based_on"),
        }

    def bundle(self, plan: RunPlan) -> str:
        """The JSON bundle ``prepare`` reads on standard input."""
        return json.dumps(
            {
                "version": 1,
                "run": self.run_json(plan),
                "notebook": base64.b64encode(plan.notebook).decode(),
                "members": plan.parameters,
                "hub_token": plan.hub_token,
            }
        )

    async def _runner(self, site: Site, account: str, args: list[str], stdin: str | None = None):
        result = await transport_for(site, self.timeout).run(
            [*self.runner_command, *args], user=account, stdin=stdin
        )
        if result.returncode != 0:
            message = result.stderr.strip().splitlines()[-1:] or [f"exit {result.returncode}"]
            raise RuntimeError(f"site {site.name}: {message[0][:300]}")
        return result

    async def prepare(self, plan: RunPlan) -> str:
        """Create the run folder as the user (see :mod:`.runfolder`); its absolute path."""
        folder = self.folder(plan)
        result = await self._runner(
            plan.site, plan.account, ["prepare", folder], stdin=self.bundle(plan)
        )
        made = json.loads(result.stdout)["folder"]
        self._prepared[plan.site.name, plan.run_id] = made
        return made

    # -- the job ------------------------------------------------------------------------------

    def job_environment(self, plan: RunPlan, folder: str) -> dict[str, str]:
        """The job's whole environment (exported by name; values never on a command line)."""
        env = {
            "PATH": f"{os.path.dirname(self.runner_command[0])}:{SAFE_PATH}",
            **site_facts(plan.site, plan.request),
            "CONTINUUM_RUN_ID": plan.run_id,
            # the job's files (Slurm's logs included) are the user's alone
            "SLURM_UMASK": "0077",
            **plan.site.env,
        }
        if folder.startswith("/") and plan.site.transport == "local":
            env["HOME"] = pwd.getpwnam(plan.account).pw_dir
        if plan.hub_token and self.token_agent:
            env["BEARER_TOKEN_FILE"] = f"{folder}/{BEARER_TOKEN}"
            if plan.hub_api_url:
                env["JUPYTERHUB_API_URL"] = plan.hub_api_url
        return env

    def job_script(self, plan: RunPlan, folder: str) -> str:
        """The job script: fixed text; the modules, paths and commands in it are quoted."""
        environment = plan.site.environment(plan.request.environment)
        modules = (environment or plan.site.default_environment).modules
        agent = ""
        if plan.hub_token and self.token_agent:
            hub_token = shlex.quote(f"{folder}/{HUB_TOKEN}")
            command = [*self.token_agent, "--output", f"{folder}/{BEARER_TOKEN}"]
            # keeps BEARER_TOKEN_FILE fresh for as long as the job runs (Slurm ends it after)
            agent = (
                f"if [ -f {hub_token} ]; then\n"
                f"  {shlex.join(command)} --token-file {hub_token} &\nfi\n"
            )
        return RUN_SCRIPT.format(
            run_id=plan.run_id,
            setup=module_setup(modules),
            agent=agent,
            command=shlex.join([*self.runner_command, folder]),
        )

    def submit_argv_env(self, plan: RunPlan, folder: str) -> tuple[list[str], dict[str, str]]:
        """The ``sbatch`` argument list and the environment of ``plan``'s job."""
        env = self.job_environment(plan, folder)
        # a participant's run on their running event's partition goes into its reservation
        reservation = event_reservation(plan.request.partition_entry, plan.account)
        spec = build_job_spec(
            plan.site, plan.request, folder, f"cw-{plan.run_id}", sorted(env), reservation
        )
        members = len(plan.parameters)
        array = None
        if members > 1:
            array = f"0-{members - 1}" + (f"%{plan.max_parallel}" if plan.max_parallel else "")
        logs = f"{folder}/slurm-%A_%a" if array else f"{folder}/slurm-%j"
        spec = replace(
            spec,
            output=f"{logs}.out",
            error=f"{logs}.err",
            array=array,
            dependency=tuple(plan.depends_on_jobs),
        )
        return adapter_for(plan.site).submit_argv(spec), env

    async def submit(self, plan: RunPlan) -> str:
        """Submit the prepared run's job (array); its job id.

        Raises
        ------
        SubmitError
            The scheduler refused it (its message).
        """
        folder = self.folder(plan)
        argv, env = self.submit_argv_env(plan, folder)
        result = await transport_for(plan.site, self.timeout).run(
            argv, user=plan.account, env=env, stdin=self.job_script(plan, folder)
        )
        if result.returncode != 0:
            raise SubmitError(result.stderr.strip()[:300] or f"sbatch exited {result.returncode}")
        job_id = adapter_for(plan.site).parse_submit(result.stdout)
        self.record_usage(plan, job_id)
        return job_id

    def record_usage(self, plan: RunPlan, job_id: str) -> None:
        """Note the job (array) in the usage ledger (kind "batch"; a failure is only logged)."""
        request = plan.request
        usage = ledger.UsageJob(
            site=plan.site.name,
            job_id=job_id,
            kind="batch",
            label=plan.run_id,
            user=plan.owner,
            vo=ledger.vo_for(plan.site, plan.groups),
            partition=request.partition,
            submitted_at=datetime.now(UTC),
            # an array asks for its resources once per task
            req_cores=request.cores * len(plan.parameters),
            req_gpus=request.gpus * len(plan.parameters),
            req_memory_gb=float(request.memory_gb * len(plan.parameters)),
            req_walltime_minutes=request.walltime_minutes,
        )
        ledger.record_submission(usage, log)

    async def estimate(self, site: Site, account: str, request: JobRequest) -> Estimate:
        """When ``request`` would start on ``site`` now, asked as ``account`` (``sbatch
        --test-only``, :func:`~continuum_spawners.estimates.estimate_start`)."""
        workdir = "/tmp"  # noqa: S108 - never used: --test-only starts nothing
        if site.transport == "local":
            with suppress(KeyError):
                workdir = pwd.getpwnam(account).pw_dir
        transport = transport_for(site, self.timeout)
        return await estimate_start(site, request, account, workdir, "cw-estimate", transport)

    async def find_job(self, site: Site, account: str, run_id: str) -> str | None:
        """The job of run ``run_id`` the scheduler still lists (newest first), or ``None``: a
        service stopped between ``sbatch`` and recording the job id finds it again."""
        if not RUN_ID.match(run_id):
            raise ValueError(f"not a run id: {run_id[:40]!r}")
        result = await transport_for(site, self.timeout).run(
            adapter_for(site).find_name_argv(f"cw-{run_id}"), user=account
        )
        if result.returncode != 0:
            raise RuntimeError(f"site {site.name}: {result.stderr.strip()[:300]}")
        ids = {line.strip() for line in result.stdout.splitlines() if line.strip().isdigit()}
        return max(ids, key=int) if ids else None

    async def status(self, site: Site, job_ids: list[str]) -> dict[str, JobStatus]:
        """The jobs' status, array tasks as ``<id>_<i>``: one batched query per site."""
        return await monitor_for(site).statuses_for(list(job_ids), self.status_max_age)

    def forget(self, site: Site, job_ids: list[str]) -> None:
        """Leave ended jobs out of the site's batched status queries from now on."""
        monitor = monitor_for(site)
        for job_id in job_ids:
            monitor.forget(job_id)

    async def cancel(self, site: Site, account: str, job_ids: list[str]) -> None:
        """Cancel the jobs (all tasks of arrays) as ``account``; ended ones are no error."""
        result = await transport_for(site, self.timeout).run(
            adapter_for(site).cancel_argv(job_ids), user=account
        )
        if result.returncode != 0 and "Invalid job id" not in result.stderr:
            raise RuntimeError(f"site {site.name}: scancel failed: {result.stderr.strip()[:300]}")

    # -- results ------------------------------------------------------------------------------

    async def report(self, site: Site, account: str, folder: str) -> dict[str, Any]:
        """The members' ``status.json``, whether their notebooks and the crate exist."""
        result = await self._runner(site, account, ["report", folder])
        return json.loads(result.stdout)

    async def read_file(self, site: Site, account: str, folder: str, rel: str) -> bytes:
        """A result file of the run folder (executed notebook, crate, log), at most 32 MiB.

        Raises
        ------
        RuntimeError
            Not such a file, not there (yet), or too large (the runner's message).
        """
        result = await self._runner(site, account, ["cat", folder, rel])
        return result.stdout.encode()

    def archive(self, site: Site, account: str, folder: str) -> AsyncIterator[bytes]:
        """The run folder as a tar.gz, without credentials, in chunks as the site sends it
        (``continuum-workflow-run archive``, :mod:`.archive`); ``RuntimeError`` when refused."""
        from .archive import stream_command

        seconds = max(self.timeout, ARCHIVE_SECONDS)  # a large folder takes its time
        argv = [*self.runner_command, "archive", folder]
        return stream_command(transport_for(site, seconds), argv, account, seconds)


def member_states(
    report: dict[str, Any] | None, statuses: dict[str, JobStatus], job_id: str
) -> list[dict[str, Any]]:
    """Each member's state from the queue and, once its job left the queue, from its status.

    ``statuses`` is :meth:`SiteExecutor.status`'s answer; a sweep's member ``i`` is the task
    ``<job_id>_<i>``.  States: ``queued`` (with Slurm's reason), ``running`` (node, cell of
    cells), ``done``, ``failed`` (the failing cell and error, or why the job ended),
    ``cancelled`` (by the scheduler before it started, e.g. a failed dependency), ``unknown``
    (the scheduler did not answer).
    """
    members = (report or {}).get("members") or [{"index": 0, "status": None, "output": False}]
    single = len(members) == 1
    states = []
    for member in members:
        index = member["index"]
        written = member.get("status") or {}
        job = statuses.get(job_id if single else f"{job_id}_{index}")
        parent = statuses.get(job_id)
        if job is None and not single and not written and parent is not None:
            # a task not listed (yet) of an array that still waits, waits with it
            job = parent if parent.state is JobState.PENDING else None
        item = {
            "index": index,
            "state": "",
            "reason": "",
            "node": (job.node if job else "") or written.get("job", {}).get("node", ""),
            "cell": written.get("cell"),
            "cells": written.get("cells"),
            "started": written.get("started"),
            "ended": written.get("ended"),
            "output": bool(member.get("output")),
        }
        if job is not None and job.state is JobState.PENDING:
            item.update(state="queued", reason=job.reason)
        elif job is not None and job.state is JobState.RUNNING:
            item["state"] = "running" if written.get("state") != "done" else "done"
        elif job is not None and job.state is JobState.UNKNOWN:
            item.update(state="unknown", reason=job.reason)
        elif written.get("state") == "done":
            item["state"] = "done"
        elif written.get("state") == "failed":
            error = written.get("error") or {}
            cell = written.get("failed_cell")
            where = f"cell {cell}: " if cell is not None else ""
            what = f"{error.get('name', '')}: {error.get('message', '')}".strip(": ")
            item.update(state="failed", reason=f"{where}{what}")
        elif written:
            item.update(state="failed", reason=LOST)
        elif job is not None and job.raw_state == "CANCELLED":
            item.update(state="cancelled", reason=job.reason or "cancelled by the scheduler")
        else:
            item.update(state="failed", reason=NEVER_STARTED)
        states.append(item)
    return states


def run_state(members: list[dict[str, Any]]) -> str:
    """A run's state from its members': running, queued, unknown, then the final ones."""
    found = {member["state"] for member in members}
    for state in ("running", "queued", "unknown"):
        if state in found:
            return state
    if found == {"done"}:
        return "done"
    return "cancelled" if found == {"cancelled"} else "failed"
