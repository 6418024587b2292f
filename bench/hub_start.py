"""hub_start: hub process start → ``/hub/health`` 200 → every running server verified, with a
database of N users (M of them running), ``continuum-site`` vs ``LocalProcessSpawner``.

Builds one SQLite hub database (JupyterHub's own ORM) with N users, each with a default server
row and an ``auth_state`` shaped like our authenticator's, encrypted with the hub's crypt key
(``CryptKeeper``, as JupyterHub stores it).  M of the servers are running:

* **site**: M real Slurm jobs (``sleep``, submitted as ``alice`` with ``sbatch`` like the
  servers' jobs) on a scratch site ``alpha``; each server's state is what ``SiteSpawner.get_state``
  saves (``job_id``, ``request`` with ``site``, ``account``);
* **local**: M real local ``sleep`` processes (run as root); each state is ``{"pid": …}``.

Both hubs verify a server by polling it and then waiting for its URL to answer
(``_wait_up``); that URL is answered by a stub HTTP listener in this process (one port per
server), the same for both.  Each round copies the pristine database in, starts the hub and
times process start → ``/hub/health`` 200 and → the last "<user> still running" log line;
rounds alternate between the spawners.  Prints both, their ratio, and the scheduler status
calls the site hub made (``continuum_scheduler_status_calls_total`` from ``/hub/metrics``; goal
one per site).  Run as root:
``/opt/continuum-hub/venv/bin/python bench/hub_start.py [--users 10000] [--running 100]
[--rounds 2] [--logs DIR]`` (``--logs``: each round's hub log, to see where the seconds went —
JupyterHub starts its managed services one after the other and waits for each).
"""

from __future__ import annotations

import argparse
import copy
import http.server
import json
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import jupyterhub
import requests
import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))  # the tests' hub helpers

from poll_cost import wait_running  # noqa: E402 - beside this script

from continuum_federation.accounts import ensure_unix_user  # noqa: E402
from continuum_federation.hub import read_or_create_secret  # noqa: E402
from continuum_federation.idp import (  # noqa: E402
    DEMO_USERS,
    OpenIDProvider,
    hub_client,
    with_passwords,
)
from continuum_federation.process import free_port  # noqa: E402
from continuum_federation.slurm import load_cluster_specs, scratch_site  # noqa: E402
from fixtures.hub import admin_hub  # noqa: E402

ACCOUNT = "alice"  # the POSIX account the servers' jobs run as


class Ok(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.send_header("X-JupyterHub-Version", jupyterhub.__version__)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


def stub_servers(count: int) -> list[int]:
    ports = []
    for _ in range(count):
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Ok)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        ports.append(server.server_address[1])
    return ports


