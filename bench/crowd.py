"""crowd: many users sign in and start their servers at once, on two hubs side by side.

What ``bench/storm.py`` and ``bench/workshop_burst.py`` measure, on the hubs that
:mod:`crowd_setup` starts (``site``: ``continuum-site``, servers are Slurm jobs; ``local``:
JupyterHub's ``LocalProcessSpawner``).

:func:`crowd` runs one crowd on one hub: user ``i`` of ``n`` arrives ``i * spread / n`` seconds
after the start (``spread`` 0: all at once), signs in through the provider's login page (a
``requests`` session, like a browser; landing on the hub's home page, see :func:`sign_in`),
starts their server (``POST
/hub/api/users/<name>/server``, the admin token), follows the spawn's progress as the spawn
page does (one event stream per user, with the user's own cookie: no polling that would load
the hub more than real browsers do) and stops the clock when the server answers a page through
the proxy (signing in to the server through the hub's OAuth on the way).  Meanwhile a
:class:`Sampler` *process* (so that the crowd's threads do not slow its clock) sends ``GET
/hub/api/users/<name>`` back to back, 0.2 s apart, for the hub's API latency, and watches the
machine's available memory.  The hub's CPU seconds come from ``/proc/<pid>/stat``.  Servers
are stopped afterwards.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import http.client
import json
import multiprocessing
import os
import re
import statistics
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
from crowd_setup import (
    HUBS,
    LAB_PAGE,
    LEAN_PAGE,
    Federation,
    hub_errors,
    keep_log,
    wait_running,
)

from continuum_federation.hub import lean_server_config
from continuum_federation.idp import OpenIDProvider
from fixtures.hub import api, hub_login, stop_server

LABELS = {"site": "continuum-site (Slurm)", "local": "LocalProcessSpawner   "}
#: the figures compared between the hubs: (label, key in :func:`report`'s figures)
#: seconds a request of a user's browser waits for an answer (Chromium: 300)
BROWSER_TIMEOUT = 120.0
RATIOS = (("p50", "p50"), ("p95", "p95"), ("hub API p95", "api95"), ("hub CPU", "cpu"))


class Sampler:
    """``GET`` the API URLs in turn with the admin token, ``pause`` apart, in a child process.

    A 404 (a user not signed in yet) is an answer; errors are 5xx and no answer.  A process of
    its own: the crowd's threads in this one would hold the GIL and lengthen what it measures.
    """

    def __init__(self, urls: list[str], token: str, pause: float = 0.2) -> None:
        context = multiprocessing.get_context("fork")
        self.stopped = context.Event()
        self.receiver, sender = context.Pipe(duplex=False)
        self.process = context.Process(
            target=self.run, args=(urls, token, pause, sender), daemon=True
        )
        self.latencies: list[float] = []
        self.errors = 0
        self.memory_before = available_memory()
        self.memory_lowest = self.memory_before

    def run(self, urls: list[str], token: str, pause: float, sender: Any) -> None:
        session = requests.Session()
        headers = {"Authorization": f"token {token}"}
        latencies: list[float] = []
        errors = 0
        number = 0
        lowest = available_memory()
        while not self.stopped.is_set():
            lowest = min(lowest, available_memory())
            url = urls[number % len(urls)]
            number += 1
            started = time.perf_counter()
            try:
                response = session.get(url, headers=headers, timeout=60)
                ok = response.status_code in (200, 404)
            except requests.RequestException:
                ok = False
            latencies.append(time.perf_counter() - started)
            errors += not ok
            self.stopped.wait(pause)
        sender.send((latencies, errors, lowest))

    def __enter__(self) -> Sampler:
        self.process.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.latencies, self.errors, self.memory_lowest = self.receiver.recv()
        self.process.join()


def available_memory() -> int:
    """The machine's available memory in MiB (``MemAvailable`` of ``/proc/meminfo``)."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) // 1024
    return 0


def follow_progress(hub: Any, browser: requests.Session, user: str) -> None:
    """Read the spawn's event stream as the spawn page does, until ready; raise if it failed."""
    url = f"{hub.url}/hub/api/users/{user}/server/progress"
    xsrf = browser.cookies.get("_xsrf", path="/hub/") or ""
    # the hub writes a keep-alive every 8 s: a minute of silence is a lost stream
    with browser.get(url, headers={"X-XSRFToken": xsrf}, stream=True, timeout=(30, 60)) as r:
        if r.status_code != 200:
            raise RuntimeError(f"progress: {r.status_code} {r.text[:200]}")
        for line in r.iter_lines(decode_unicode=True):
            if not line or not line.startswith("data:"):
                continue
            event = json.loads(line.removeprefix("data:"))
            if event.get("ready"):
                return
            if event.get("failed"):
                raise RuntimeError(f"spawn failed: {event.get('message', '')[:200]}")
    raise RuntimeError("progress: the stream ended before the server was ready")


