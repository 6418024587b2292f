"""workflow_overhead: a notebook run through the ``workflows`` service vs a plain ``sbatch``.

Side by side in one run, on the same idle Slurm site ``alpha`` (partition ``batch``, one core,
1 GiB), as the same user ``alice``, the same notebook (a ``parameters`` cell, a short sleep, a
last cell writing ``time.time()`` to ``ended.txt``) executed by papermill:

* **ours**: ``POST /services/workflows/api/v1/runs`` on a hub with the ``workflows`` service
  (validation, the run's credential minted, the run folder prepared as the user, ``sbatch``;
  the job runs ``continuum-workflow-run``: papermill with status at every cell and the crate at
  the end, the token agent beside it), then ``GET runs/{id}`` until the run is final;
* **plain**: ``sbatch`` of a job script ``papermill in.ipynb output.ipynb -p … -k python3`` in a
  folder of the user, then ``squeue`` until the job is final;

measuring *submit → job RUNNING* (from before the POST / the ``sbatch`` until ``squeue`` shows
the job running; this script polls ``squeue`` every 0.1 s for both) and *job end → state
visible* (from the notebook's last cell until the API says ``done`` / ``squeue`` shows the job
``COMPLETED``).  Both include papermill's and the job's exit.  N repetitions (default 5, after
a warm-up), interleaved: ours first in even rounds, plain first in odd ones.  Prints medians,
ratios and the goal, ours ≤ 1.2 × plain + 1 s.

Then a **200-member sweep** posted as one run: time of the POST until the run comes back with
its job id recorded (goal < 2 s), and that ``squeue`` shows one array job (its 200 tasks), which
is then cancelled through the API.

The service follows jobs every ``--poll-interval`` seconds (``WorkflowService.poll_interval``;
1 s here as in the tests, 10 s by default).  About 3 minutes on the 2-core test machine.  Run as
root: ``/opt/continuum-hub/venv/bin/python bench/workflow_overhead.py [--rounds 5]``.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import pwd
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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
from continuum_federation.slurm import LocalSlurmCluster, load_cluster_specs, scratch_site  # noqa: E402
from continuum_hub.workflows import ACCESS_SCOPE, API_PREFIX  # noqa: E402
from fixtures.gateway import user_token  # noqa: E402
from fixtures.hub import admin_hub  # noqa: E402
from fixtures.slurm import squeue  # noqa: E402
from fixtures.workflow_runs import notebook_of  # noqa: E402

USER = "alice"
SLEEP = 2.0
SWEEP = 200
RESOURCES = {"site": "alpha", "partition": "batch", "cores": 1, "memory_gb": 1, "walltime": "0:10"}
#: what squeue shows for a job that has ended
ENDED = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "PREEMPTED", "OUT_OF_MEMORY"}
FINAL = {"done", "failed", "cancelled"}
CELLS = [
    'label = "bench"\nsleep = 0.0',
    "import time\ntime.sleep(sleep)",
    "import pathlib\npathlib.Path('ended.txt').write_text(repr(time.time()))",
]


def notebook() -> dict[str, Any]:
    """The benchmark's notebook (nbformat JSON)."""
    return dict(json.loads(notebook_of(CELLS[0], CELLS[1:])))


def poll(check: Callable[[], Any], timeout: float = 120.0, interval: float = 0.1) -> Any:
    """``check()``'s first truthy answer (polled every ``interval`` s)."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise TimeoutError(f"not reached in {timeout:.0f} s")
        time.sleep(interval)


def job_state(site: LocalSlurmCluster, job_id: str) -> str:
    """The job's state as ``squeue`` shows it (``""`` once it is no longer listed)."""
    rows = squeue(site, "--states=all", "--format=%T", f"--jobs={job_id}")
    return rows[0][0] if rows else ""


def ended_state(site: LocalSlurmCluster, job_id: str) -> str | None:
    """The job's final state once ``squeue`` shows one (``GONE``: no longer listed)."""
    state = job_state(site, job_id)
    return (state or "GONE") if state in ENDED or not state else None


def running_at(site: LocalSlurmCluster, job_id: str) -> float:
    """When ``squeue`` first shows the job running (or past it)."""
    poll(lambda: job_state(site, job_id) not in ("PENDING", "CONFIGURING"))
    return time.time()


