"""spawn_latency: login → JupyterLab ready, ``continuum-site`` on an idle Slurm site vs
JupyterHub's ``LocalProcessSpawner``, side by side in one run, phase by phase.

Starts a private munge, the demo's Slurm site ``alpha``, the OpenID provider and two hubs that
differ only in their spawner.  Each round signs ``alice`` in through the provider's login page
(a ``requests`` session, like a browser), starts her server, and stops the clock when
``/user/alice/lab`` answers with JupyterLab's page through the proxy; then it measures the
Slurm-only floor: ``sbatch`` of a ``sleep`` job on the same site → the job seen ``RUNNING``
(``squeue`` every 20 ms).  Rounds alternate between the hubs (``--warmup`` rounds first, not
counted).  Prints, for each hub, the median, the spread (IQR) and the phases (the spawner's
``spawn phases`` log line; for ``LocalProcessSpawner`` the hub log's "Spawning" and "took N
seconds" lines: process started, answering); then the ratio of the medians with a bootstrap
95 % confidence interval (rounds resampled in pairs) and the floor.  Goal: ratio ≤ 1.10×.

Run as root: ``/opt/continuum-hub/venv/bin/python bench/spawn_latency.py [--rounds 10]``.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import secrets
import statistics
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))  # the tests' browser-like sign-in helpers

from continuum_federation.accounts import ensure_unix_user  # noqa: E402
from continuum_federation.idp import (  # noqa: E402
    DEMO_USERS,
    OpenIDProvider,
    hub_client,
    with_passwords,
)
from continuum_federation.process import free_port  # noqa: E402
from continuum_federation.slurm import load_cluster_specs, scratch_site  # noqa: E402
from fixtures.hub import admin_hub, api, hub_login, server_model, stop_server  # noqa: E402
from fixtures.slurm import sbatch_as, squeue  # noqa: E402

USER = "alice"
PHASES = re.compile(r"spawn phases user=\S+ site=\S+ job=\S+ (.*)$", re.MULTILINE)
STAMP = r"^\[I (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) "
LOCAL_STARTED = re.compile(STAMP + r".*\] Spawning .*jupyterhub-singleuser", re.MULTILINE)
LOCAL_TOOK = re.compile(STAMP + rf".*\] User {USER} took ([\d.]+) seconds to start", re.M)


def one_round(hub, idp) -> float:
    """Sign in, start the server, wait for JupyterLab's page; seconds taken (server stopped)."""
    started = time.perf_counter()
    browser = hub_login(hub, idp, USER)
    response = api(hub, "POST", f"/users/{USER}/server", json={"user_options": {}})
    assert response.status_code in (201, 202), response.text
    deadline = time.monotonic() + 240
    while not (model := server_model(hub, USER)).get("ready"):  # faster than the tests' 0.5 s
        if not model or time.monotonic() > deadline:
            problems = [line for line in log_text(hub).splitlines() if line.startswith("[E")]
            raise AssertionError(f"{hub.state_dir.name}: no server; " + "\n".join(problems[-5:]))
        time.sleep(0.1)
    lab = browser.get(f"{hub.url}/user/{USER}/lab", timeout=60)
    assert lab.status_code == 200 and "jupyter-config-data" in lab.text, lab.status_code
    elapsed = time.perf_counter() - started
    stop_server(hub, USER)
    return elapsed


def log_text(hub) -> str:
    return (hub.state_dir / "jupyterhub.log").read_text(errors="replace")


def site_phases(text: str) -> dict[str, float]:
    """Each phase's own seconds from the round's ``spawn phases`` line (offsets → steps)."""
    found = PHASES.findall(text)
    if not found:
        return {}
    offsets = [(k, float(v)) for k, v in (f.split("=") for f in found[-1].split())]
    steps, previous = {}, 0.0
    for name, at in sorted(offsets, key=lambda item: item[1]):
        steps[name], previous = max(0.0, at - previous), at
    return steps


def local_phases(text: str) -> dict[str, float]:
    """``started`` (spawn began → process started) and ``answering`` from the hub log."""
    started, took = LOCAL_STARTED.findall(text), LOCAL_TOOK.findall(text)
    if not started or not took:
        return {}
    at_started = datetime.fromisoformat(started[-1])
    at_took, seconds = datetime.fromisoformat(took[-1][0]), float(took[-1][1])
    began = at_took.timestamp() - seconds
    process = max(0.0, at_started.timestamp() - began)
    return {"started": process, "answering": max(0.0, seconds - process)}


def slurm_floor(site) -> float:
    """``sbatch`` of a ``sleep`` job as ``alice`` → ``RUNNING`` seen (seconds); cancelled after."""
    began = time.perf_counter()
    job = sbatch_as(USER, site, "#!/bin/bash\nsleep 60\n", ["--time=2", "--output=/dev/null"])
    deadline = time.monotonic() + 60
    while [job, "RUNNING"] not in squeue(site, f"--jobs={job}", "--format=%i|%T"):
        assert time.monotonic() < deadline, f"floor job {job} never ran"
        time.sleep(0.02)
    elapsed = time.perf_counter() - began
    subprocess.run(["scancel", job], env={**os.environ, **site.env()}, check=False, timeout=30)
    deadline = time.monotonic() + 30
    while squeue(site, f"--jobs={job}", "--format=%i|%T"):  # the node free for the next round
        assert time.monotonic() < deadline, f"floor job {job} not cancelled"
        time.sleep(0.1)
    return elapsed


