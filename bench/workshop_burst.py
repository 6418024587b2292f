"""workshop_burst: a workshop's first minute, N participants at once, Slurm site vs local spawner.

Starts a private munge, the demo's Slurm site ``alpha`` (its node declared with N CPUs and
2 GiB per job, so that every participant's server fits at once), the OpenID provider with an
instructor ``ws00`` and N generated participants ``ws01`` … (all members of the HEP VO, fresh
passwords, Unix accounts of the same name, created if missing and kept) and two hubs that
differ only in their spawner: ``continuum-site`` (servers are Slurm jobs on ``alpha``) and
JupyterHub's ``LocalProcessSpawner``.

The burst, on one hub and then on the other: the instructor signs in first (``--cold``: nobody
does, as on a hub started just before the workshop), then all N participants at once from a
thread pool: each signs in through the provider's login page (a ``requests`` session, like a
browser), starts their server (``POST /hub/api/users/<name>/server``, the admin token, as
``spawn_latency``) and stops the clock when ``/user/<name>/lab`` answers 200 through the proxy.
The single-user server is the same as in ``spawn_latency``: the hub's default command with
JupyterLab, not a lean server.  Meanwhile a sampler sends ``GET /hub/api/users/<participant>``
(admin token, participants in turn) back to back, 0.2 s apart, for the hub's API latency during
the burst.  Servers are stopped after each burst.

Prints per hub: failures (grouped by reason), the time from the burst's start to the last
sign-in done, p50/p95 login → JupyterLab ready, the hub's API p50/p95 during the burst; and the
ratios site / local.  The issue's goal: 0 failures at N = 60, all joined within 60 s.  The
issue's 20 real Chromium sessions are not part of this script.

About 3 minutes at the default N = 20 on the (shared) 2-core test machine.  Run as root:
``/opt/continuum-hub/venv/bin/python bench/workshop_burst.py [--users 60] [--cold]``.
"""

from __future__ import annotations

import argparse
import copy
import os
import re
import secrets
import statistics
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests
import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))  # the tests' browser-like sign-in helpers

from continuum_federation.accounts import ensure_unix_user  # noqa: E402
from continuum_federation.idp import (  # noqa: E402
    VO_HEP,
    OpenIDProvider,
    entitlement,
    hub_client,
    with_passwords,
)
from continuum_federation.process import free_port  # noqa: E402
from continuum_federation.slurm import load_cluster_specs, scratch_site  # noqa: E402
from fixtures.hub import admin_hub, api, hub_login, stop_server, wait_for_server  # noqa: E402

HUBS = ("site", "local")
INSTRUCTOR = "ws00"


def participants(count: int, first: int = 1) -> list[dict[str, Any]]:
    """Generated workshop participants: HEP VO members ``ws01`` … (no passwords yet)."""
    return [
        {
            "username": f"ws{number:02d}",
            "name": f"Workshop Participant {number}",
            "email": f"ws{number:02d}@continuum.example",
            "voperson_id": f"ws{number:02d}@id.continuum.example",
            "entitlements": [entitlement(VO_HEP)],
        }
        for number in range(first, count + 1)
    ]


class Sampler:
    """``GET`` the API URLs in turn with the admin token, ``pause`` apart, in a thread.

    A 404 (a participant not signed in yet) is an answer; errors are 5xx and no answer.
    """

    def __init__(self, urls: list[str], token: str, pause: float = 0.2) -> None:
        self.urls = urls
        self.headers = {"Authorization": f"token {token}"}
        self.pause = pause
        self.latencies: list[float] = []
        self.errors = 0
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        session = requests.Session()
        number = 0
        while not self.stopped.is_set():
            url = self.urls[number % len(self.urls)]
            number += 1
            started = time.perf_counter()
            try:
                response = session.get(url, headers=self.headers, timeout=60)
                ok = response.status_code in (200, 404)
            except requests.RequestException:
                ok = False
            self.latencies.append(time.perf_counter() - started)
            self.errors += not ok
            self.stopped.wait(self.pause)

    def __enter__(self) -> Sampler:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.thread.join()


def join(hub: Any, idp: OpenIDProvider, user: str, t0: float) -> dict[str, Any]:
    """One participant: sign in, start the server, wait for JupyterLab; times from ``t0``."""
    started = time.perf_counter()
    result: dict[str, Any] = {"user": user}
    try:
        browser = hub_login(hub, idp, user)
        result["signed_in"] = time.perf_counter() - t0
        response = api(hub, "POST", f"/users/{user}/server", json={"user_options": {}})
        if response.status_code not in (201, 202):
            raise RuntimeError(f"spawn: {response.status_code} {response.text[:200]}")
        wait_for_server(hub, user)
        lab = browser.get(f"{hub.url}/user/{user}/lab", timeout=120)
        if lab.status_code != 200:
            raise RuntimeError(f"lab: {lab.status_code}")
        result["ready"] = time.perf_counter() - started
    except Exception as error:  # a failed participant is a figure, not the end of the run
        result["error"] = f"{type(error).__name__}: {str(error).splitlines()[0][:200]}"
    return result


