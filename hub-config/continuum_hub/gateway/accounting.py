"""Budgets and the usage ledger for gateway clusters' jobs (kind ``dask``).

* :func:`check_budget` refuses a cluster's scheduler or more workers that would pass the user's
  or their VO's monthly budget (:mod:`continuum_spawners.budgets`), with the reason as the
  answer the client sees;
* :func:`record_job` notes each submitted job in the usage ledger
  (:mod:`continuum_spawners.ledger`) with what it asked for: a scheduler's job that also runs
  the first worker asks for both (:meth:`.jobs.SiteJobs.job_resources`).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from dask_gateway_server.backends.base import PublicException

from continuum_spawners import ledger
from continuum_spawners.budgets import BudgetExceeded, Request, enforce
from continuum_spawners.sites import Site, SiteRegistry

from .jobs import GIB


def check_budget(
    registry: SiteRegistry, username: str, config: dict[str, Any], site: Site, workers: int
) -> None:
    """Refuse ``workers`` more workers (0: the scheduler of a new cluster) of a cluster with
    ``config`` (its options as a dict) past the user's or their VO's budget on ``site``."""
    if workers:
        cores, gpus, memory = config["worker_cores"], config["worker_gpus"], config["worker_memory"]
    else:
        cores, gpus, memory = config["scheduler_cores"], 0, config["scheduler_memory"]
    wanted = Request(site, cores, gpus, memory / GIB, config["walltime_minutes"], max(1, workers))
    try:
        enforce(registry, username, config.get("user_groups") or [], wanted, "dask")
    except BudgetExceeded as exc:
        raise PublicException(exc.message) from None


def record_job(
    cluster: Any, site: Site, job_id: str, resources: tuple[int, int, int], log: logging.Logger
) -> None:
    """Note ``cluster``'s job ``job_id`` and its ``(cores, gpus, memory bytes)`` in the usage
    ledger (a failure is only logged)."""
    config, (cores, gpus, memory) = cluster.config, resources
    usage = ledger.UsageJob(
        site=site.name,
        job_id=job_id,
        kind="dask",
        label=str(cluster.options.get("name") or cluster.name),
        user=cluster.username,
        vo=ledger.vo_for(site, config.user_groups or []),
        partition=config.partition,
        submitted_at=datetime.now(UTC),
        req_cores=cores,
        req_gpus=gpus,
        req_memory_gb=memory / GIB,
        req_walltime_minutes=config.walltime_minutes,
    )
    ledger.record_submission(usage, log)
