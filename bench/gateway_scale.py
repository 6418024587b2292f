"""gateway_scale: Dask cluster start-up, scale-up and task throughput, side by side in one run.

Three ways to get Dask workers, measured in the same run on the same machine:

* **ours**: the hub-managed Dask Gateway (``continuum_hub.gateway``, site-aware Slurm backend):
  scheduler and workers are Slurm jobs of ``alice`` on the idle demo site ``alpha``, reached
  with a hub token, exactly as from a notebook in her server;
* **gateway-local**: the same ``dask-gateway-server`` with its ``LocalBackend`` (processes on
  this machine, no batch system): the floor a gateway can reach;
* **jobqueue**: dask-jobqueue 0.9.0's ``SLURMCluster`` as started from a notebook (scheduler in
  the notebook's process, workers as Slurm jobs on ``alpha``);

and, for task throughput, a ``distributed.LocalCluster`` with as many one-thread workers.
``ours`` creates its clusters with one worker (the option ``workers``: the worker runs in the
scheduler's own job, see ``continuum_hub.gateway.quickstart``); ``ours-separate`` (only with
``--only ours-separate``) the same with ``GatewayService.scheduler_in_worker_job = False`` (the
worker's job is submitted right after the scheduler's); ``ours-late`` (only with ``--only
ours-late``) creates them without, so the worker is submitted once the scheduler runs.  For
each, the phases of each start as the gateway logged them (scheduler submitted, first worker
submitted, address known, running, first worker reported by a heartbeat) are printed as medians
beside the first worker's connection seen by the client.

The backends run interleaved, round by round (each on an idle site: the previous round's jobs
are gone), so that a busy machine's changing load weighs on all of them alike.  Per round and
backend: *create → first worker connected* (a new cluster, ``scale(1)``, until the
scheduler reports the worker) and *scale 0 → N* (``scale(N)`` after all workers are gone, until N
are connected). Once per backend: *throughput*, 10 000 no-op tasks (``client.map``) on N
workers. Prints medians and ratios to ``ours``. Goals for ``ours`` on the demo site: first
worker < 5 s, 0 → N < 10 s.

N: the demo site ``alpha`` (``images/slurm/clusters.yaml``) has one node with 4 CPUs; the
gateway's scheduler job takes two (its own and the first worker's, which it keeps after that
worker is scaled away), so 2 one-core workers fit, not 8. ``--declared-cpus 10`` declares more
CPUs than the machine has (as ``bench/poll_cost.py`` does) to measure 8 workers, at the price
of oversubscribed real cores.

Run as root: ``/opt/continuum-hub/venv/bin/python bench/gateway_scale.py [--rounds 3]``.
"""

from __future__ import annotations

import argparse
import copy
import faulthandler
import gc
import math
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))  # the tests' hub, gateway and local-gateway helpers

from distributed import Client, LocalCluster  # noqa: E402

from continuum_federation.accounts import ensure_unix_user  # noqa: E402
from continuum_federation.idp import (  # noqa: E402
    DEMO_USERS,
    OpenIDProvider,
    hub_client,
    with_passwords,
)
from continuum_federation.process import free_port  # noqa: E402
from continuum_federation.slurm import LocalSlurmCluster, load_cluster_specs, scratch_site  # noqa: E402
from continuum_hub.gateway.quickstart import PHASES, parse_phases  # noqa: E402
from fixtures.gateway import HubGateway  # noqa: E402
from fixtures.hub import admin_hub  # noqa: E402
from fixtures.local_gateway import local_gateway  # noqa: E402

USER = "alice"
TASKS = 10_000
TIMEOUT = 120.0  # per wait; the slowest round seen on a busy machine took 30 s


def noop(x: int) -> int:
    return x


def wait_workers(client: Client, count: int, timeout: float = TIMEOUT) -> None:
    """Until the scheduler reports exactly ``count`` workers."""
    deadline = time.monotonic() + timeout
    while len(client.scheduler_info(n_workers=-1)["workers"]) != count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{count} workers not reached in {timeout:.0f} s")
        time.sleep(0.05)