def burst(hub: Any, idp: OpenIDProvider, users: list[str]) -> dict[str, Any]:
    """All ``users`` join ``hub`` at once; then their servers are stopped."""
    urls = [f"{hub.url}/hub/api/users/{user}" for user in users]
    with Sampler(urls, hub.api_token) as sampler:
        t0 = time.perf_counter()
        with ThreadPoolExecutor(len(users)) as pool:
            results = list(pool.map(lambda user: join(hub, idp, user, t0), users))
        wall = time.perf_counter() - t0
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda user: quiet_stop(hub, user), users))
    return {
        "results": results,
        "wall": wall,
        "api": sampler.latencies,
        "api_errors": sampler.errors,
    }


def hub_errors(log: Path, lines: int = 30) -> str:
    """The first ``lines`` error lines (and tracebacks) of a hub's log."""
    found = [
        line
        for line in log.read_text(errors="replace").splitlines()
        if line.startswith(("[E ", "[ERROR", "Traceback", "    ")) or "Error:" in line
    ]
    return "\n".join(f"    | {line[:200]}" for line in found[:lines])


def quiet_stop(hub: Any, user: str) -> None:
    try:
        stop_server(hub, user, timeout=120)
    except AssertionError as error:
        print(f"  (server of {user} on {hub.url} not stopped: {str(error)[:120]})")


def percentile(values: list[float], q: int) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description="workshop burst: N participants at once")
    parser.add_argument("--users", type=int, default=20, help="participants (issue goal: 60)")
    parser.add_argument(
        "--cold", action="store_true", help="no sign-in before the burst (a just started hub)"
    )
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root (starts Slurm daemons, creates participant accounts)")
    people = with_passwords(participants(args.users, first=0))  # ws00: the instructor
    names = [person["username"] for person in people if person["username"] != INSTRUCTOR]
    for person in people:
        ensure_unix_user(person["username"])
    spec = copy.deepcopy(load_cluster_specs(REPO / "images" / "slurm" / "clusters.yaml")["alpha"])
    for node in spec["nodes"]:  # declared: one core and the default 2 GiB per participant
        node["cpus"] = max(node["cpus"], args.users)
        node["memory_mb"] = max(node["memory_mb"], 2048 * args.users + 1024)
    outcome: dict[str, dict[str, Any]] = {}
    with scratch_site("alpha", spec) as (root, alpha):
        ports = {name: free_port() for name in HUBS}
        secret = secrets.token_hex(16)
        clients = [hub_client(port, secret, f"hub-{name}") for name, port in ports.items()]
        with OpenIDProvider(root / "idp", REPO, users=people, clients=clients) as idp:
            registry = root / "sites.yaml"  # the demo registry's site alpha alone
            demo = yaml.safe_load((REPO / "hub-config" / "sites.demo.yaml").read_text())
            demo["sites"] = [s for s in demo["sites"] if s["name"] == "alpha"]
            registry.write_text(yaml.safe_dump(demo))
            extra = {"site": None, "local": {"JupyterHub": {"spawner_class": "localprocess"}}}
            for name in HUBS:
                hub = admin_hub(
                    root / name,
                    REPO,
                    idp,
                    {"alpha": alpha},
                    ports[name],
                    extra[name],
                    f"hub-{name}",
                    registry,
                )
                with hub:
                    if not args.cold:  # the instructor signs in before the participants
                        hub_login(hub, idp, INSTRUCTOR)
                    outcome[name] = burst(hub, idp, names)
                    errors = Counter(
                        re.sub(r" at http\S+", "", r["error"])
                        for r in outcome[name]["results"]
                        if "error" in r
                    )
                    for error, times in errors.most_common():
                        print(f"  {name}: {times} × {error}")
                    if errors:  # the hub's own errors, before its folder is removed
                        print(hub_errors(root / name / "jupyterhub.log"))
    report(args.users, outcome, args.cold)


def report(count: int, outcome: dict[str, dict[str, Any]], cold: bool) -> None:
    labels = {"site": "continuum-site (Slurm alpha)", "local": "LocalProcessSpawner        "}
    before = "nobody signed in before (cold hub)" if cold else "the instructor signed in first"
    print(f"workshop_burst, {count} participants at once ({before}), login → JupyterLab ready")
    figures: dict[str, dict[str, float]] = {}
    for name, data in outcome.items():
        ready = [r["ready"] for r in data["results"] if "ready" in r]
        signed = [r["signed_in"] for r in data["results"] if "signed_in" in r]
        failures = count - len(ready)
        figures[name] = {
            "p50": percentile(ready, 50),
            "p95": percentile(ready, 95),
            "api95": percentile(data["api"], 95),
        }
        print(
            f"  {labels[name]}: failures {failures}/{count}, all signed in after "
            f"{max(signed, default=float('nan')):.1f} s, ready p50 {figures[name]['p50']:.1f} s "
            f"p95 {figures[name]['p95']:.1f} s (burst {data['wall']:.1f} s); hub API p50 "
            f"{percentile(data['api'], 50) * 1000:.0f} ms p95 {figures[name]['api95'] * 1000:.0f}"
            f" ms ({len(data['api'])} requests, {data['api_errors']} errors)"
        )
    site, local = figures["site"], figures["local"]
    print(
        f"  ratio site / local: p50 {site['p50'] / local['p50']:.2f}x, "
        f"p95 {site['p95'] / local['p95']:.2f}x, hub API p95 {site['api95'] / local['api95']:.2f}x"
    )
    print("  (goal at N = 60: 0 failures, all joined within 60 s)")


if __name__ == "__main__":
    main()