class Service:
    """The workflows service through the hub's proxy, as ``alice``."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self.headers = {"Authorization": f"token {token}"}

    def call(self, method: str, path: str, body: Any = None) -> Any:
        response = requests.request(
            method, f"{self.url}/{path}", json=body, headers=self.headers, timeout=120
        )
        if response.status_code >= 400:
            raise RuntimeError(f"{method} {path}: {response.status_code} {response.text[:300]}")
        return response.json()

    def submit(self, **body: Any) -> tuple[dict[str, Any], float]:
        """POST a run of the notebook; the run and how long the POST took."""
        request = {"notebook": {"path": "bench/bench.ipynb", "content": notebook()}, **body}
        started = time.perf_counter()
        run = self.call("POST", "runs", {"resources": RESOURCES, **request})
        return run, time.perf_counter() - started


def ours(service: Service, site: LocalSlurmCluster, label: str) -> dict[str, float]:
    """One run through the service: submit → RUNNING, → API running, end → API done."""
    submitted = time.time()
    run, _ = service.submit(parameters={"label": label, "sleep": SLEEP})
    running = running_at(site, run["job_id"]) - submitted

    def state() -> str:
        return str(service.call("GET", f"runs/{run['id']}")["state"])

    poll(lambda: state() != "queued")
    api_running = time.time() - submitted
    poll(lambda: state() in FINAL, 300)
    visible = time.time()
    final = service.call("GET", f"runs/{run['id']}")
    if final["state"] != "done":
        raise RuntimeError(f"run {run['id']} ended {final['state']}: {final['reason']}")
    ended = float((Path(run["folder"]) / "ended.txt").read_text())
    return {"running": running, "api_running": api_running, "visible": visible - ended}


def plain(site: LocalSlurmCluster, folder: Path, label: str) -> dict[str, float]:
    """The same notebook by a plain ``sbatch`` of papermill as the user."""
    account = pwd.getpwnam(USER)
    folder.mkdir(parents=True)
    (folder / "in.ipynb").write_text(json.dumps(notebook()))
    for path in (folder, folder / "in.ipynb"):
        os.chown(path, account.pw_uid, account.pw_gid)
    folder.chmod(0o700)
    papermill = str(Path(sys.executable).parent / "papermill")
    command = [papermill, "in.ipynb", "output.ipynb", "-p", "label", label]
    command += ["-p", "sleep", str(SLEEP), "-k", "python3"]
    script = f"#!/bin/bash\nset -euo pipefail\numask 077\nexec {shlex.join(command)}\n"
    env = [f"HOME={account.pw_dir}", f"PATH={Path(sys.executable).parent}:/usr/bin:/bin"]
    env += [f"{k}={v}" for k, v in site.env().items()]
    argv = ["sudo", "-n", "-u", USER, "env", *env, "sbatch", "--parsable", "--job-name=plain"]
    argv += ["--partition=batch", "--cpus-per-task=1", "--mem=1G", "--time=10"]
    argv += [f"--chdir={folder}", f"--output={folder}/slurm-%j.out"]
    submitted = time.time()
    out = subprocess.run(argv, input=script, capture_output=True, text=True, check=True).stdout
    job_id = out.strip().split(";")[0]
    running = running_at(site, job_id) - submitted
    state = poll(lambda: ended_state(site, job_id), 300)
    visible = time.time()
    if state not in ("COMPLETED", "GONE"):
        raise RuntimeError(f"plain job {job_id} ended {state}")
    ended = float((folder / "ended.txt").read_text())
    return {"running": running, "visible": visible - ended}


def sweep(service: Service, site: LocalSlurmCluster) -> dict[str, Any]:
    """A 200-member sweep: the POST's time, and what squeue shows of it."""
    members = [{"label": f"member-{i}", "sleep": SLEEP} for i in range(SWEEP)]
    run, seconds = service.submit(parameters={}, sweep={"members": members}, max_parallel=2)
    try:
        collapsed = squeue(site, "--format=%F|%i", f"--jobs={run['job_id']}")
        tasks = squeue(site, "--array", "--format=%i", f"--jobs={run['job_id']}")
    finally:
        service.call("POST", f"runs/{run['id']}/cancel", {})
    poll(lambda: not job_state(site, run["job_id"]) or job_state(site, run["job_id"]) in ENDED)
    return {
        "seconds": seconds,
        "job_id": run["job_id"],
        "array_ids": sorted({row[0] for row in collapsed}),
        "lines": ["|".join(row) for row in collapsed],
        "tasks": len(tasks),
    }