def wait_jobs_closed(cluster: Any, timeout: float = TIMEOUT) -> None:
    """Until a dask-jobqueue cluster has closed the jobs of its removed workers: a scale-up
    asked while it still cancels them can be lost (SpecCluster), and it waits for ever."""
    deadline = time.monotonic() + timeout
    while getattr(cluster, "workers", None):  # GatewayCluster has no such table: returns at once
        if time.monotonic() > deadline:
            raise TimeoutError(f"jobs still open after {timeout:.0f} s: {list(cluster.workers)}")
        time.sleep(0.05)


def throughput(client: Client) -> float:
    """Tasks per second for :data:`TASKS` no-op tasks."""
    client.gather(client.map(noop, range(100), pure=False))  # warm the workers up
    started = time.perf_counter()
    client.gather(client.map(noop, range(TASKS), pure=False))
    return TASKS / (time.perf_counter() - started)


def one_round(
    start: Callable[[], Any], workers: int, with_tps: bool
) -> tuple[float, float, float | None]:
    """One round: create → first worker, scale 0 → ``workers`` (seconds), and the tasks/s of
    its cluster when ``with_tps``.

    ``start`` returns a cluster object with ``scale``, ``get_client`` and ``close``/``shutdown``.
    """
    started = time.perf_counter()
    cluster = start()
    tps = None
    try:
        cluster.scale(1)
        client = cluster.get_client() if hasattr(cluster, "get_client") else Client(cluster)
        wait_workers(client, 1)
        first = time.perf_counter() - started
        cluster.scale(0)
        wait_workers(client, 0)
        wait_jobs_closed(cluster)
        started = time.perf_counter()
        cluster.scale(workers)
        wait_workers(client, workers)
        scale = time.perf_counter() - started
        if with_tps:
            tps = throughput(client)
        client.close()
    finally:
        (cluster.shutdown if hasattr(cluster, "shutdown") else cluster.close)()
        # dask-gateway's Gateway.__del__ calls back into the event loop: collected on the
        # loop's own thread it deadlocks, so collect the closed clusters here, now
        client = cluster = None
        gc.collect()
    return first, scale, tps


def measure(
    starters: dict[str, Callable[[], Any]], workers: int, rounds: int, alpha: LocalSlurmCluster
) -> dict[str, dict[str, list[float]]]:
    """Create/scale timings of every backend over ``rounds``, the backends interleaved round by
    round (a busy machine's load changes within minutes: each backend sees the same), each on
    an idle site; the throughput of each backend's last round."""
    results = {name: {"first": [], "scale": [], "tps": [], "failed": []} for name in starters}
    for round_ in range(rounds + 1):  # round 0 warms caches (imports, Slurm, the proxy)
        for name, start in starters.items():
            try:
                first, scale, tps = one_round(start, workers, round_ == rounds)
            except TimeoutError as exc:
                # e.g. dask-jobqueue loses a worker whose sbatch failed on a loaded controller
                # and never submits it again: counted and printed, not measured
                print(f"  {name} round {round_}: failed, {exc}")
                results[name]["failed"].append(float(round_))
                continue
            finally:
                wait_no_jobs(alpha)
            if round_:
                results[name]["first"].append(first)
                results[name]["scale"].append(scale)
                print(f"  {name} round {round_}: first {first:.2f} s, 0→{workers} {scale:.2f} s")
            if tps is not None:
                results[name]["tps"].append(tps)
    return results


