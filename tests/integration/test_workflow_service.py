"""The workflow service as the hub runs it, on the real Slurm sites: REST in, papermill out.

Also what it outlives: the service killed (the hub restarts it), a job lost from outside
(retried on the soonest other site, both attempts in the crate), and the hub and the service
killed together while runs wait and run (each run ends, none is submitted twice).

The session ``hub`` starts the ``workflows`` service (``WorkflowService``, on by default) behind
its proxy at ``/services/workflows/``; users call it with hub tokens carrying
``access:services!service=workflows`` (made as a user makes them, ``fixtures.gateway.
user_token``).  Runs are Slurm jobs of the user's account on ``alpha`` executing the test
notebook (``fixtures.workflow_runs``: ``label``, ``fail``, ``sleep``) with papermill.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import pwd
import re
import signal
import subprocess
import tarfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import requests

from continuum_federation.hub import LocalHub
from continuum_federation.idp import OpenIDProvider
from continuum_federation.process import descendants
from continuum_federation.slurm import LocalSlurmCluster
from continuum_hub.workflows import ACCESS_SCOPE, API_PREFIX
from continuum_hub.workflows.service import PORT_FILE
from fixtures.crates import validate
from fixtures.gateway import user_token
from fixtures.slurm import squeue, wait_until
from fixtures.workflow_runs import notebook_bytes

pytestmark = [pytest.mark.integration, pytest.mark.workflows, pytest.mark.slow]

FINAL = {"done", "failed", "cancelled"}
RESOURCES = {"site": "alpha", "partition": "batch", "cores": 1, "memory_gb": 1, "walltime": "0:10"}


class Workflows:
    """The service through the hub's proxy, as one user."""

    def __init__(self, hub: LocalHub, token: str) -> None:
        self.api = f"{hub.url}{API_PREFIX}"
        self.headers = {"Authorization": f"token {token}"}

    def call(self, method: str, path: str, body: Any = None) -> requests.Response:
        return requests.request(
            method, f"{self.api}/{path}", json=body, headers=self.headers, timeout=60
        )

    def submit(self, **changes: Any) -> dict[str, Any]:
        body = {
            "notebook": {"path": "work/analysis.ipynb", "content": json.loads(notebook_bytes())},
            "parameters": {"label": "one"},
            "resources": RESOURCES,
            **changes,
        }
        response = self.call("POST", "runs", body)
        assert response.status_code == 201, response.text
        return dict(response.json())

    def run(self, run_id: str) -> dict[str, Any]:
        response = self.call("GET", f"runs/{run_id}")
        assert response.status_code == 200, response.text
        return dict(response.json())

    def wait(self, run_id: str, done: Callable[[dict], bool], timeout: float = 240) -> dict:
        found: dict[str, Any] = {}

        def check() -> bool:
            found.update(self.run(run_id))
            return done(found)

        wait_until(check, timeout=timeout, interval=1.0, what=f"run {run_id} to end")
        return found


def sources(notebook: dict[str, Any]) -> str:
    """All the cells' source text of a notebook (JSON: text or lists of lines)."""
    return "\n".join(
        "".join(c["source"]) if isinstance(c["source"], list) else c["source"]
        for c in notebook["cells"]
    )


def service_answers(hub: LocalHub) -> bool:
    """Whether the service answers behind the proxy (401 without a token: it is there)."""
    try:
        response = requests.get(f"{hub.url}{API_PREFIX}/", timeout=5)
    except requests.RequestException:
        return False
    return response.status_code == 401


@pytest.fixture(scope="module")
def alice(hub: LocalHub, idp: OpenIDProvider) -> Workflows:
    wait_until(lambda: service_answers(hub), timeout=60, what="the workflow service")
    return Workflows(hub, user_token(hub, idp, "alice", [ACCESS_SCOPE]))


@pytest.fixture(scope="module")
def bob(hub: LocalHub, idp: OpenIDProvider) -> Workflows:
    return Workflows(hub, user_token(hub, idp, "bob", [ACCESS_SCOPE]))


