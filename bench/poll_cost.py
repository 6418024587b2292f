"""poll_cost: scheduler invocations per status interval with 50 running servers.

Starts a private munge and a real Slurm cluster (64 declared cores) on this machine, submits 50
long-running jobs as a demo user, then polls each job once — as the hub does for every server
in one poll interval — two ways, side by side in one run:

* **ours**: every poll goes through the site's
  :class:`~continuum_spawners.schedulers.monitor.SiteMonitor` (one batched ``squeue`` for all
  jobs);
* **batchspawner 1.3**: every poll runs that spawner's own per-job query, its stock
  ``exec_prefix`` + ``batch_query_cmd`` through a shell, as ``BatchSpawnerBase.run_command`` does.

Prints invocations and wall time of both and their ratios.  Run as root:
``/opt/continuum-hub/venv/bin/python bench/poll_cost.py [--servers 50]``.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import os
import subprocess
import sys
import time
from pathlib import Path

from batchspawner import SlurmSpawner
from batchspawner.batchspawner import format_template

from continuum_federation.accounts import ensure_unix_user
from continuum_federation.slurm import LocalSlurmCluster, load_cluster_specs, scratch_site
from continuum_spawners.schedulers import monitor_for
from continuum_spawners.sites import Site

REPO = Path(__file__).resolve().parent.parent
USER = "alice"


def bench_cluster_spec() -> dict:
    spec = copy.deepcopy(load_cluster_specs(REPO / "images" / "slurm" / "clusters.yaml")["alpha"])
    for node in spec["nodes"]:
        node["cpus"], node["memory_mb"] = 64, 65536
    return spec


def submit_jobs(cluster: LocalSlurmCluster, count: int) -> list[str]:
    env = {**os.environ, **cluster.env()}
    ids = []
    for _ in range(count):
        out = subprocess.run(
            [
                "sudo",
                "-n",
                "-u",
                USER,
                "--preserve-env=SLURM_CONF",
                "sbatch",
                "--parsable",
                "--cpus-per-task=1",
                "--mem=64M",
                "--time=30",
                "--output=/dev/null",
                "--chdir=/tmp",
                "--wrap=sleep 600",
            ],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        ids.append(out.strip().split(";")[0])
    return wait_running(env, ids, 120)


def wait_running(env: dict[str, str], ids: list[str], timeout: float) -> list[str]:
    """``ids`` once Slurm runs them all (the bench stops after ``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    states: list[str] = []
    while time.monotonic() < deadline:
        states = subprocess.run(
            ["squeue", "--noheader", "--format=%T", f"--jobs={','.join(ids)}"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        if states.count("RUNNING") == len(ids):
            return ids
        time.sleep(0.5)
    raise SystemExit(f"only {states.count('RUNNING')} of {len(ids)} jobs running after {timeout} s")


async def ours(cluster: LocalSlurmCluster, ids: list[str]) -> tuple[int, float]:
    monitor = monitor_for(Site("bench", "slurm", partitions=(), env=cluster.env()))
    for job_id in ids:  # the servers of a hub that has been running for a while
        monitor.watch(job_id)
    started = time.perf_counter()
    for job_id in ids:  # one poll per server in the interval, as JupyterHub's poll loop does
        status = await monitor.status(job_id, max_age=30.0)
        assert status.state.value == "running", status
    return monitor.queries, time.perf_counter() - started


async def batchspawner(cluster: LocalSlurmCluster, ids: list[str]) -> tuple[int, float]:
    traits = SlurmSpawner.class_traits()
    query = traits["batch_query_cmd"].default_value
    prefix = traits["exec_prefix"].default_value
    env = {**os.environ, **cluster.env()}
    started = time.perf_counter()
    for job_id in ids:
        cmd = " ".join(
            (format_template(prefix, username=USER), format_template(query, job_id=job_id))
        )
        proc = await asyncio.create_subprocess_shell(
            cmd, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, _ = await proc.communicate()
        assert b"RUNNING" in out, (cmd, out)
    return len(ids), time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--servers", type=int, default=50)
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root (starts Slurm daemons, submits as a demo user)")
    ensure_unix_user(USER)
    with scratch_site("bench", bench_cluster_spec()) as (_root, cluster):
        ids = submit_jobs(cluster, args.servers)
        ours_calls, ours_time = asyncio.run(ours(cluster, ids))
        stock_calls, stock_time = asyncio.run(batchspawner(cluster, ids))
    print(f"poll_cost with {args.servers} running servers, one poll each (one status interval)")
    print(f"  ours (SiteMonitor)   : {ours_calls:3d} scheduler invocation(s), {ours_time:.3f} s")
    print(f"  batchspawner 1.3     : {stock_calls:3d} scheduler invocation(s), {stock_time:.3f} s")
    print(f"  ratio invocations    : {stock_calls / ours_calls:.0f}x fewer (goal: 1 per site)")
    print(f"  ratio wall time      : {stock_time / ours_time:.1f}x faster")


if __name__ == "__main__":
    main()
