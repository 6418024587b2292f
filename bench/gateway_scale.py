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
``ours`` creates its clusters with one worker (the option ``workers``: the worker's job is
submitted right after the scheduler's, see ``continuum_hub.gateway.quickstart``); ``ours-late``
(only with ``--only ours-late``) creates them without, so the worker is submitted once the
scheduler runs, as before.  For both, the phases of each start as the gateway logged them
(scheduler submitted, first worker submitted, address known, running, first worker reported by
a heartbeat) are printed as medians beside the first worker's connection seen by the client.

Per round and backend: *create → first worker connected* (a new cluster, ``scale(1)``, until the
scheduler reports the worker) and *scale 0 → N* (``scale(N)`` after all workers are gone, until N
are connected). Once per backend: *throughput*, 10 000 no-op tasks (``client.map``) on N
workers. Prints medians and ratios to ``ours``. Goals for ``ours`` on the demo site: first
worker < 5 s, 0 → N < 10 s.

N: the demo site ``alpha`` (``images/slurm/clusters.yaml``) has one node with 4 CPUs; the
gateway's scheduler job takes one, so 3 one-core workers fit, not 8. ``--declared-cpus 9``
declares more CPUs than the machine has (as ``bench/poll_cost.py`` does) to measure 8 workers,
at the price of oversubscribed real cores.

Run as root: ``/opt/continuum-hub/venv/bin/python bench/gateway_scale.py [--rounds 3]``.
"""

from __future__ import annotations

import argparse
import copy
import faulthandler
import gc
import os
import signal
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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
TIMEOUT = 300.0


def noop(x: int) -> int:
    return x


def wait_workers(client: Client, count: int, timeout: float = TIMEOUT) -> None:
    """Until the scheduler reports exactly ``count`` workers."""
    deadline = time.monotonic() + timeout
    while len(client.scheduler_info(n_workers=-1)["workers"]) != count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{count} workers not reached in {timeout:.0f} s")
        time.sleep(0.05)


def throughput(client: Client) -> float:
    """Tasks per second for :data:`TASKS` no-op tasks."""
    client.gather(client.map(noop, range(100), pure=False))  # warm the workers up
    started = time.perf_counter()
    client.gather(client.map(noop, range(TASKS), pure=False))
    return TASKS / (time.perf_counter() - started)


def measure(
    start: Callable[[], Any], workers: int, rounds: int, name: str
) -> dict[str, list[float]]:
    """Create/scale timings over ``rounds`` and the throughput of the last round's cluster.

    ``start`` returns a cluster object with ``scale``, ``get_client`` and ``close``/``shutdown``.
    """
    results: dict[str, list[float]] = {"first": [], "scale": [], "tps": []}
    for round_ in range(rounds + 1):  # round 0 warms caches (imports, Slurm, the proxy)
        started = time.perf_counter()
        cluster = start()
        try:
            cluster.scale(1)
            client = cluster.get_client() if hasattr(cluster, "get_client") else Client(cluster)
            wait_workers(client, 1)
            first = time.perf_counter() - started
            cluster.scale(0)
            wait_workers(client, 0)
            started = time.perf_counter()
            cluster.scale(workers)
            wait_workers(client, workers)
            scale = time.perf_counter() - started
            if round_:
                results["first"].append(first)
                results["scale"].append(scale)
                print(f"  {name} round {round_}: first {first:.2f} s, 0→{workers} {scale:.2f} s")
            if round_ == rounds:
                results["tps"].append(throughput(client))
            client.close()
        finally:
            (cluster.shutdown if hasattr(cluster, "shutdown") else cluster.close)()
            # dask-gateway's Gateway.__del__ calls back into the event loop: collected on the
            # loop's own thread it deadlocks, so collect the closed clusters here, now
            client = cluster = None
            gc.collect()
    return results


@contextmanager
def our_gateway(
    root: Path, alpha: LocalSlurmCluster, workers: int, start_workers: int = 0
) -> Iterator[tuple[Callable[[], Any], Path]]:
    """The hub-managed gateway on ``alpha``; yields a function starting a cluster for alice
    (with ``start_workers`` workers submitted with its scheduler) and the hub's log."""
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
            {"GatewayLimits": {"default": limits}},
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
        "--only", choices=["ours", "ours-late", "gateway-local", "jobqueue"], action="append"
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
    workers = min(8, cpus - 1)  # one CPU for the gateway's scheduler job
    print(f"site alpha: {cpus} CPUs → {workers} one-core workers (+ the scheduler's job)")
    if workers < 8:
        print("  (8 one-core workers do not fit on the demo site; use --declared-cpus 9)")
    backends = args.only or ["ours", "gateway-local", "jobqueue"]
    results: dict[str, dict[str, list[float]]] = {}
    phases: dict[str, dict[str, dict[str, float]]] = {}
    with scratch_site("alpha", spec) as (root, alpha):
        # interleaved by backend, each on an idle site (the previous one's jobs are gone)
        for name, start_workers in (("ours", 1), ("ours-late", 0)):
            if name in backends:
                with our_gateway(root / name, alpha, workers, start_workers) as (start, log):
                    results[name] = measure(start, workers, args.rounds, name)
                    phases[name] = parse_phases(log.read_text(errors="replace"))
        if "gateway-local" in backends:
            with local_gateway(root / "local-gateway", max_workers=workers) as gw:
                client = gw.gateway(USER)

                def start_local() -> Any:
                    return client.new_cluster(worker_cores=1, worker_memory_gb=1.0)

                results["gateway-local"] = measure(
                    start_local, workers, args.rounds, "gateway-local"
                )
                client.close()
        if "jobqueue" in backends:
            results["jobqueue"] = measure(
                jobqueue_starter(alpha, root), workers, args.rounds, "jobqueue"
            )
    local_tps = local_cluster_tps(workers)
    report(results, local_tps, workers, args.rounds)
    for name, found in phases.items():
        report_phases(name, found, results[name]["first"])


def report(
    results: dict[str, dict[str, list[float]]], local_tps: float, workers: int, rounds: int
) -> None:
    print(f"\ngateway_scale, median of {rounds} rounds (after 1 warm-up), {workers} workers")
    ours = results.get("ours")
    for name, values in results.items():
        first = statistics.median(values["first"])
        scale = statistics.median(values["scale"])
        tps = values["tps"][0]
        line = (
            f"  {name:<14} first worker {first:6.2f} s   0→{workers} {scale:6.2f} s   "
            f"{tps:8.0f} tasks/s"
        )
        if ours and name != "ours":
            line += (
                f"   ours/{name}: first {statistics.median(ours['first']) / first:.2f}x, "
                f"scale {statistics.median(ours['scale']) / scale:.2f}x, "
                f"throughput {ours['tps'][0] / tps:.2f}x"
            )
        print(line)
    print(f"  {'LocalCluster':<14} {'':>38}{local_tps:8.0f} tasks/s")
    if ours:
        first = statistics.median(ours["first"])
        scale = statistics.median(ours["scale"])
        print(f"  ours: first worker {first:.2f} s (goal < 5 s), 0→{workers} {scale:.2f} s")
        print("        (goal < 10 s)")
        print(f"  ours/LocalCluster throughput: {ours['tps'][0] / local_tps:.2f}x")


def report_phases(name: str, found: dict[str, dict[str, float]], first: list[float]) -> None:
    """Median seconds from creation to each phase of ``name``'s cluster starts (the gateway's
    log; the warm-up round included) and to the first worker seen by the client."""
    print(f"\n{name}: phases of a cluster start, median s after creation ({len(found)} starts)")
    for phase in PHASES[1:]:
        values = [p[phase] for p in found.values() if phase in p]
        if values:
            print(f"  {phase:<26} {statistics.median(values):6.2f}   (gateway)")
    print(f"  {'first worker connected':<26} {statistics.median(first):6.2f}   (client)")


if __name__ == "__main__":
    main()