def submit_jobs(cluster, count: int) -> list[str]:
    env = {**os.environ, **cluster.env()}
    ids = []
    for i in range(count):
        out = subprocess.run(
            [
                *("sudo", "-n", "-u", ACCOUNT, "--preserve-env=SLURM_CONF", "sbatch"),
                *("--parsable", "--cpus-per-task=1", "--mem=64M", "--time=60"),
                *(f"--job-name=jupyterhub-bench{i}", "--output=/dev/null", "--chdir=/tmp"),
                "--wrap=sleep 3600",
            ],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        ids.append(out.strip().split(";")[0])
    return wait_running(env, ids, 180)


def build_db(path: Path, crypt_key: str, users: int, running: dict[str, tuple[int, dict]]) -> None:
    """``running``: username → (stub port, spawner state)."""
    os.environ["JUPYTERHUB_CRYPT_KEY"] = crypt_key
    from jupyterhub import orm
    from jupyterhub.crypto import CryptKeeper

    fernet = CryptKeeper.instance().fernet
    db = orm.new_session_factory(f"sqlite:///{path}")()
    now = datetime.now(UTC).replace(tzinfo=None)
    names = [f"bench{i:05d}" for i in range(users)]
    # the default role, as a hub that has been running holds it for every user (else the
    # first start grants it one commit per user: ~20 s for 10,000 here)
    role = orm.Role(name="user", description="Standard user privileges", scopes=["self"])
    db.add(role)
    for name in names:
        auth_state = {  # as OAuthenticator.build_auth_state_dict + our provider/issuer/expiry
            "access_token": secrets.token_urlsafe(32),
            "refresh_token": secrets.token_urlsafe(32),
            "id_token": secrets.token_urlsafe(300),
            "scope": ["openid", "profile", "email", "eduperson_entitlement"],
            "token_response": {"token_type": "Bearer", "expires_in": 3600},
            "oauth_user": {"sub": name, "preferred_username": name, "email": f"{name}@x.org"},
            "provider": "continuum",
            "issuer": "http://127.0.0.1/idp",
            "expires_at": int(time.time()) + 3600,
        }
        user = orm.User(name=name, created=now, last_activity=now)
        user.encrypted_auth_state = fernet.encrypt(json.dumps(auth_state).encode())
        user.roles.append(role)
        db.add(user)
        spawner = orm.Spawner(user=user, name="")
        if name in running:
            port, state = running[name]
            spawner.server = orm.Server(ip="127.0.0.1", port=port, base_url=f"/user/{name}/")
            spawner.state = state
            spawner.started = now
        db.add(spawner)
    db.commit()
    db.close()


def timed_start(hub, running: int, timeout: float = 300.0) -> tuple[float, float, int, float]:
    """(s to /hub/health 200, s to all servers verified, servers found stopped, the hub's own
    "Initialized N spawners in S seconds")."""
    log = hub.state_dir / "jupyterhub.log"
    if log.exists():
        log.unlink()
    started = time.perf_counter()
    hub.start(timeout=timeout)
    health = time.perf_counter() - started
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace")
        verified = len(re.findall(r" bench\d+ still running", text))
        lost = len(re.findall(r"appears to have stopped|does not appear to be running", text))
        if verified + lost >= running:
            done = time.perf_counter() - started
            init = re.search(r"Initialized \d+ spawners in ([0-9.]+) seconds", text)
            return health, done, lost, float(init.group(1)) if init else float("nan")
        time.sleep(0.05)
    raise SystemExit(f"{hub.state_dir.name}: {verified} of {running} verified\n{hub.log()}")


def status_calls(hub) -> str:
    try:
        text = requests.get(
            f"{hub.url}/hub/metrics",
            headers={"Authorization": f"token {hub.api_token}"},
            timeout=10,
        ).text
    except requests.RequestException as exc:
        return f"n/a ({exc})"
    found = re.findall(r"continuum_scheduler_status_calls_total\{([^}]*)\} ([0-9.e+]+)", text)
    return ", ".join(f"{labels}: {float(v):.0f}" for labels, v in found) or "n/a"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--running", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--logs", type=Path, help="copy each round's hub log into this folder")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root (starts Slurm daemons, submits as a demo user)")
    ensure_unix_user(ACCOUNT)
    spec = copy.deepcopy(load_cluster_specs(REPO / "images" / "slurm" / "clusters.yaml")["alpha"])
    for node in spec["nodes"]:  # room for every server's job at once
        node["cpus"], node["memory_mb"] = max(64, args.running), 65536
    sleepers: list[subprocess.Popen] = []
    with scratch_site("alpha", spec) as (root, alpha):
        ports = {"site": free_port(), "local": free_port()}
        secret = secrets.token_hex(16)
        clients = [hub_client(port, secret, f"hub-{name}") for name, port in ports.items()]
        users = with_passwords([u for u in DEMO_USERS if u["username"] == ACCOUNT])
        with OpenIDProvider(root / "idp", REPO, users=users, clients=clients) as idp:
            registry = root / "sites.yaml"
            demo = yaml.safe_load((REPO / "hub-config" / "sites.demo.yaml").read_text())
            demo["sites"] = [s for s in demo["sites"] if s["name"] == "alpha"]
            registry.write_text(yaml.safe_dump(demo))
            hubs = {}
            for name, extra in (("site", None), ("local", {"spawner_class": "localprocess"})):
                hub = admin_hub(
                    root / name,
                    REPO,
                    idp,
                    {"alpha": alpha},
                    ports[name],
                    {"JupyterHub": extra} if extra else None,
                    f"hub-{name}",
                    registry,
                )
                hub.extra_config["JupyterHub"]["load_roles"][0]["scopes"].append("read:metrics")
                (root / name).mkdir(mode=0o700)
                hubs[name] = hub
            crypt_key = read_or_create_secret(root / "site" / "crypt_key")
            shutil.copy(root / "site" / "crypt_key", root / "local" / "crypt_key")

            stubs = stub_servers(args.running)
            made = time.perf_counter()
            jobs = submit_jobs(alpha, args.running)
            print(f"{args.running} Slurm jobs running in {time.perf_counter() - made:.1f} s")
            sleepers = [subprocess.Popen(["sleep", "3600"]) for _ in range(args.running)]
            request = {  # JobRequest.values() of a default server on alpha
                "site": "alpha",
                "partition": demo["sites"][0]["partitions"][0]["name"],
                "cores": 1,
                "memory_gb": 1,
                "gpus": 0,
                "walltime_minutes": 60,
            }
            running_users = [
                f"bench{i:05d}" for i in range(0, args.users, args.users // args.running)
            ]
            running_users = running_users[: args.running]
            states = {
                "site": {
                    u: (
                        p,
                        {
                            "job_id": j,
                            "job_status": "RUNNING",
                            "request": request,
                            "account": ACCOUNT,
                        },
                    )
                    for u, p, j in zip(running_users, stubs, jobs, strict=True)
                },
                "local": {
                    u: (p, {"pid": s.pid})
                    for u, p, s in zip(running_users, stubs, sleepers, strict=True)
                },
            }
            pristine = {}
            for name in hubs:
                made = time.perf_counter()
                pristine[name] = root / f"{name}.sqlite"
                build_db(pristine[name], crypt_key, args.users, states[name])
                print(
                    f"{name} database ({args.users} users) built in "
                    f"{time.perf_counter() - made:.1f} s"
                )
            results: dict[str, list[tuple[float, float, int, float]]] = {"site": [], "local": []}
            calls = []
            for _ in range(args.rounds):
                for name, hub in hubs.items():
                    shutil.copy(pristine[name], hub.state_dir / "jupyterhub.sqlite")
                    try:
                        results[name].append(timed_start(hub, args.running))
                        if name == "site":
                            calls.append(status_calls(hub))
                    finally:
                        hub.stop()
                        if args.logs:
                            args.logs.mkdir(parents=True, exist_ok=True)
                            log = hub.state_dir / "jupyterhub.log"
                            shutil.copy(log, args.logs / f"{name}-{len(results[name])}.log")
    for proc in sleepers:
        proc.kill()
    print(
        f"hub_start: {args.users} users, {args.running} running servers, "
        f"{args.rounds} rounds per spawner, interleaved (SQLite)"
    )
    med = {}
    for name, label in (("site", "continuum-site (Slurm jobs)"), ("local", "LocalProcessSpawner")):
        health = [r[0] for r in results[name]]
        ready = [r[1] for r in results[name]]
        lost = [r[2] for r in results[name]]
        init = [r[3] for r in results[name]]
        med[name] = (statistics.median(health), statistics.median(ready))
        print(
            f"  {label:28s}: health {fmt(health)} s, all verified {fmt(ready)} s, "
            f"lost {lost}, hub's init_spawners {fmt(init)} s"
        )
    print(
        f"  ratio site / local (median) : health {med['site'][0] / med['local'][0]:.2f}x, "
        f"all verified {med['site'][1] / med['local'][1]:.2f}x (goal < 5 s and ≤ 1.2x)"
    )
    for i, c in enumerate(calls):
        print(f"  status calls, site round {i + 1}: {c} (goal: 1 per site)")


def fmt(values: list[float]) -> str:
    return "[" + ", ".join(f"{v:.2f}" for v in values) + "]"


if __name__ == "__main__":
    main()