def test_tokens_without_the_scope_are_refused(hub: LocalHub, idp: OpenIDProvider) -> None:
    wait_until(lambda: service_answers(hub), timeout=60, what="the workflow service")
    assert requests.get(f"{hub.url}{API_PREFIX}/runs", timeout=30).status_code == 401
    other = Workflows(hub, user_token(hub, idp, "alice", ["read:users:activity!user"]))
    response = other.call("GET", "runs")
    assert response.status_code == 403 and ACCESS_SCOPE in response.json()["message"]


def alices_input() -> tuple[str, bytes]:
    """An input file in alice's home, hers and private: its path there and its bytes."""
    account = pwd.getpwnam("alice")
    data = os.urandom(4096)
    path = Path(account.pw_dir) / "work" / "calibration.bin"
    path.parent.mkdir(exist_ok=True)
    os.chown(path.parent, account.pw_uid, account.pw_gid)
    path.write_bytes(data)
    os.chown(path, account.pw_uid, account.pw_gid)
    path.chmod(0o600)
    return "work/calibration.bin", data


def test_alice_runs_a_notebook_and_bob_cannot_see_it(alice: Workflows, bob: Workflows) -> None:
    """…with an input copied into the run folder, and the folder downloaded without tokens."""
    rel, data = alices_input()
    run = alice.submit(parameters={"label": "from-rest"}, inputs=[{"path": rel, "copy": True}])
    assert run["state"] in ("queued", "running") and run["job_id"]
    assert bob.call("GET", f"runs/{run['id']}").json() == {"message": "not your run"}
    assert bob.call("POST", f"runs/{run['id']}/cancel", {}).status_code == 403
    assert bob.call("GET", f"runs/{run['id']}/archive").status_code == 403
    run = alice.wait(run["id"], lambda r: r["state"] in FINAL)
    assert run["state"] == "done", run
    assert run["members"][0]["state"] == "done" and run["members"][0]["cells"]
    notebook = alice.call("GET", f"runs/{run['id']}/notebook")
    assert notebook.status_code == 200
    assert 'label = "from-rest"' in sources(notebook.json())
    crate = alice.call("GET", f"runs/{run['id']}/crate")
    assert crate.status_code == 200 and "@graph" in crate.json()
    # the copied input, described with the original's digest
    copied = next(e for e in crate.json()["@graph"] if e["@id"] == rel)
    assert copied["sha256"] == hashlib.sha256(data).hexdigest()
    download = alice.call("GET", f"runs/{run['id']}/archive")
    assert download.status_code == 200 and download.headers["Content-Type"] == "application/gzip"
    assert re.fullmatch(
        rf'attachment; filename="[A-Za-z0-9._-]+-{run["id"]}\.tar\.gz"',
        download.headers["Content-Disposition"],
    )
    with tarfile.open(fileobj=io.BytesIO(download.content), mode="r:gz") as tar:
        names = set(tar.getnames())
        copy = tar.extractfile(f"{run['id']}/{rel}")
        assert copy is not None and copy.read() == data
    assert {f"{run['id']}/run.json", f"{run['id']}/output.ipynb"} <= names
    assert not [n for n in names if "token" in n], names
    credentials = alice.call("GET", "credentials").json()["credentials"]
    assert next(c for c in credentials if c["run_id"] == run["id"])["revoked"] is True
    # the run folder is the account's own and not readable by others
    folder = Path(run["folder"])
    assert folder.stat().st_uid == pwd.getpwnam("alice").pw_uid
    assert folder.stat().st_mode & 0o077 == 0


def test_sweep_of_three(alice: Workflows) -> None:
    run = alice.submit(parameters={}, sweep={"grid": {"label": ["a", "b", "c"]}}, max_parallel=2)
    assert len(run["members"]) == 3
    run = alice.wait(run["id"], lambda r: r["state"] in FINAL)
    assert run["state"] == "done", run
    assert [m["state"] for m in run["members"]] == ["done"] * 3
    for index, label in enumerate("abc"):
        notebook = alice.call("GET", f"runs/{run['id']}/notebook?member={index}").json()
        assert f'label = "{label}"' in sources(notebook)