def closed_unanswered(error: BaseException) -> bool:
    """Whether ``error`` is a connection the server closed before any byte of an answer
    (``http.client.RemoteDisconnected``, wrapped by urllib3 and requests)."""
    seen: set[int] = set()
    todo: list[BaseException] = [error]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, http.client.RemoteDisconnected):
            return True
        todo += [arg for arg in current.args if isinstance(arg, BaseException)]
        todo += [e for e in (current.__cause__, current.__context__) if e is not None]
    return False


class PatientBrowser(requests.Session):
    """A session that waits for an answer as long as a browser would (the tests' helpers give
    up after 10 s: at 60 sign-ins a minute a loaded hub answered the callback after 11 s), and
    that, like a browser, sends a request again once when the server closed the connection
    without answering it.

    That happens to a kept-alive connection which the server (Node's HTTP servers: the OpenID
    provider, the proxy; 5 s keep-alive) closes as the next request is sent on it: Chromium
    resends such a request on a new connection, whatever its method (``HttpNetworkTransaction``,
    a reused socket that failed before any byte of the answer); requests does not, and one
    user of the 200-user storm failed its sign-in on it.  :data:`RESENT` counts them.
    """

    def request(self, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        kwargs["timeout"] = BROWSER_TIMEOUT
        try:
            return super().request(*args, **kwargs)
        except requests.ConnectionError as error:
            if not closed_unanswered(error):
                raise
            with _resent_lock:
                RESENT.append(f"{args[0] if args else kwargs.get('method')} {error}"[:200])
            return super().request(*args, **kwargs)


#: the requests a :class:`PatientBrowser` sent again (see there), reset by :func:`crowd`
RESENT: list[str] = []
_resent_lock = threading.Lock()


def sign_in(hub: Any, idp: OpenIDProvider, user: str) -> requests.Session:
    """Sign ``user`` in through the provider's login page, landing on the hub's home page.

    As after a click on "Sign in" there: the default landing page ``/hub/spawn`` starts a
    server at once where the spawner has no options form (``LocalProcessSpawner``), so a
    start requested next is a duplicate, which JupyterHub answers with 500 "pending spawn"
    while ``refresh_pre_spawn``'s await keeps the first start from being marked pending.
    """
    return hub_login(hub, idp, user, params={"next": "/hub/home"}, browser=PatientBrowser())


def join(
    hub: Any, idp: OpenIDProvider, user: str, options: Mapping[str, Any], page: str, t0: float
) -> dict[str, Any]:
    """One user: sign in, start the server, follow its progress, load ``page``; times in s."""
    started = time.perf_counter()
    result: dict[str, Any] = {"user": user}
    step = "sign-in"  # named in the error: a dropped connection says nothing of where it was
    try:
        browser = sign_in(hub, idp, user)
        result["signed_in"] = time.perf_counter() - t0
        step = "spawn request"
        response = api(hub, "POST", f"/users/{user}/server", json={"user_options": dict(options)})
        if response.status_code not in (201, 202):
            raise RuntimeError(f"spawn: {response.status_code} {response.text[:200]}")
        step = "progress"
        follow_progress(hub, browser, user)
        result["spawned"] = (result["signed_in"], time.perf_counter() - t0)  # pending then
        step = "server page"
        answer = browser.get(hub.url + page.format(user=user), timeout=120)
        if answer.status_code != 200:
            raise RuntimeError(f"server page: {answer.status_code}")
        result["ready"] = time.perf_counter() - started
    except Exception as error:  # a failed user is a figure, not the end of the run
        first = str(error).splitlines()[0][:200]
        result["error"] = f"{step}: {type(error).__name__}: {first}"
        result["failed_at"] = time.perf_counter() - t0
    return result


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (``/proc/<pid>/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def crowd(
    hub: Any,
    idp: OpenIDProvider,
    users: list[str],
    options: Mapping[str, Mapping[str, Any]],
    page: str,
    spread: float = 0.0,
) -> dict[str, Any]:
    """``users`` arrive at ``hub`` within ``spread`` s and start their servers (``options``
    by user); then their servers are stopped.  Returns results, timings and the hub's CPU s."""
    pid = hub_pid(hub)
    urls = [f"{hub.url}/hub/api/users/{user}" for user in users]
    ready = threading.Barrier(len(users) + 1)

    def arrive(number: int, user: str) -> dict[str, Any]:
        ready.wait()
        time.sleep(max(0.0, t0 + number * spread / len(users) - time.perf_counter()))
        return join(hub, idp, user, options.get(user, {}), page, t0)

    cpu_before = cpu_seconds(pid)
    RESENT.clear()
    with Sampler(urls, hub.api_token) as sampler, ThreadPoolExecutor(len(users)) as pool:
        futures = [pool.submit(arrive, number, user) for number, user in enumerate(users)]
        t0 = time.perf_counter()
        ready.wait()
        results = [future.result() for future in futures]
        wall = time.perf_counter() - t0
    cpu = cpu_seconds(pid) - cpu_before
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda user: quiet_stop(hub, user), users))
    return {
        "results": results,
        "wall": wall,
        "cpu": cpu,
        "api": sampler.latencies,
        "api_errors": sampler.errors,
        "memory": sampler.memory_before - sampler.memory_lowest,
        "resent": len(RESENT),
    }