def iqr(values: list[float]) -> tuple[float, float]:
    q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, q3


def bootstrap_ratio(
    site: list[float], local: list[float], draws: int = 4000
) -> tuple[float, float]:
    """95 % interval of median(site) / median(local), resampling rounds (pairs) with a seed."""
    rng = random.Random(16)  # noqa: S311 - statistics, not secrets
    pairs = list(zip(site, local, strict=True))
    ratios = []
    for _ in range(draws):
        sample = [rng.choice(pairs) for _ in pairs]
        ratios.append(
            statistics.median(s for s, _ in sample) / statistics.median(lo for _, lo in sample)
        )
    ratios.sort()
    return ratios[int(0.025 * draws)], ratios[int(0.975 * draws) - 1]


def median_phases(rounds: list[dict[str, float]]) -> str:
    names = [name for name in rounds[0]] if rounds and rounds[0] else []
    return "  ".join(f"{n} {statistics.median(r.get(n, 0.0) for r in rounds):.2f}" for n in names)


def main() -> None:
    parser = argparse.ArgumentParser(description="login → JupyterLab, site vs local spawner")
    parser.add_argument("--rounds", type=int, default=10, help="counted rounds (default 10)")
    parser.add_argument("--warmup", type=int, default=2, help="rounds not counted (default 2)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root (starts Slurm daemons, creates demo accounts)")
    ensure_unix_user(USER)
    specs = load_cluster_specs(REPO / "images" / "slurm" / "clusters.yaml")
    times: dict[str, list[float]] = {"site": [], "local": []}
    phases: dict[str, list[dict[str, float]]] = {"site": [], "local": []}
    floors: list[float] = []
    began = time.perf_counter()
    with scratch_site("alpha", specs["alpha"]) as (root, alpha):
        ports = {"site": free_port(), "local": free_port()}
        secret = secrets.token_hex(16)
        # one client per hub (their redirect URIs differ), with one secret
        clients = [hub_client(port, secret, f"hub-{name}") for name, port in ports.items()]
        users = with_passwords([u for u in DEMO_USERS if u["username"] == USER])
        with OpenIDProvider(root / "idp", REPO, users=users, clients=clients) as idp:
            registry = root / "sites.yaml"  # the demo registry's site alpha alone
            demo = yaml.safe_load((REPO / "hub-config" / "sites.demo.yaml").read_text())
            demo["sites"] = [s for s in demo["sites"] if s["name"] == "alpha"]
            registry.write_text(yaml.safe_dump(demo))
            sites = {"alpha": alpha}
            site = admin_hub(
                root / "site", REPO, idp, sites, ports["site"], None, "hub-site", registry
            )
            local = admin_hub(
                root / "local",
                REPO,
                idp,
                sites,
                ports["local"],
                {"JupyterHub": {"spawner_class": "localprocess"}},
                "hub-local",
                registry,
            )
            parse = {"site": site_phases, "local": local_phases}
            with site, local:
                for round_ in range(args.warmup + args.rounds):
                    for name, hub in (("site", site), ("local", local)):
                        mark = len(log_text(hub))
                        elapsed = one_round(hub, idp)
                        if round_ >= args.warmup:
                            times[name].append(elapsed)
                            phases[name].append(parse[name](log_text(hub)[mark:]))
                    if round_ >= args.warmup:
                        floors.append(slurm_floor(alpha))
                        print(
                            f"round {round_ - args.warmup + 1}: site {times['site'][-1]:.2f} s"
                            f"  local {times['local'][-1]:.2f} s  floor {floors[-1]:.2f} s",
                            flush=True,
                        )
    report(args, times, phases, floors, time.perf_counter() - began)


def report(args, times, phases, floors, wall: float) -> None:
    site_median = statistics.median(times["site"])
    local_median = statistics.median(times["local"])
    low, high = bootstrap_ratio(times["site"], times["local"])
    print(
        f"spawn_latency, login → JupyterLab ready: {args.rounds} interleaved rounds after "
        f"{args.warmup} warm-ups ({wall:.0f} s in all; load {os.getloadavg()[0]:.1f})"
    )
    for name, label in (("site", "continuum-site (Slurm alpha)"), ("local", "LocalProcessSpawner")):
        q1, q3 = iqr(times[name])
        median = statistics.median(times[name])
        print(f"  {label:29}: median {median:.2f} s  IQR {q1:.2f}–{q3:.2f}  {fmt(times[name])}")
        print(f"  {'':29}  phases (median s): {median_phases(phases[name])}")
    q1, q3 = iqr(floors)
    floor = statistics.median(floors)
    print(f"  Slurm floor, sbatch → RUNNING : median {floor:.2f} s  IQR {q1:.2f}–{q3:.2f}")
    print(
        f"  ratio site / local           : {site_median / local_median:.2f}x "
        f"(95 % CI {low:.2f}–{high:.2f}; goal ≤ 1.10x)"
    )


def fmt(values: list[float]) -> str:
    return "[" + ", ".join(f"{v:.2f}" for v in values) + "]"


if __name__ == "__main__":
    main()