@contextmanager
def our_gateway(
    root: Path, alpha: LocalSlurmCluster, workers: int, start_workers: int = 0, in_job: bool = True
) -> Iterator[tuple[Callable[[], Any], Path]]:
    """The hub-managed gateway on ``alpha``; yields a function starting a cluster for alice
    (with ``start_workers`` workers started with its scheduler, the first in its job when
    ``in_job``) and the hub's log."""
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    secret = os.urandom(16).hex()
    users = with_passwords([u for u in DEMO_USERS if u["username"] == USER])
    with OpenIDProvider(
        root / "idp", REPO, users=users, clients=[hub_client(port, secret, "hub-bench")]
    ) as idp:
        registry = root / "sites.yaml"  # the demo registry's site alpha alone
        demo = yaml.safe_load((REPO / "hub-config" / "sites.demo.yaml").read_text())
        demo["sites"] = [s for s in demo["sites"] if s["name"] == "alpha"]
        registry.write_text(yaml.safe_dump(demo))
        limits = {"max_workers": max(8, workers), "max_cores": max(8, workers)}
        hub = admin_hub(
            root / "hub",
            REPO,
            idp,
            {"alpha": alpha},
            port,
            {
                "GatewayLimits": {"default": limits},
                "GatewayService": {"scheduler_in_worker_job": in_job},
            },
            "hub-bench",
            registry,
        )
        with hub:
            gateway = HubGateway(hub, idp)
            gateway.wait_healthy()
            client = gateway.client(gateway.token(USER))
            options = {"site": "alpha", "worker_cores": 1, "worker_memory_gb": 1}
            if start_workers:
                options["workers"] = start_workers
            try:
                yield (lambda: client.new_cluster(**options)), hub.state_dir / "jupyterhub.log"
            finally:
                for report in client.list_clusters():
                    client.stop_cluster(report.name)
                client.close()
                # the gateway leaves clusters running when it stops: wait for their jobs to go
                wait_no_jobs(alpha)


def wait_no_jobs(alpha: LocalSlurmCluster, timeout: float = 120.0) -> None:
    """Until no job is left on ``alpha`` (the next backend starts on an idle site)."""
    deadline = time.monotonic() + timeout
    while squeue_ids(alpha):
        if time.monotonic() > deadline:
            raise TimeoutError(f"jobs left on alpha after {timeout:.0f} s: {squeue_ids(alpha)}")
        time.sleep(0.2)