@dataclass(frozen=True)
class Priorities:
    """Nice values on this one machine, the same for both hubs: ``hub`` for the hub, its proxy
    and the OpenID provider, ``servers`` for the single-user servers.

    Here the servers stand in for compute nodes, and the provider and the crowd's threads for
    other machines, none of which a hub shares its cores with: with everything at 0, a storm
    measures the starting servers' CPU (200 servers, ~1.5 CPU-s each, on 2 shared cores) and
    every sign-in waits behind them.
    """

    servers: int = 10
    hub: int = -10

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """``--server-nice`` and ``--hub-nice`` (0 and 0: all alike)."""
        for name, value, what in (
            ("server", cls.servers, "the servers"),
            ("hub", cls.hub, "the hub, its proxy and the provider"),
        ):
            parser.add_argument(
                f"--{name}-nice", type=int, default=value, help=f"nice of {what} ({value})"
            )

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Priorities:
        """The priorities :meth:`add_arguments` read."""
        return cls(args.server_nice, args.hub_nice)

    def server_command(self, hub_name: str) -> list[str]:
        """``Spawner.cmd`` that starts a server at :attr:`servers` on hub ``hub_name``, its
        session's CPU group included (:mod:`crowd_nice`; ``LocalProcessSpawner``'s servers
        are the hub's children: they start at its nice)."""
        step = self.servers - (self.hub if hub_name == "local" else 0)
        helper = str(Path(__file__).with_name("crowd_nice.py"))
        return [sys.executable, helper, str(self.servers), str(step), "jupyterhub-singleuser"]

    def apply(self, hub: Any, idp: OpenIDProvider) -> None:
        """Set :attr:`hub` as the nice of ``hub``'s process, its proxy's and the provider's (all
        their threads; later threads inherit it): a provider starved like the servers answered
        the hub's code redemption last, and sign-ins queued behind each other."""
        managed = (getattr(hub, "proxy", None), getattr(idp, "_process", None))
        pids = [hub_pid(hub)] + [m.proc.pid for m in managed if m is not None and m.proc]
        for pid in pids:
            # and its session's CPU group: each is a session of its own, and with autogroup
            # scheduling a process's nice counts only inside its session (see crowd_nice)
            with contextlib.suppress(OSError):
                Path(f"/proc/{pid}/autogroup").write_text(str(self.hub))
            # every thread: one left at 0 holding the GIL while the kernel runs others kept
            # the hub's event loop waiting for seconds (sign-ins queued to 40 s)
            for task in Path(f"/proc/{pid}/task").iterdir():
                os.setpriority(os.PRIO_PROCESS, int(task.name), self.hub)


def hub_pid(hub: Any) -> int:
    """The jupyterhub process itself (LocalHub runs it under a supervisor where it has one)."""
    return getattr(hub, "hub_pid", None) or hub.process.proc.pid