@contextmanager
def workflows_hub(root: Path, alpha: LocalSlurmCluster, poll_interval: float) -> Iterator[Service]:
    """A hub with the workflows service on site ``alpha``; the service as ``alice``."""
    port = free_port()
    users = with_passwords([u for u in DEMO_USERS if u["username"] == USER])
    with OpenIDProvider(
        root / "idp", REPO, users=users, clients=[hub_client(port, os.urandom(16).hex())]
    ) as idp:
        registry = root / "sites.yaml"  # the demo registry's site alpha alone
        demo = yaml.safe_load((REPO / "hub-config" / "sites.demo.yaml").read_text())
        demo["sites"] = [s for s in demo["sites"] if s["name"] == "alpha"]
        registry.write_text(yaml.safe_dump(demo))
        settings = {"WorkflowService": {"poll_interval": poll_interval}}
        hub = admin_hub(root / "hub", REPO, idp, {"alpha": alpha}, port, settings, None, registry)
        with hub:
            url = f"{hub.url}{API_PREFIX}"
            poll(lambda: requests.get(f"{url}/", timeout=5).status_code == 401, 120, 0.5)
            yield Service(url, user_token(hub, idp, USER, [ACCESS_SCOPE]))


def median(rows: list[dict[str, float]], key: str) -> float:
    return statistics.median(row[key] for row in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="measured repetitions (default 5)")
    parser.add_argument(
        "--poll-interval", type=float, default=1.0, help="the service's poll interval (s)"
    )
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root (starts Slurm daemons, submits as a demo user)")
    ensure_unix_user(USER)
    spec = copy.deepcopy(load_cluster_specs(REPO / "images" / "slurm" / "clusters.yaml")["alpha"])
    results: dict[str, list[dict[str, float]]] = {"ours": [], "plain": []}
    with (
        scratch_site("alpha", spec) as (root, alpha),
        workflows_hub(root, alpha, args.poll_interval) as service,
    ):
        for round_ in range(args.rounds + 1):  # round 0 warms caches (kernel, Slurm, hub)
            order = ["ours", "plain"] if round_ % 2 == 0 else ["plain", "ours"]
            for name in order:
                label = f"{name}-{round_}"
                if name == "ours":
                    row = ours(service, alpha, label)
                else:
                    row = plain(alpha, root / "plain" / str(round_), label)
                figures = ", ".join(f"{k} {v:.2f} s" for k, v in row.items())
                print(f"  round {round_} {name:<5}: {figures}", flush=True)
                if round_:
                    results[name].append(row)
        swept = sweep(service, alpha)
    report(results, swept, args.rounds, args.poll_interval)


def report(
    results: dict[str, list[dict[str, float]]],
    swept: dict[str, Any],
    rounds: int,
    poll_interval: float,
) -> None:
    print(
        f"\nworkflow_overhead on site alpha (batch, 1 core), median of {rounds} interleaved "
        f"rounds (after 1 warm-up); service poll interval {poll_interval:g} s"
    )
    for key, what in (("running", "submit → job RUNNING"), ("visible", "job end → visible")):
        mine, base = median(results["ours"], key), median(results["plain"], key)
        goal = 1.2 * base + 1.0
        verdict = "met" if mine <= goal else "MISSED"
        print(
            f"  {what:<22} ours {mine:6.2f} s   plain sbatch {base:6.2f} s   "
            f"ratio {mine / base:5.2f}x   goal ≤ 1.2 × plain + 1 s = {goal:.2f} s: {verdict}"
        )
    print(f"  submit → API shows running (ours): {median(results['ours'], 'api_running'):.2f} s")
    one = swept["array_ids"] == [swept["job_id"]]
    print(
        f"  sweep of {SWEEP}: POST → job id recorded {swept['seconds']:.2f} s "
        f"(goal < 2 s: {'met' if swept['seconds'] < 2 else 'MISSED'}); squeue: "
        f"{'one array job' if one else 'NOT one array job'} {swept['job_id']} "
        f"({len(swept['lines'])} line(s): {' '.join(swept['lines'])}; {swept['tasks']} tasks)"
    )


if __name__ == "__main__":
    main()
