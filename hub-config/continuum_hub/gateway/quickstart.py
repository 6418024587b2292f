"""A cluster's first workers started with its scheduler, and the phases of a cluster's start.

dask-gateway submits a worker only once the scheduler's job runs and has told the gateway its
address: the first worker waits for two Slurm job starts in a row (``bench/gateway_scale.py``
measured 4.06 s against 1.63 s for dask-jobqueue's ``SLURMCluster``).  The cluster option
``workers`` (``SiteClusterConfig.start_workers``) asks for workers at creation instead:

* by default (``SiteClusterConfig.scheduler_in_worker_job``) the first of them runs in the
  scheduler's own job: one ``sbatch`` for both, the job asks for the scheduler's and the
  worker's cores and memory together, and lives as long as the scheduler (a worker retired by
  scaling to 0 leaves the job running, holding its cores, until the scheduler ends);
* the others (all of them, without that setting) are submitted right after the scheduler's job,
  so all jobs start together;
* the scheduler writes its address to ``scheduler.json`` in the cluster's 0700 staging folder
  (``--scheduler-file``); a worker started before the address was known reads it from there
  (``dask worker --scheduler-file`` waits for the file), so no worker needs the gateway's API;
* the scheduler's preload :mod:`.scheduler_setup` (copied into the staging folder) sends the
  first heartbeat at once, asks for those workers from it on (``CONTINUUM_START_WORKERS``;
  dask-gateway would otherwise take the scheduler's count of 0 as "stop the pending workers"),
  and loads the dashboard after it;
* :func:`queue_start_workers` creates their records in the gateway's database and queues them,
  as dask-gateway does for a scale-up, before the cluster counts as submitted, so the gateway
  never creates them a second time;
* :class:`StartPhases` notes when each phase of a start happened, as the gateway sees it, and
  logs one line per cluster (``bench/gateway_scale.py`` prints them, :func:`parse_phases`).  A
  worker is *reported* by the scheduler's next heartbeat, which may come a heartbeat period
  (``cluster_heartbeat_period``) after it connected: the bench times the connection itself.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import scheduler_setup

#: the scheduler's address (JSON, written by the scheduler) in the cluster's staging folder
SCHEDULER_FILE = "scheduler.json"
#: the scheduler's preload (:mod:`.scheduler_setup`) in the cluster's staging folder
SETUP_FILE = "continuum_scheduler_setup.py"
#: the job environment's variable with the number of workers started with the scheduler
START_WORKERS_ENV = scheduler_setup.START_WORKERS_ENV

#: the job script of a scheduler and a worker in one job: the job lasts as long as the
#: scheduler (a worker retired by a scale-down leaves it), the worker goes when it ends
BOTH_SCRIPT = """#!/bin/sh
# Dask scheduler and first worker of a Continuum Hub gateway cluster.  Resources are on the
# sbatch command line; credentials are in the job's environment, not in this script.
set -eu
{setup}{scheduler} &
scheduler=$!
{worker} &
worker=$!
status=0
wait "$scheduler" || status=$?
kill "$worker" 2>/dev/null || true
exit "$status"
"""

#: the phases of a cluster's start, in the order they usually happen
PHASES = (
    "created",
    "scheduler submitted",
    "first worker submitted",
    "address known",
    "running",
    "first worker reported",
)
#: the line :class:`StartPhases` logs per cluster (``bench/gateway_scale.py`` reads it back)
PHASES_LINE = re.compile(r"Cluster (?P<cluster>[0-9a-f]+) start phases: (?P<phases>.*)$")


def setup_source() -> str:
    """The text of the scheduler's preload, written into the staging folder at submission."""
    return Path(scheduler_setup.__file__).read_text()


def scheduler_file(staging: str) -> str:
    """Where the scheduler of the cluster staged in ``staging`` writes its address."""
    return os.path.join(staging, SCHEDULER_FILE)


def scheduler_args(staging: str) -> list[str]:
    """Arguments of ``dask scheduler`` after the gateway's preload and before its options: the
    address file and our preload; the dashboard is loaded by that preload, not at start."""
    return [
        "--no-dashboard",
        "--scheduler-file",
        scheduler_file(staging),
        "--preload",
        os.path.join(staging, SETUP_FILE),
    ]


def worker_target(address: str, staging: str) -> list[str]:
    """How ``dask worker`` finds its scheduler: the address once the gateway knows it, else the
    scheduler's file (the worker waits until it is written)."""
    return [address] if address else ["--scheduler-file", scheduler_file(staging)]


def queue_start_workers(db: Any, queue: Any, cluster: Any, count: int) -> list[Any]:
    """Create ``count`` workers of ``cluster`` (target RUNNING) in the gateway's database and
    queue them for submission, beside the workers the cluster already has.

    Parameters
    ----------
    db
        The backend's ``DataManager``.
    queue
        The backend's work queue (``put``).
    cluster
        The cluster (its scheduler is already submitted, its staging folder exists).
    count
        How many workers the cluster should have.

    Returns
    -------
    list
        The workers created.
    """
    missing = count - len(cluster.active_workers())
    created = [db.create_worker(cluster) for _ in range(max(0, missing))]
    for worker in created:
        queue.put(worker)
    return created


class StartPhases:
    """When each phase of a cluster's start happened (seconds after its creation).

    Parameters
    ----------
    log
        Where the summary line of each cluster goes, once its first worker is reported.
    clock
        Seconds, monotonic.
    """

    def __init__(self, log: Any, clock: Callable[[], float] = time.monotonic) -> None:
        self.log = log
        self.clock = clock
        self._times: dict[str, dict[str, float]] = {}

    def mark(self, cluster: str, phase: str) -> None:
        """Note ``phase`` of ``cluster`` now; only its first time counts.  A cluster unknown
        here (created before the gateway restarted) is not timed."""
        if phase not in PHASES:
            raise ValueError(f"unknown phase {phase!r}")
        if phase == "created":
            self._times[cluster] = {"created": self.clock()}
            return
        times = self._times.get(cluster)
        if times is None or phase in times:
            return
        times[phase] = self.clock()
        if phase == "first worker reported":
            self.log.info("Cluster %s start phases: %s", cluster, self.summary(cluster))
            del self._times[cluster]

    def elapsed(self, cluster: str) -> dict[str, float]:
        """Seconds from creation to each phase noted so far, in :data:`PHASES` order."""
        times = self._times.get(cluster, {})
        start = times.get("created", 0.0)
        return {p: times[p] - start for p in PHASES if p in times and p != "created"}

    def summary(self, cluster: str) -> str:
        """``phase +1.23 s, …`` for the phases noted so far."""
        return ", ".join(f"{p} +{s:.2f} s" for p, s in self.elapsed(cluster).items())

    def forget(self, cluster: str) -> None:
        """Drop a cluster that stopped before its first worker was reported."""
        self._times.pop(cluster, None)


def parse_phases(log: str) -> dict[str, dict[str, float]]:
    """The phases (seconds after creation) of each cluster whose summary line is in ``log``."""
    found: dict[str, dict[str, float]] = {}
    for line in log.splitlines():
        match = PHASES_LINE.search(line)
        if match is None:
            continue
        phases = {}
        for part in match["phases"].split(", "):
            phase, _, seconds = part.rpartition(" +")
            phases[phase] = float(seconds.removesuffix(" s"))
        found[match["cluster"]] = phases
    return found
