"""What a server job is made of: its script, its ``sbatch`` options, its environment, its times,
and how the hub describes it (the job information of the Lab, the spawn's progress messages).

Pure functions of validated values (a :class:`~continuum_spawners.options.JobRequest` and the
:class:`~continuum_spawners.sites.Site`), so that a property test can drive user input all the
way to the scheduler's command line.
"""

from __future__ import annotations

import os
import re
import shlex
from datetime import UTC, datetime, timedelta
from typing import Any

from .impact import estimate as impact_estimate
from .impact import model_for
from .options import JobRequest
from .schedulers.base import Estimate, JobSpec, JobState, JobStatus
from .sites import Environment, Site, format_walltime

# what sbatch --test-only is given: nothing runs, the scheduler only plans
ESTIMATE_SCRIPT = "#!/bin/bash\ntrue\n"
LATEST = datetime.max.replace(tzinfo=UTC)

JOB_SCRIPT = """#!/bin/bash
# JupyterLab server job started by Continuum Hub. Resources are on the sbatch command line;
# the server's credentials are in the job's environment, not in this script.
{setup}set -euo pipefail
exec {command}
"""


def render_job_script(command: list[str], modules: tuple[str, ...] = ()) -> str:
    """The job script: fixed text, the environment's modules and the launcher, all quoted.

    ``modules`` come from the site registry (validated names); ``command`` from the hub's
    configuration.  Nothing a user typed is in it.
    """
    return JOB_SCRIPT.format(setup=module_setup(modules), command=shlex.join(command))


def module_setup(modules: tuple[str, ...]) -> str:
    """Job script lines loading a software environment's ``modules`` (registry names), quoted;
    empty without modules."""
    if not modules:
        return ""
    # batch shells are no login shells: make the site's `module` command available
    return "source /etc/profile\nmodule load " + shlex.join(modules) + "\n"


def job_environment(site: Site, request: JobRequest | None) -> dict[str, str]:
    """What the server (and the Lab's session panel) learns of its job from the environment."""
    if request is None:
        return {"CONTINUUM_SITE": site.name, "CONTINUUM_SITE_LABEL": site.label}
    return {
        "CONTINUUM_SITE": site.name,
        "CONTINUUM_SITE_LABEL": site.label,
        "CONTINUUM_PARTITION": request.partition,
        "CONTINUUM_CORES": str(request.cores),
        "CONTINUUM_MEMORY_GB": str(request.memory_gb),
        "CONTINUUM_GPUS": str(request.gpus),
        "CONTINUUM_WALLTIME_MINUTES": str(request.walltime_minutes),
        "CONTINUUM_ENVIRONMENT": request.environment or site.default_environment.name,
    }


def parse_start_time(text: str) -> datetime | None:
    """A scheduler's start time (ISO 8601; without zone it is the site's local time) in UTC."""
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    return when.astimezone(UTC)


def iso_utc(when: datetime | None) -> str | None:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if when else None


def build_job_spec(
    site: Site,
    request: JobRequest,
    home: str,
    job_name: str,
    env_names: list[str],
    reservation: str | None = None,
) -> JobSpec:
    """The submission of ``request`` on ``site``: validated values only, nothing else
    (``reservation``: the workshop event's the job runs in, checked by :class:`JobSpec`)."""
    partition = request.partition_entry
    if partition is None or request.site_entry is not site:
        partition = site.partition(request.partition)
    if partition is None:
        raise RuntimeError(f"site {site.name} has no partition {request.partition!r}")
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", job_name):
        raise RuntimeError(f"SiteSpawner.job_name {job_name!r} is not a valid name")
    return JobSpec(
        name=job_name,
        partition=partition.name,
        cores=request.cores,
        memory_gb=request.memory_gb,
        gpus=request.gpus,
        gpu_type=partition.gpu_type,
        walltime_minutes=request.walltime_minutes,
        workdir=home,
        output=os.path.join(home, f".continuum-{job_name}-%j.log"),
        account=site.account,
        env_names=env_names,
        reservation=reservation,
    )


def estimate_model(request: JobRequest, estimate: Estimate, site: Site | None) -> dict[str, Any]:
    """JSON model of an estimate, as the form shows it, with the energy and emissions of the
    request if it used everything it asks for over its whole walltime
    (:func:`~continuum_spawners.impact.estimate`, the model of the usage views)."""
    wait = None
    if estimate.start is not None:
        wait = max(0, int((estimate.start - datetime.now(UTC)).total_seconds()))
    use = model = None
    if site is not None:
        model = model_for(site)
        hours = request.walltime_minutes / 60
        use = impact_estimate(model, request.cores, request.gpus, request.memory_gb, hours)
    return {
        "site": request.site,
        "partition": request.partition,
        "start_time": iso_utc(estimate.start),
        "wait_seconds": wait,
        "message": estimate.message,
        "energy_kwh_max": None if use is None else round(use.energy_kwh, 3),
        "gco2e_max": None if use is None else round(use.co2e_kg * 1000, 1),
        "impact_source": None if model is None else model.source,
    }


def chosen_environment(site: Site, request: JobRequest | None) -> Environment:
    """The software environment ``request`` chose at ``site`` (the site's default if none)."""
    chosen = site.environment(request.environment) if request else None
    return chosen or site.default_environment


def job_info(
    request: JobRequest | None, site: Site | None, job_id: str, status: JobStatus | None
) -> dict[str, Any]:
    """A server's job as the hub sees it (``GET /hub/api/continuum/job``)."""
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
        "job_id": job_id or None,
        "state": status.state.value if status else "unknown",
        "node": status.node if status and status.node else None,
        "cores": request.cores if request else None,
        "memory_gb": request.memory_gb if request else None,
        "gpus": request.gpus if request else None,
        "walltime_minutes": request.walltime_minutes if request else None,
        "environment": chosen_environment(site, request).label if request and site else None,
        "start_time": iso_utc(start),
        "end_time": iso_utc(end),
        "remaining_seconds": remaining,
    }


def progress_message(request: JobRequest, site: str, job_id: str, status: JobStatus | None) -> str:
    """What the spawn-pending page says of a starting job at the site labelled ``site``."""
    if not job_id:
        return (
            f"Submitting to {site}, partition {request.partition} "
            f"({request.cores} cores, {request.memory_gb} GB, "
            f"{format_walltime(request.walltime_minutes)} h)…"
        )
    if status is None:
        return f"Job {job_id} submitted to {site}"
    if status.state is JobState.PENDING:
        reason = f" ({status.reason})" if status.reason else ""
        start = f", expected start {status.start_time}" if status.start_time else ""
        return f"Job {job_id} waiting in the queue of {site}{reason}{start}"
    if status.state is JobState.RUNNING:
        node = f" on node {status.node}" if status.node else ""
        return f"Job {job_id} running{node} at {site}; JupyterLab is starting…"
    if status.state is JobState.UNKNOWN:
        return f"Job {job_id}: the scheduler of {site} is not answering, retrying…"
    return f"Job {job_id} has ended ({status.raw_state or 'gone'})"