def service_pids(hub: LocalHub) -> list[int]:
    """The hub's workflow service process (its children's command lines)."""
    assert hub.process is not None and hub.process.proc is not None
    found = []
    for pid in descendants(hub.process.proc.pid):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"continuum_hub.workflows" in argv:
            found.append(pid)
    return found


def test_service_killed_while_a_run_waits(alice: Workflows, hub: LocalHub) -> None:
    run = alice.submit(parameters={"label": "survivor", "sleep": 15})
    job_id = run["job_id"]
    (pid,) = service_pids(hub)
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: pid not in service_pids(hub), timeout=30, what="the service gone")
    # the hub starts it again; it resumes tracking from its database
    wait_until(lambda: bool(service_pids(hub)), timeout=120, what="the service restarted")
    wait_until(lambda: service_answers(hub), timeout=60, what="the restarted service")
    started = time.monotonic()
    run = alice.wait(run["id"], lambda r: r["state"] in FINAL, timeout=300)
    assert run["state"] == "done", run
    assert run["job_id"] == job_id and len(run["attempts"]) == 1  # submitted once
    assert time.monotonic() - started < 300


CHAIN = """name: across
steps:
  - name: simulate
    notebook: work/analysis.ipynb
    parameters: {fail: true, label: first}
    resources: {site: alpha, partition: batch, cores: 1, memory_gb: 1, walltime: "0:10"}
  - name: summarize
    notebook: work/analysis.ipynb
    depends_on: [simulate]
    resources: {site: beta, cores: 1, memory_gb: 1, walltime: "0:10"}
"""


def test_chain_across_sites_cancels_the_second_step(alice: Workflows) -> None:
    body = {"yaml": CHAIN, "notebooks": {"work/analysis.ipynb": json.loads(notebook_bytes())}}
    response = alice.call("POST", "workflows", body)
    assert response.status_code == 201, response.text
    steps = response.json()["steps"]
    second = alice.run(steps["summarize"])
    assert second["state"] == "pending" and second["reason"] == "waiting for simulate"
    assert second["job_id"] is None  # held by the service, not by Slurm
    first = alice.wait(steps["simulate"], lambda r: r["state"] in FINAL)
    assert first["state"] == "failed" and "asked to fail: first" in first["reason"]
    second = alice.wait(steps["summarize"], lambda r: r["state"] in FINAL, timeout=30)
    assert second["state"] == "cancelled" and second["job_id"] is None
    assert second["reason"].startswith("step simulate failed: cell")
    workflow = alice.call("GET", f"workflows/{response.json()['id']}").json()
    assert workflow["state"] == "failed"
    cwl = alice.call("GET", f"workflows/{response.json()['id']}/cwl")
    assert cwl.status_code == 200 and "cwlVersion: v1.2" in cwl.text


def test_job_cancelled_outside_is_moved_to_the_other_site(
    alice: Workflows,
    slurm_sites: Mapping[str, LocalSlurmCluster],
    validator_cache: Path,
    tmp_path: Path,
) -> None:
    run = alice.submit(parameters={"label": "moved", "sleep": 20}, retries=1, allow_move=True)
    run = alice.wait(run["id"], lambda r: r["state"] == "running" and r["members"][0]["cell"])
    # the job is lost from outside the service (an admin's scancel, a node failure)
    alpha = slurm_sites["alpha"]
    subprocess.run(["scancel", run["job_id"]], env=alpha.client_env(), check=True, timeout=30)
    run = alice.wait(run["id"], lambda r: len(r["attempts"]) == 2, timeout=60)
    assert [a["site"] for a in run["attempts"]] == ["alpha", "beta"]
    assert run["attempts"][0]["state"] == "failed"
    assert run["attempts"][1]["reason"].startswith("moved to beta: ")  # and when it starts
    # the second attempt runs in the same folder (both sites share the home) and finishes
    run = alice.wait(run["id"], lambda r: r["state"] in FINAL)
    assert run["state"] == "done", run
    # the crate records both attempts: one CreateAction per Slurm job, on each site
    crate = alice.call("GET", f"runs/{run['id']}/crate")
    assert crate.status_code == 200
    actions = sorted(
        (e for e in crate.json()["@graph"] if e.get("@type") == "CreateAction"),
        key=lambda e: e["@id"],
    )
    jobs = [(a["site"], a["job_id"]) for a in run["attempts"]]
    assert [(a["name"].split(" on ")[-1], a["identifier"]) for a in actions] == jobs
    assert Path(run["folder"], "attempts", "1", "status.json").exists()  # attempt 1's left
    status, report = validate(Path(run["folder"]), validator_cache, tmp_path)
    assert report["issues"] == [] and status == 0


