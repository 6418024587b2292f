"""workshop_chromium: N real Chromium sessions join one workshop event at once (issue 13's
"smaller burst of 20 real Chromium sessions reaching JupyterLab").

Through ``bench/crowd_setup.py``'s :func:`federation` (shared with ``workshop_burst`` and
``storm``): a private munge, the demo's Slurm site ``alpha`` (its node declared with N CPUs,
so the event's reservation holds every seat), the OpenID provider with an instructor ``ws00``
(entitlement ``…:group:vo.hep.example:role=instructor``) and N participants ``ws01`` … (HEP
members; Unix accounts of the same name, created if missing and kept), and the hub with
``continuum-site``.
The instructor creates an event through the REST API (N seats on alpha/interactive, one profile
of 1 core and 1 GB, open to the HEP VO).

The burst: N browser contexts spread over K Debian Chromium processes (``--browsers``; as
``tests/fixtures/browser.py`` starts them; default one per participant, as 20 people have 20
browsers, while half the available memory holds them), all started at once (Playwright's async
API): each opens the event's join link, is sent to the hub's login page, signs in at the
provider's page, lands on the event's start page, clicks *Start my server* and waits until
JupyterLab's main area is shown.  Per participant the clock stops three times from opening the
link: back on the start page (signed in), the server ready (the spawn-pending page hands over to
``/user/<name>/lab``) and JupyterLab shown.  One browser for all (``--browsers 1``) is another
experiment: its one network process serves every context, and while N JupyterLabs start on
two cores it is starved for seconds at a time (``--net-log DIR`` keeps each browser's network
log to see it).

Prints the browsers used and their peak memory (RSS and PSS of all Chromium processes),
failures (grouped by reason, with the page's first console error), p50/p95 of each stage, the
time until all N show JupyterLab, what the spawn-pending pages did (opened their progress
stream; asked for the server's state: our template's fallback) and the share of the JupyterLab
stage in the total (the browser's own part: loading and starting JupyterLab's front end in N
tabs on this machine).  Servers and the event are removed afterwards.  About 4 minutes at
N = 20 on the (shared) 2-core test machine.  Run as root, under the benchmarks' lock:
``flock /tmp/continuum-bench.lock /opt/continuum-hub/venv/bin/python
bench/workshop_chromium.py [--users 20] [--browsers K] [--logs DIR]`` (importing
``crowd_setup`` puts ``tests/`` on ``sys.path``, for ``fixtures``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import shutil
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psutil
from crowd import percentile, quiet_stop, sign_in
from crowd_setup import federation, generated_people, hub_errors
from playwright.async_api import Browser, ConsoleMessage, Page, Request, async_playwright

from continuum_federation.idp import VO_HEP, entitlement
from fixtures.browser import CHROMIUM, CHROMIUM_ARGS

STAGES = ("signed_in", "server_ready", "lab_shown")
#: memory of one participant in a Chromium of their own with JupyterLab open (GiB): twice the
#: measured PSS (20 browsers: 3.6–3.7 GiB at the peak; one browser, 20 contexts: 2.5–2.9 GiB)
BROWSER_GIB = 0.4
#: one participant's limit from the link to JupyterLab (ms)
TIMEOUT_MS = 480_000


def event_body(seats: int) -> dict[str, Any]:
    """N seats on alpha/interactive for two hours from now, open to the HEP VO."""
    now = datetime.now(UTC)
    return {
        "title": "Chromium burst",
        "start": now.isoformat(),
        "end": (now + timedelta(hours=2)).isoformat(),
        "seats": seats,
        "site": "alpha",
        "partition": "interactive",
        "profiles": [{"name": "lab", "cores": 1, "memory_gb": 1, "walltime": "0:30"}],
        "access": {"vos": [VO_HEP]},
    }


def watch(page: Page, user: str, result: dict[str, Any]) -> None:
    """Count in ``result`` what the spawn-pending page did: requests of its progress stream
    (``streams``) and our fallback's state requests (``asked``, see the hub's
    ``workshops/templates/spawn_pending.html``); keep the first console error (``console``:
    e.g. requirejs's "Load timeout for modules")."""
    state = re.compile(rf"/hub/api/users/{user}$")

    def on_request(request: Request) -> None:
        key = "streams" if "/progress" in request.url else "asked"
        if key == "streams" or state.search(request.url):
            result[key] = result.get(key, 0) + 1

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            result.setdefault("console", message.text[:160])

    page.on("request", on_request)
    page.on("console", on_console)


async def join(browser: Browser, link: str, user: str, password: str) -> dict[str, Any]:
    """One participant in a fresh context: link → provider → start page → JupyterLab."""
    result: dict[str, Any] = {"user": user}
    context = await browser.new_context(viewport={"width": 1200, "height": 800})
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    watch(page, user, result)
    t0 = time.perf_counter()
    try:
        await page.goto(link)
        await page.get_by_text(re.compile(r"^Sign in with")).first.click()
        await page.get_by_label("Username").fill(user)
        await page.get_by_label("Password").fill(password)
        await page.get_by_role("button", name="Sign in").click()
        await page.wait_for_url(re.compile(r"/start$"))
        result["signed_in"] = time.perf_counter() - t0
        await page.get_by_role("button", name="Start my server").click()
        await page.wait_for_url(re.compile(rf"/user/{user}/lab"))
        result["server_ready"] = time.perf_counter() - t0
        await page.locator("#jp-main-dock-panel").wait_for(state="visible")
        result["lab_shown"] = time.perf_counter() - t0
    except Exception as error:  # a failed participant is a figure, not the end of the run
        result["error"] = f"{type(error).__name__}: {str(error).splitlines()[0][:160]}"
        result["at"] = page.url.split("?")[0]
    finally:
        await context.close()
    return result


def default_browsers(users: int) -> int:
    """One Chromium per participant (20 people have 20 browsers) while half the memory
    available now holds them (:data:`BROWSER_GIB` each); fewer, contexts shared, otherwise."""
    available = psutil.virtual_memory().available / 2**30
    return max(1, min(users, int(available / 2 / BROWSER_GIB)))


def chromium_args(index: int, net_log: Path | None) -> list[str]:
    """Chromium's arguments as the tests start it; with ``net_log``, browser ``index`` also
    writes its network log (every event, bodies too) to ``net_log/chromium-<index>.json``."""
    if net_log is None:
        return CHROMIUM_ARGS
    return [
        *CHROMIUM_ARGS,
        f"--log-net-log={net_log / f'chromium-{index}.json'}",
        "--net-log-capture-mode=Everything",
    ]


def chromium_memory() -> tuple[float, float]:
    """Resident and proportional set sizes (GiB) of every Chromium process this bench started
    (Playwright's driver is our child and Chromium its), shared pages counted once in PSS."""
    rss = pss = 0
    for process in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if "chrom" in process.name():
                info = process.memory_full_info()
                rss, pss = rss + info.rss, pss + info.pss
    return rss / 2**30, pss / 2**30


async def sample_memory(peak: dict[str, float], every: float = 3.0) -> None:
    """Keep the peak of :func:`chromium_memory` in ``peak`` until cancelled."""
    while True:
        rss, pss = await asyncio.to_thread(chromium_memory)
        peak["rss"], peak["pss"] = max(peak.get("rss", 0.0), rss), max(peak.get("pss", 0.0), pss)
        await asyncio.sleep(every)


async def burst(
    link: str, people: list[tuple[str, str]], browsers: int, net_log: Path | None
) -> tuple[list[dict[str, Any]], float, dict[str, float]]:
    """Every participant at once, their contexts spread over ``browsers`` Chromium processes
    (participant i in browser i mod K); their results, the burst's wall time and the peak
    memory of all Chromium processes."""
    peak: dict[str, float] = {}
    async with async_playwright() as playwright:
        started = await asyncio.gather(
            *(
                playwright.chromium.launch(
                    executable_path=CHROMIUM, headless=True, args=chromium_args(k, net_log)
                )
                for k in range(browsers)
            )
        )
        sampler = asyncio.create_task(sample_memory(peak))
        try:
            t0 = time.perf_counter()
            results = await asyncio.gather(
                *(
                    join(started[i % browsers], link, user, password)
                    for i, (user, password) in enumerate(people)
                )
            )
            return list(results), time.perf_counter() - t0, peak
        finally:
            sampler.cancel()
            await asyncio.gather(*(browser.close() for browser in started))


def report(
    count: int, results: list[dict[str, Any]], wall: float, browsers: int, peak: dict[str, float]
) -> None:
    print(
        f"workshop_chromium: {count} Chromium sessions join one event at once (from the link), "
        f"in {browsers} Chromium process{'es' if browsers > 1 else ''}"
    )
    print(
        f"  Chromium's peak memory: RSS {peak.get('rss', 0):.1f} GiB, "
        f"PSS {peak.get('pss', 0):.1f} GiB (all browsers)"
    )
    errors = Counter(
        f"{r['error']} (at {r['at']}; first console error: {r.get('console', 'none')})"
        for r in results
        if "error" in r
    )
    for error, times in errors.most_common():
        print(f"  {times} × {error}")
    shown = [r for r in results if "lab_shown" in r]
    print(f"  failures {count - len(shown)}/{count}; all {len(shown)} shown after {wall:.1f} s")
    for stage in STAGES:
        values = [r[stage] for r in results if stage in r]
        print(
            f"  link → {stage.replace('_', ' '):12}: p50 {percentile(values, 50):5.1f} s, "
            f"p95 {percentile(values, 95):5.1f} s"
        )
    streamed = sum(1 for r in results if r.get("streams"))
    asked = [r for r in results if r.get("asked")]
    print(
        f"  pending pages: {streamed}/{count} opened the progress stream, {len(asked)} asked "
        f"for the server's state (the fallback; {sum(r['asked'] for r in asked)} requests)"
    )
    lab = [r["lab_shown"] - r["server_ready"] for r in shown]
    if shown:
        share = sum(lab) / sum(r["lab_shown"] for r in shown)
        print(
            f"  JupyterLab's front end (server ready → shown): p50 {percentile(lab, 50):.1f} s, "
            f"{share:.0%} of link → JupyterLab shown"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description="N Chromium sessions join a workshop event")
    parser.add_argument("--users", type=int, default=20, help="participants (default 20)")
    parser.add_argument("--logs", help="folder to keep the hub's log in when a participant fails")
    parser.add_argument(
        "--browsers",
        type=int,
        default=0,
        help="Chromium processes the participants' contexts are spread over (default 0: one "
        "per participant, as 20 people have 20 browsers, while half the available memory "
        "holds them; 1: one browser, a context each)",
    )
    parser.add_argument(
        "--net-log",
        type=Path,
        help="diagnostics: folder for each Chromium's network log (chromium-<k>.json; the hub's "
        "log is kept with --logs)",
    )
    args = parser.parse_args()
    browsers = min(args.browsers, args.users) if args.browsers else default_browsers(args.users)
    if args.net_log:
        args.net_log.mkdir(parents=True, exist_ok=True)
    teacher = generated_people(
        "ws", 0, [entitlement(VO_HEP), entitlement(VO_HEP, "instructor")], first=0
    )
    people = teacher + generated_people("ws", args.users, [entitlement(VO_HEP)])
    with federation(["alpha"], people, args.users) as fed, fed.hub("site") as hub:
        passwords = fed.idp.passwords
        instructor = sign_in(hub, fed.idp, teacher[0]["username"])
        events = f"{hub.url}/hub/api/continuum/events"
        xsrf = {"X-XSRFToken": instructor.cookies.get("_xsrf", path="/hub/")}
        made = instructor.post(events, json=event_body(args.users), headers=xsrf, timeout=60)
        if made.status_code != 201:
            sys.exit(f"event refused: {made.status_code} {made.text[:300]}")
        ev = made.json()
        link = f"{hub.url}/hub/continuum/join/{ev['join_code']}"
        print(f"event {ev['id']}: reservation {ev['reservation']['state']}")
        joining = [(p["username"], passwords[p["username"]]) for p in people[1:]]
        results, wall, peak = asyncio.run(burst(link, joining, browsers, args.net_log))
        report(args.users, results, wall, browsers, peak)  # before the (long) clean-up
        if any("error" in r for r in results) or args.net_log:
            print(hub_errors(fed.root / "site" / "jupyterhub.log"))
            if args.logs:  # the federation's folder goes at the end: keep the hub's log
                Path(args.logs).mkdir(parents=True, exist_ok=True)
                shutil.copy(fed.root / "site" / "jupyterhub.log", args.logs)
                print(f"  the hub's log: {Path(args.logs) / 'jupyterhub.log'}")
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda user: quiet_stop(hub, user[0]), joining))
        instructor.delete(f"{events}/{ev['id']}", headers=xsrf, timeout=60)


if __name__ == "__main__":
    main()