def squeue_ids(alpha: LocalSlurmCluster) -> list[str]:
    out = subprocess.run(
        ["squeue", "--noheader", "--format=%i"],
        env=alpha.client_env(),
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    return out.split()


def jobqueue_starter(alpha: LocalSlurmCluster, root: Path) -> Callable[[], Any]:
    """``SLURMCluster`` as a notebook starts it (its scheduler in this process)."""
    from dask_jobqueue import SLURMCluster

    os.environ.update(alpha.env())  # sbatch/squeue/scancel find the site, as in a job there
    logs = root / "jobqueue-logs"
    logs.mkdir(exist_ok=True)
    logs.chmod(0o777)

    def start() -> Any:
        return SLURMCluster(
            queue=alpha.default_partition,
            cores=1,
            processes=1,
            memory="1GiB",
            walltime="00:30:00",
            python=sys.executable,
            scheduler_options={"host": "127.0.0.1", "dashboard_address": ":0"},
            log_directory=str(logs),
            local_directory=str(root / "jobqueue-work"),
        )

    return start


def local_cluster_tps(workers: int) -> float:
    with (
        LocalCluster(n_workers=workers, threads_per_worker=1, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        return throughput(client)


def main() -> None:
    parser = argparse.ArgumentParser(description="Dask cluster start-up and scale-up latency")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--declared-cpus",
        type=int,
        default=0,
        help="CPUs declared for alpha's node, and memory for as many jobs; 0: the demo spec's",
    )
    parser.add_argument(
        "--only",
        choices=["ours", "ours-separate", "ours-late", "gateway-local", "jobqueue"],
        action="append",
    )
    args = parser.parse_args()
    faulthandler.register(signal.SIGUSR1)  # kill -USR1 <pid> prints where a stuck run waits
    if os.geteuid() != 0:
        sys.exit("run as root (starts Slurm daemons, creates demo accounts)")
    ensure_unix_user(USER)
    spec = copy.deepcopy(load_cluster_specs(REPO / "images" / "slurm" / "clusters.yaml")["alpha"])
    if args.declared_cpus:
        for node in spec["nodes"]:
            node["cpus"] = args.declared_cpus
            # and the memory the jobs ask for (--mem): the scheduler's 2 GiB and 1 GiB per
            # worker; without it 6 of the 8 workers fit on the demo node's 8 GiB
            node["memory_mb"] = max(node["memory_mb"], 2048 + 1024 * (args.declared_cpus - 1))
    cpus = sum(node["cpus"] for node in spec["nodes"])
    # two CPUs for the gateway's scheduler job: the scheduler's and the first worker's, which
    # the job keeps after that worker is scaled to 0
    workers = min(8, cpus - 2)
    print(f"site alpha: {cpus} CPUs → {workers} one-core workers (+ the scheduler's job)")
    if workers < 8:
        print("  (8 one-core workers do not fit on the demo site; use --declared-cpus 10)")
    backends = args.only or ["ours", "gateway-local", "jobqueue"]
    logs: dict[str, Path] = {}
    starters: dict[str, Callable[[], Any]] = {}
    with scratch_site("alpha", spec) as (root, alpha), ExitStack() as stack:
        for name, start_workers, in_job in (
            ("ours", 1, True),
            ("ours-separate", 1, False),
            ("ours-late", 0, True),
        ):
            if name in backends:
                gateway = our_gateway(root / name, alpha, workers, start_workers, in_job)
                starters[name], logs[name] = stack.enter_context(gateway)
        if "gateway-local" in backends:
            gw = stack.enter_context(local_gateway(root / "local-gateway", max_workers=workers))
            local_client = gw.gateway(USER)
            stack.callback(local_client.close)
            starters["gateway-local"] = lambda: local_client.new_cluster(
                worker_cores=1, worker_memory_gb=1.0
            )
        if "jobqueue" in backends:
            starters["jobqueue"] = jobqueue_starter(alpha, root)
        results = measure(starters, workers, args.rounds, alpha)
        phases = {name: parse_phases(log.read_text(errors="replace")) for name, log in logs.items()}
    local_tps = local_cluster_tps(workers)
    report(results, local_tps, workers, args.rounds)
    for name, found in phases.items():
        report_phases(name, found, results[name]["first"])


def median(values: list[float]) -> float:
    """The median, NaN when every round failed."""
    return statistics.median(values) if values else math.nan


def report(
    results: dict[str, dict[str, list[float]]], local_tps: float, workers: int, rounds: int
) -> None:
    print(f"\ngateway_scale, median of {rounds} rounds (after 1 warm-up), {workers} workers")
    ours = results.get("ours")
    for name, values in results.items():
        first, scale = median(values["first"]), median(values["scale"])
        tps = values["tps"][0] if values["tps"] else math.nan
        line = (
            f"  {name:<14} first worker {first:6.2f} s   0→{workers} {scale:6.2f} s   "
            f"{tps:8.0f} tasks/s"
        )
        if ours and name != "ours":
            ours_tps = ours["tps"][0] if ours["tps"] else math.nan
            line += (
                f"   ours/{name}: first {median(ours['first']) / first:.2f}x, "
                f"scale {median(ours['scale']) / scale:.2f}x, "
                f"throughput {ours_tps / tps:.2f}x"
            )
        if values["failed"]:
            line += f"   ({len(values['failed'])} failed rounds)"
        print(line)
    print(f"  {'LocalCluster':<14} {'':>38}{local_tps:8.0f} tasks/s")
    if ours:
        first, scale = median(ours["first"]), median(ours["scale"])
        print(f"  ours: first worker {first:.2f} s (goal < 5 s), 0→{workers} {scale:.2f} s")
        print("        (goal < 10 s)")
        if ours["tps"]:
            print(f"  ours/LocalCluster throughput: {ours['tps'][0] / local_tps:.2f}x")


def report_phases(name: str, found: dict[str, dict[str, float]], first: list[float]) -> None:
    """Median seconds from creation to each phase of ``name``'s cluster starts (the gateway's
    log; the warm-up round included) and to the first worker seen by the client."""
    print(f"\n{name}: phases of a cluster start, median s after creation ({len(found)} starts)")
    for phase in PHASES[1:]:
        values = [p[phase] for p in found.values() if phase in p]
        if values:
            print(f"  {phase:<26} {statistics.median(values):6.2f}   (gateway)")
    print(f"  {'first worker connected':<26} {median(first):6.2f}   (client)")


if __name__ == "__main__":
    main()