RESTART_CHAIN = """name: restart
steps:
  - name: simulate
    notebook: work/analysis.ipynb
    parameters: {label: first, sleep: 20}
    resources: {site: alpha, partition: batch, cores: 1, memory_gb: 1, walltime: "0:10"}
  - name: summarize
    notebook: work/analysis.ipynb
    depends_on: [simulate]
    resources: {site: beta, cores: 1, memory_gb: 1, walltime: "0:10"}
"""


def started_at(pid: int) -> str | None:
    """The start time of process ``pid`` (``/proc/PID/stat`` field 22), ``None`` when gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def kill_hub_and_service(hub: LocalHub) -> None:
    """SIGKILL the hub and the workflow service at once, then end what the hub had started
    (proxy, other services: sessions of their own) as an operator would before restarting."""
    assert hub.process is not None and hub.process.proc is not None
    leader = hub.process.proc.pid
    (service,) = service_pids(hub)
    below = {pid: started_at(pid) for pid in descendants(leader)}
    os.kill(service, signal.SIGKILL)
    os.kill(leader, signal.SIGKILL)
    hub.stop()  # the leader is gone: its process group is ended
    for pid, started in below.items():
        if started is not None and started_at(pid) == started:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_hub_and_service_killed_while_runs_wait_and_run(
    alice: Workflows, hub: LocalHub, slurm_sites: Mapping[str, LocalSlurmCluster]
) -> None:
    notebooks = {"work/analysis.ipynb": json.loads(notebook_bytes())}
    body = {"yaml": RESTART_CHAIN, "notebooks": notebooks}
    response = alice.call("POST", "workflows", body)
    assert response.status_code == 201, response.text
    steps = response.json()["steps"]
    long = alice.submit(parameters={"label": "long", "sleep": 300})
    first = alice.wait(steps["simulate"], lambda r: r["state"] in {"running", *FINAL})
    long = alice.wait(long["id"], lambda r: r["state"] == "running")
    assert alice.run(steps["summarize"])["state"] == "pending"  # held by the service
    kept = hub.state_dir / "workflows" / PORT_FILE
    port = json.loads(kept.read_text())["port"]
    kill_hub_and_service(hub)
    hub.start()
    wait_until(lambda: service_answers(hub), timeout=60, what="the restarted service")
    # on its port of before: servers' CONTINUUM_WORKFLOWS_URL still leads to it
    assert json.loads(kept.read_text())["port"] == port
    direct = requests.get(f"http://127.0.0.1:{port}{API_PREFIX}/", timeout=30)
    assert direct.status_code == 401
    # every run reaches its final state, each submitted once
    first = alice.wait(first["id"], lambda r: r["state"] in FINAL, timeout=300)
    second = alice.wait(steps["summarize"], lambda r: r["state"] in FINAL, timeout=300)
    assert first["state"] == "done" and second["state"] == "done", (first, second)
    assert len(first["attempts"]) == len(second["attempts"]) == 1
    now = alice.run(long["id"])
    assert now["state"] == "running" and now["job_id"] == long["job_id"]
    assert len(now["attempts"]) == 1
    # cancelled after the restart: no job of it is left on the site
    assert alice.call("POST", f"runs/{long['id']}/cancel", {}).json()["state"] == "cancelled"
    alpha = slurm_sites["alpha"]
    wait_until(
        lambda: not squeue(alpha, f"--name=cw-{long['id']}", "--format=%i"),
        timeout=60,
        what="the cancelled run's job gone",
    )
