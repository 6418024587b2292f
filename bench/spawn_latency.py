"""spawn_latency: login → JupyterLab ready, ``continuum-site`` on an idle Slurm site vs
JupyterHub's ``LocalProcessSpawner``, side by side in one run.

Starts a private munge, the demo's Slurm site ``alpha``, the OpenID provider and two hubs that
differ only in their spawner.  Each round signs ``alice`` in through the provider's login page
(a ``requests`` session, like a browser), starts her server, and stops the clock when
``/user/alice/lab`` answers 200 through the proxy.  Rounds alternate between the hubs; one
warm-up round each is not counted.  Prints the medians and their ratio (goal ≤ 1.10×).

Run as root: ``/opt/continuum-hub/venv/bin/python bench/spawn_latency.py [--rounds 5]``.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import time
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
from fixtures.hub import admin_hub, api, hub_login, stop_server, wait_for_server  # noqa: E402

USER = "alice"


def one_round(hub, idp) -> float:
    started = time.perf_counter()
    browser = hub_login(hub, idp, USER)
    response = api(hub, "POST", f"/users/{USER}/server", json={"user_options": {}})
    assert response.status_code in (201, 202), response.text
    wait_for_server(hub, USER)
    lab = browser.get(f"{hub.url}/user/{USER}/lab", timeout=60)
    assert lab.status_code == 200, lab.status_code
    elapsed = time.perf_counter() - started
    stop_server(hub, USER)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description="login → JupyterLab, site vs local spawner")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root (starts Slurm daemons, creates demo accounts)")
    ensure_unix_user(USER)
    specs = load_cluster_specs(REPO / "images" / "slurm" / "clusters.yaml")
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
            with site, local:
                times: dict[str, list[float]] = {"site": [], "local": []}
                for round_ in range(args.rounds + 1):
                    for name, hub in (("site", site), ("local", local)):
                        elapsed = one_round(hub, idp)
                        if round_:  # round 0 warms caches up
                            times[name].append(elapsed)
    site_median = statistics.median(times["site"])
    local_median = statistics.median(times["local"])
    print(f"spawn_latency, login → JupyterLab ready, median of {args.rounds} (after 1 warm-up)")
    print(f"  continuum-site (Slurm site alpha): {site_median:.2f} s  {fmt(times['site'])}")
    print(f"  LocalProcessSpawner              : {local_median:.2f} s  {fmt(times['local'])}")
    print(f"  ratio site / local               : {site_median / local_median:.2f}x (goal ≤ 1.10x)")


def fmt(values: list[float]) -> str:
    return "[" + ", ".join(f"{v:.2f}" for v in values) + "]"


if __name__ == "__main__":
    main()