def on_hubs(
    fed: Federation,
    hubs: Sequence[str],
    users: list[str],
    options: Mapping[str, Mapping[str, Mapping[str, Any]]],
    lean: bool,
    spread: float = 0.0,
    logs: Path | None = None,
    before: Callable[[Any], object] | None = None,
    priorities: Priorities | None = None,
) -> dict[str, dict[str, Any]]:
    """The crowd on each of ``hubs`` in turn (``options`` by hub, then user; ``before(hub)``
    first, e.g. an instructor's sign-in), with lean servers or JupyterLab, at ``priorities``
    (:class:`Priorities` by default); by hub."""
    priorities = priorities or Priorities()
    page = LEAN_PAGE if lean else LAB_PAGE
    outcome: dict[str, dict[str, Any]] = {}
    for name in hubs:
        extra = copy.deepcopy(lean_server_config()) if lean else {}
        extra.setdefault("Spawner", {})["cmd"] = priorities.server_command(name)
        with fed.hub(name, extra) as hub:
            wait_running(hub)
            priorities.apply(hub, fed.idp)
            if before is not None:
                before(hub)
            outcome[name] = crowd(hub, fed.idp, users, options.get(name, {}), page, spread)
            keep_log(fed, name, logs)
            if any("error" in r for r in outcome[name]["results"]):
                print(hub_errors(fed.root / name / "jupyterhub.log"))
    return outcome


def quiet_stop(hub: Any, user: str) -> None:
    """Stop ``user``'s server; say so instead of raising when it does not stop."""
    try:
        stop_server(hub, user, timeout=120)
    except AssertionError as error:
        print(f"  (server of {user} on {hub.url} not stopped: {str(error)[:120]})")


def failures(outcome: dict[str, Any]) -> Counter[str]:
    """The failed users' errors, grouped (URLs taken out)."""
    return Counter(
        re.sub(r"\b[a-z]+\d{2,3}\b", "<user>", re.sub(r" at http\S+|/user/\w+", "", r["error"]))
        for r in outcome["results"]
        if "error" in r
    )


def most_pending(results: list[dict[str, Any]]) -> int:
    """The most spawns pending at once (JupyterHub refuses more than its
    ``concurrent_spawn_limit``, default 100, with 429)."""
    edges = sorted(
        edge
        for r in results
        if "spawned" in r
        for edge in ((r["spawned"][0], 1), (r["spawned"][1], -1))
    )
    most = pending = 0
    for _, step in edges:
        pending += step
        most = max(most, pending)
    return most


def percentile(values: list[float], q: int) -> float:
    """The ``q``-th percentile (inclusive method); NaN without values."""
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def report(count: int, outcome: dict[str, dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Print each hub's line (failures by reason, sign-ins, ready p50/p95, API p50/p95, CPU)
    and the ratios site / local; returns the figures."""
    figures: dict[str, dict[str, float]] = {}
    for name, data in outcome.items():
        for error, times in failures(data).most_common():
            print(f"  {name}: {times} × {error}")
        failed = [r for r in data["results"] if "error" in r]
        if 0 < len(failed) <= 12:  # who and when, to find them in the logs (--logs)
            print(
                f"  {name}: " + ", ".join(f"{r['user']} at {r['failed_at']:.0f} s" for r in failed)
            )
        ready = [r["ready"] for r in data["results"] if "ready" in r]
        signed = [r["signed_in"] for r in data["results"] if "signed_in" in r]
        figures[name] = {
            "p50": percentile(ready, 50),
            "p95": percentile(ready, 95),
            "api95": percentile(data["api"], 95),
            "cpu": data["cpu"],
        }
        print(
            f"  {LABELS[name]}: failures {count - len(ready)}/{count}, all signed in after "
            f"{max(signed, default=float('nan')):.1f} s, ready p50 {figures[name]['p50']:.1f} s "
            f"p95 {figures[name]['p95']:.1f} s (all done {data['wall']:.1f} s); hub API p50 "
            f"{percentile(data['api'], 50) * 1000:.0f} ms p95 {figures[name]['api95'] * 1000:.0f}"
            f" ms ({len(data['api'])} requests, {data['api_errors']} errors); hub CPU "
            f"{data['cpu']:.1f} s; at most {most_pending(data['results'])} spawns pending at "
            f"once; machine memory used at most +{data['memory'] / 1024:.1f} GiB; "
            f"{data.get('resent', 0)} requests resent as a browser does (closed unanswered)"
        )
    if set(figures) == set(HUBS):
        site, local = figures["site"], figures["local"]
        ratios = ", ".join(
            f"{label} {site[key] / local[key]:.2f}x" if local[key] else f"{label} -"
            for label, key in RATIOS
        )
        print(f"  ratio site / local: {ratios}")
    return figures
