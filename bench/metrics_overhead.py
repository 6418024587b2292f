"""metrics_overhead: what Continuum's metrics cost the hub, and the usage collector a site.

**Hub API latency, metrics on vs off**, side by side in one run.  Starts a private munge, the
demo's Slurm site ``alpha``, the OpenID provider and two hubs that differ only in
``ContinuumMetrics.enabled``:

* **on** (the default): the Continuum collectors in ``/hub/metrics`` and the per-site probe
  (``scontrol ping`` every ``site_probe_interval``, default 30 s);
* **off**: ``/hub/metrics`` serves JupyterHub's own metrics only (the collectors are not
  registered) and no probe runs.

``alice`` signs in on each hub and starts a server on ``alpha`` (so the spawner's status polls
run on both).  Throughout the run a scraper fetches both hubs' ``/hub/metrics`` every
``--scrape-interval`` seconds with the scrape token, as Prometheus would (1 s, as in the tests:
harsher than the demo's 15 s).  The load: ``--concurrency`` clients (keep-alive sessions) send
``--block`` requests back to back, half ``GET /hub/api/users/alice`` (admin token) and half
``GET /hub/api/continuum/job`` (the server's own token, read as root from its environment, as
the Lab's session panel asks); both hubs get their block at the same time, so that what else
the shared machine does hits both alike, for ``--rounds`` rounds after one warm-up round.
Prints p50/p95 per endpoint and hub, the ratios on/off (goal: p95 within 5 %), the noise (one
hub's odd rounds against its even ones), and each hub's scrape size and duration.

**Collector cost**: the usage collector's accounting calls per site per interval with 10 and
with 500 unfinished jobs per site on two sites.  The demo's scratch site has no slurmdbd, and
500 real jobs do not fit the 2-core test machine, so this part runs the hub's real
``UsageCollector`` over a real ledger (SQLite) with a counting transport at the boundary that
answers ``sacct`` for the ids asked, in Slurm 22.05's ``--parsable2`` form (running jobs for
the first intervals, completed ones in the last, after which none is left unfinished).  Prints
commands per site per interval and each interval's wall time (goal: 1 per site whatever the
number of jobs).

About 4 minutes on the (shared) 2-core test machine.  Run as root:
``/opt/continuum-hub/venv/bin/python bench/metrics_overhead.py [--rounds 20]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))  # the tests' hub helpers

from continuum_federation.accounts import ensure_unix_user  # noqa: E402
from continuum_federation.idp import (  # noqa: E402
    DEMO_USERS,
    OpenIDProvider,
    hub_client,
    with_passwords,
)
from continuum_federation.process import free_port  # noqa: E402
from continuum_federation.prometheus import write_token_file  # noqa: E402
from continuum_federation.slurm import load_cluster_specs, scratch_site  # noqa: E402
from continuum_spawners.schedulers.transport import CommandResult  # noqa: E402
from fixtures.hub import (  # noqa: E402
    admin_hub,
    api,
    hub_login,
    server_environ,
    stop_server,
    wait_for_server,
)

USER = "alice"
HUBS = ("on", "off")
ENDPOINTS = {"users": f"/hub/api/users/{USER}", "job": "/hub/api/continuum/job"}
#: hub → endpoint → one list of latencies (seconds) per round
Rounds = dict[str, dict[str, list[list[float]]]]


class Scraper:
    """Fetches every hub's ``/hub/metrics`` every ``interval`` seconds in a thread."""

    def __init__(self, urls: dict[str, str], token: str, interval: float) -> None:
        self.urls = urls
        self.headers = {"Authorization": f"Bearer {token}"}
        self.interval = interval
        self.durations: dict[str, list[float]] = {name: [] for name in urls}
        self.sizes: dict[str, int] = {}
        self.continuum_lines: dict[str, int] = {}
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        session = requests.Session()
        while not self.stopped.is_set():
            for name, url in self.urls.items():
                started = time.perf_counter()
                response = session.get(url, headers=self.headers, timeout=30)
                self.durations[name].append(time.perf_counter() - started)
                response.raise_for_status()
                self.sizes[name] = len(response.content)
                self.continuum_lines[name] = sum(
                    1 for line in response.text.splitlines() if line.startswith("continuum_")
                )
            self.stopped.wait(self.interval)


def block(
    base: str, headers: dict[str, dict[str, str]], count: int, sessions: list[requests.Session]
) -> dict[str, list[float]]:
    """``count`` requests, alternating the endpoints, from ``len(sessions)`` clients at once."""
    names = list(ENDPOINTS)

    def client(index: int) -> list[tuple[str, float]]:
        session = sessions[index]
        timings = []
        for number in range(index, count, len(sessions)):
            name = names[number % len(names)]
            started = time.perf_counter()
            response = session.get(base + ENDPOINTS[name], headers=headers[name], timeout=30)
            timings.append((name, time.perf_counter() - started))
            if response.status_code != 200:
                raise SystemExit(f"{name}: {response.status_code} {response.text[:200]}")
        return timings

    latencies: dict[str, list[float]] = {name: [] for name in names}
    with ThreadPoolExecutor(len(sessions)) as pool:
        for timings in pool.map(client, range(len(sessions))):
            for name, seconds in timings:
                latencies[name].append(seconds)
    return latencies


def percentile(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def hub_api_latency(args: argparse.Namespace) -> None:
    specs = load_cluster_specs(REPO / "images" / "slurm" / "clusters.yaml")
    with scratch_site("alpha", specs["alpha"]) as (root, alpha):
        ports = {name: free_port() for name in HUBS}
        secret = secrets.token_hex(16)
        clients = [hub_client(port, secret, f"hub-{name}") for name, port in ports.items()]
        users = with_passwords([u for u in DEMO_USERS if u["username"] == USER])
        token_file = root / "scrape-token"
        scrape_token = write_token_file(token_file)
        with OpenIDProvider(root / "idp", REPO, users=users, clients=clients) as idp:
            registry = root / "sites.yaml"  # the demo registry's site alpha alone
            demo = yaml.safe_load((REPO / "hub-config" / "sites.demo.yaml").read_text())
            demo["sites"] = [s for s in demo["sites"] if s["name"] == "alpha"]
            registry.write_text(yaml.safe_dump(demo))
            hubs = {
                name: admin_hub(
                    root / f"hub-{name}",
                    REPO,
                    idp,
                    {"alpha": alpha},
                    ports[name],
                    {
                        "MetricsScrape": {"token_file": str(token_file)},
                        "ContinuumMetrics": {"enabled": name == "on"},
                    },
                    f"hub-{name}",
                    registry,
                )
                for name in HUBS
            }
            with hubs["on"], hubs["off"]:
                run_load(args, hubs, idp, scrape_token)


def run_load(
    args: argparse.Namespace, hubs: dict[str, Any], idp: OpenIDProvider, scrape_token: str
) -> None:
    """Alice's server on each hub, then both hubs under load at once, the scraper running."""
    headers: dict[str, dict[str, dict[str, str]]] = {}
    for name, hub in hubs.items():
        hub_login(hub, idp, USER)
        response = api(hub, "POST", f"/users/{USER}/server", json={"user_options": {}})
        assert response.status_code in (201, 202), response.text
        wait_for_server(hub, USER)
        server_token = server_environ(hub, USER)["JUPYTERHUB_API_TOKEN"]
        headers[name] = {
            "users": {"Authorization": f"token {hub.api_token}"},
            "job": {"Authorization": f"token {server_token}"},
        }
    scraper = Scraper(
        {name: f"{hub.url}/hub/metrics" for name, hub in hubs.items()},
        scrape_token,
        args.scrape_interval,
    )
    scraper.thread.start()
    # per hub, endpoint and round: the requests' latencies
    latencies: Rounds = {name: {endpoint: [] for endpoint in ENDPOINTS} for name in hubs}
    sessions = {name: [requests.Session() for _ in range(args.concurrency)] for name in hubs}

    def load(name: str) -> dict[str, list[float]]:
        return block(hubs[name].url, headers[name], args.block, sessions[name])

    try:
        with ThreadPoolExecutor(len(hubs)) as both:
            for round_ in range(args.rounds + 1):
                # both hubs at once: whatever else the machine does hits both alike
                timings = dict(zip(HUBS, both.map(load, HUBS), strict=True))
                if round_:  # round 0 warms connections and caches up
                    for name, by_endpoint in timings.items():
                        for endpoint, values in by_endpoint.items():
                            latencies[name][endpoint].append(values)
    finally:
        scraper.stopped.set()
        scraper.thread.join(timeout=60)
        for hub in hubs.values():
            stop_server(hub, USER)
    if scraper.continuum_lines.get("off"):
        raise SystemExit("metrics off, yet /hub/metrics has Continuum samples: the switch failed")
    report(args, latencies, scraper)


def report(args: argparse.Namespace, latencies: Rounds, scraper: Scraper) -> None:
    def flat(rounds: list[list[float]], parity: int | None = None) -> list[float]:
        return [v for i, values in enumerate(rounds) if parity in (None, i % 2) for v in values]

    count = len(flat(latencies["on"]["users"]))
    print(
        f"metrics_overhead: hub API latency, Continuum metrics on vs off, {count} requests per "
        f"endpoint and hub ({args.rounds} rounds, both hubs loaded at once by "
        f"{args.concurrency} clients each, both scraped every {args.scrape_interval:g} s)"
    )
    for endpoint, path in ENDPOINTS.items():
        on, off = flat(latencies["on"][endpoint]), flat(latencies["off"][endpoint])
        p50 = (statistics.median(on), statistics.median(off))
        p95 = (percentile(on, 95), percentile(off, 95))
        print(f"  GET {path}")
        print(f"    on : p50 {p50[0] * 1000:6.2f} ms   p95 {p95[0] * 1000:6.2f} ms")
        print(f"    off: p50 {p50[1] * 1000:6.2f} ms   p95 {p95[1] * 1000:6.2f} ms")
        print(
            f"    ratio on/off: p50 {p50[0] / p50[1]:.3f}x   p95 {p95[0] / p95[1]:.3f}x "
            "(goal: p95 ≤ 1.05x)"
        )
        # the same hub against itself (odd vs even rounds): how much of a ratio is noise
        noise = [
            percentile(flat(latencies[name][endpoint], 1), 95)
            / percentile(flat(latencies[name][endpoint], 0), 95)
            for name in HUBS
        ]
        print(f"    noise, p95 odd/even rounds of one hub: on {noise[0]:.3f}x, off {noise[1]:.3f}x")
    for name in HUBS:
        durations = scraper.durations[name]
        print(
            f"  /hub/metrics {name:3}: {scraper.sizes.get(name, 0) / 1024:6.1f} KiB, "
            f"{scraper.continuum_lines.get(name, 0):4d} Continuum samples, "
            f"{len(durations)} scrapes, median {statistics.median(durations) * 1000:.1f} ms"
        )


class CountingSacct:
    """A site's transport at the boundary: counts the commands and answers ``sacct`` for the
    job ids asked (running jobs, or completed ones once ``final`` is set)."""

    def __init__(self) -> None:
        self.calls = 0
        self.final = False

    async def run(self, argv: list[str], **_: Any) -> CommandResult:
        self.calls += 1
        assert argv[0] == "sacct", argv
        ids = next(a for a in argv if a.startswith("--jobs=")).split("=", 1)[1].split(",")
        state, end = ("COMPLETED", "2026-12-05T05:00:00") if self.final else ("RUNNING", "Unknown")
        lines = (
            f"{i}|{state}|2026-12-05T04:00:00|{end}|3600|2|billing=2,cpu=2,mem=2G,node=1|7200|0|{i}"
            for i in ids
        )
        return CommandResult(0, "\n".join(lines) + "\n", "")


#: a 2-core 1-hour server of alice's, as the spawner records it
SERVER = {
    "kind": "server",
    "label": "",
    "user": USER,
    "vo": None,
    "partition": "batch",
    "req_cores": 2,
    "req_gpus": 0,
    "req_memory_gb": 2.0,
    "req_walltime_minutes": 60,
}


def collector_cost(job_counts: tuple[int, ...], intervals: int = 3) -> None:
    """One collection per interval over two sites with ``count`` unfinished jobs each."""
    from continuum_hub.usage.collector import UsageCollector
    from continuum_spawners.ledger import UsageJob
    from continuum_spawners.schedulers import monitor_for

    print(
        "metrics_overhead: usage collector, accounting commands per site per interval "
        "(real UsageCollector and SQLite ledger; sacct answered at the transport, see above)"
    )
    submitted = datetime(2026, 12, 5, 3, 0, tzinfo=UTC)
    for count in job_counts:
        with tempfile.TemporaryDirectory(prefix="continuum-bench-") as tmp:
            registry = yaml.safe_load((REPO / "hub-config" / "sites.demo.yaml").read_text())
            for site in registry["sites"]:  # two sites, reached nowhere: the transport answers
                site["connection"]["env"] = {"SLURM_CONF": f"{tmp}/{site['name']}.conf"}
            path = Path(tmp) / "sites.yaml"
            path.write_text(yaml.safe_dump(registry))
            collector = UsageCollector(
                db_url=f"sqlite:///{tmp}/usage.sqlite", registry_path=str(path)
            )
            transports = {}
            for site in collector.registry():
                transports[site.name] = monitor_for(site).transport = CountingSacct()
                for number in range(count):
                    collector.ledger.record_submission(
                        UsageJob(
                            **SERVER,
                            site=site.name,
                            job_id=str(1000 + number),
                            submitted_at=submitted,
                        )
                    )
            calls: dict[str, list[int]] = {name: [] for name in transports}
            seconds = []
            for interval in range(intervals):
                for transport in transports.values():  # the last interval: every job ended
                    transport.final = interval == intervals - 1
                before = {name: t.calls for name, t in transports.items()}
                started = time.perf_counter()
                asyncio.run(collector.collect())
                seconds.append(time.perf_counter() - started)
                for name, transport in transports.items():
                    calls[name].append(transport.calls - before[name])
            left = sum(len(collector.ledger.unfinished(name)) for name in transports)
        per_site = ", ".join(f"{name} {values}" for name, values in calls.items())
        print(
            f"  {count:4d} jobs per site: commands per interval: {per_site} (goal: 1 each); "
            f"interval wall time {', '.join(f'{s:.2f}' for s in seconds)} s; "
            f"unfinished after the last: {left}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20, help="blocks per hub (after warm-up)")
    parser.add_argument("--block", type=int, default=300, help="requests per block")
    parser.add_argument("--concurrency", type=int, default=4, help="clients at once")
    parser.add_argument("--scrape-interval", type=float, default=1.0, help="seconds")
    parser.add_argument("--skip-hub", action="store_true", help="the collector's cost only")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root (starts Slurm daemons, creates demo accounts)")
    ensure_unix_user(USER)
    if not args.skip_hub:
        hub_api_latency(args)
    collector_cost((10, 500))


if __name__ == "__main__":
    main()
