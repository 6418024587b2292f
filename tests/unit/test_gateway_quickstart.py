"""First workers started with the scheduler (:mod:`continuum_hub.gateway.quickstart`).

The preload (:mod:`continuum_hub.gateway.scheduler_setup`) and the scheduler file are tried on a
real ``distributed`` scheduler with the real ``dask_gateway.scheduler_preload``, whose heartbeats
go to a small stand-in of the gateway's API; the worker records on a real (in-memory) gateway
database; the job script of a scheduler and its first worker in one job is run by ``sh`` with
stand-ins of both commands.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shlex
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from aiohttp import web
from dask_gateway_server.backends.db_base import DataManager, JobStatus
from distributed import Scheduler, Worker
from traitlets.config import Config

from continuum_hub.gateway.backend import SiteSlurmBackend
from continuum_hub.gateway.jobs import SiteClusterConfig
from continuum_hub.gateway.quickstart import (
    BOTH_SCRIPT,
    PHASES,
    SETUP_FILE,
    START_WORKERS_ENV,
    StartPhases,
    parse_phases,
    queue_start_workers,
    scheduler_args,
    setup_source,
    worker_target,
)

pytestmark = pytest.mark.gateway

NAME = "0123456789abcdef0123456789abcdef"


def test_arguments_name_the_staging_folders_files() -> None:
    assert scheduler_args("/home/a/.dask-gateway/c") == [
        "--no-dashboard",  # loaded by the preload, after the first heartbeat
        "--scheduler-file",
        "/home/a/.dask-gateway/c/scheduler.json",
        "--preload",
        f"/home/a/.dask-gateway/c/{SETUP_FILE}",
    ]
    assert worker_target("tls://10.0.0.2:4567", "/s") == ["tls://10.0.0.2:4567"]
    assert worker_target("", "/s") == ["--scheduler-file", "/s/scheduler.json"]


class FakeGatewayAPI:
    """The gateway's heartbeat endpoint, recording what the scheduler sends."""

    def __init__(self) -> None:
        self.beats: list[dict[str, Any]] = []

    async def heartbeat(self, request: web.Request) -> web.Response:
        assert request.headers["Authorization"] == "token the-token"
        assert request.match_info["name"] == NAME
        self.beats.append(await request.json())
        return web.Response(status=204)


async def wait_for(check: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not seen in {seconds} s")
        await asyncio.sleep(0.05)


async def test_scheduler_asks_for_its_start_workers_from_the_first_heartbeat(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = FakeGatewayAPI()
    app = web.Application()
    app.router.add_post("/api/v1/clusters/{name}/heartbeat", api.heartbeat)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    monkeypatch.setenv("DASK_GATEWAY_API_URL", f"http://127.0.0.1:{port}/api")
    monkeypatch.setenv("DASK_GATEWAY_API_TOKEN", "the-token")
    monkeypatch.setenv("DASK_GATEWAY_CLUSTER_NAME", NAME)
    monkeypatch.setenv(START_WORKERS_ENV, "2")
    args = scheduler_args(str(tmp_path))
    address_file, preload = Path(args[2]), Path(args[4])
    await asyncio.to_thread(preload.write_text, setup_source())  # as the launcher writes it
    try:
        # as the job's command line: the gateway's preload, then ours, then the gateway's options
        async with Scheduler(
            host="127.0.0.1",
            port=0,
            dashboard=False,
            dashboard_address="127.0.0.1:0",
            scheduler_file=str(address_file),
            preload=["dask_gateway.scheduler_preload", str(preload)],
            preload_argv=["--dg-api-address", "127.0.0.1:0", "--dg-heartbeat-period", "1"],
        ) as scheduler:
            assert scheduler.services["gateway"].heartbeat_initial == 0.0
            await wait_for(lambda: api.beats, 30, "a heartbeat")
            # the first heartbeat already asks for both workers: the gateway keeps them pending
            assert api.beats[0]["count"] == 2
            assert api.beats[0]["scheduler_address"] == scheduler.address
            # the dashboard is added after it, where the gateway relays dashboards
            dashboard = api.beats[0]["dashboard_address"]
            assert dashboard == f"http://127.0.0.1:{scheduler.http_server.port}"

            def dashboard_up() -> bool:
                page = requests.get(f"{dashboard}/status", timeout=5)
                return page.status_code == 200 and "Dask" in page.text

            deadline = time.monotonic() + 60
            while not await asyncio.to_thread(dashboard_up):
                assert time.monotonic() < deadline, "the dashboard was not added"
                await asyncio.sleep(0.1)
            written = json.loads(await asyncio.to_thread(address_file.read_text))
            assert written["address"] == scheduler.address
            # a worker started before anyone knew the address finds it in the file, and stays
            async with Worker(scheduler_file=str(address_file), name="w1", nthreads=1) as worker:
                await wait_for(
                    lambda: any("w1" in b["active_workers"] for b in api.beats),
                    30,  # polled: generous for a loaded machine
                    "the worker in a heartbeat",
                )
                assert worker.scheduler.address == scheduler.address
                assert not any(b["closing_workers"] for b in api.beats)
    finally:
        await runner.cleanup()


async def test_start_workers_are_created_once_and_queued() -> None:
    db = DataManager()
    cluster = db.create_cluster("alice", {}, {"start_workers": 2})

    class Queue(list[Any]):
        put = list.append

    queue = Queue()
    created = queue_start_workers(db, queue, cluster, 2)
    assert len(created) == 2 and queue == created
    assert all(w.status == JobStatus.CREATED and w.target == JobStatus.RUNNING for w in created)
    assert set(cluster.workers) == {w.name for w in created}
    # asked again (a retried submission): the cluster already has its workers
    assert queue_start_workers(db, queue, cluster, 2) == []
    assert queue_start_workers(db, queue, cluster, 0) == []
    assert len(queue) == 2


def test_phases_are_timed_from_creation_and_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    now = [100.0]
    log = logging.getLogger("test-quickstart")
    phases = StartPhases(log, clock=lambda: now[0])
    phases.mark("c1", "scheduler submitted")  # before "created" (a restarted gateway): ignored
    assert phases.elapsed("c1") == {}
    phases.mark("c1", "created")
    for step, phase in enumerate(PHASES[1:-1], start=1):
        now[0] = 100.0 + step * 0.5
        phases.mark("c1", phase)
    phases.mark("c1", "address known")  # a later heartbeat: the first time counts
    assert phases.elapsed("c1")["address known"] == pytest.approx(1.5)
    assert list(phases.elapsed("c1")) == list(PHASES[1:-1])
    now[0] = 103.0
    with caplog.at_level(logging.INFO, logger="test-quickstart"):
        phases.mark("c1", "first worker reported")
        phases.mark("c1", "first worker reported")
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "Cluster c1 start phases: scheduler submitted +0.50 s, first worker submitted +1.00 s, "
        "address known +1.50 s, running +2.00 s, first worker reported +3.00 s"
    ]
    assert phases.elapsed("c1") == {}  # done: nothing kept
    assert parse_phases(f"[I 2026 gateway] {lines[0]}\nother line")["c1"] == {
        "scheduler submitted": 0.5, "first worker submitted": 1.0, "address known": 1.5,
        "running": 2.0, "first worker reported": 3.0,
    }  # fmt: skip
    phases.mark("c2", "created")
    phases.forget("c2")
    assert phases.elapsed("c2") == {}
    with pytest.raises(ValueError, match="unknown phase"):
        phases.mark("c2", "coffee")


# -- the backend: what is submitted, in which order --------------------------------------------

REGISTRY = """
sites:
  - name: alpha
    scheduler: slurm
    bind_address: 127.0.0.1
    partitions:
      - {name: interactive, default: true, max_cores: 4, max_memory_gb: 8, max_walltime: "08:00:00"}
"""


def job_command(script: str) -> list[str]:
    return shlex.split(script.splitlines()[-1].removeprefix("exec "))


def both_commands(script: str) -> tuple[list[str], list[str]]:
    """The scheduler's and the worker's command of a job that runs both."""
    lines = [line.removesuffix(" &") for line in script.splitlines() if line.endswith(" &")]
    return shlex.split(lines[-2]), shlex.split(lines[-1])


@pytest.mark.parametrize(
    ("start", "in_job"), [(2, True), (2, False), (0, True)], ids=["in-job", "separate", "none"]
)
async def test_workers_start_with_the_scheduler(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, start: int, in_job: bool
) -> None:
    registry = tmp_path / "sites.yaml"
    registry.write_text(REGISTRY)
    settings = {"registry_path": str(registry), "api_url": "http://127.0.0.1:9/api"}
    gw = SiteSlurmBackend(config=Config({"SiteSlurmBackend": {**settings, "token_agent": []}}))
    gw.db = DataManager()
    events: list[tuple[str, Any]] = []

    class Queue:
        def put(self, obj: Any) -> None:
            events.append(("queued", obj))

    gw.queue = Queue()
    # who runs the jobs and the sbatch call are the site's; here only the order is looked at
    monkeypatch.setattr(gw, "unix_account", lambda *args, **kwargs: "root")
    sent: list[tuple[list[str], dict[str, str], dict[str, Any]]] = []

    async def submit(
        cluster: Any, worker: Any = None, with_scheduler: bool = False, **files: Any
    ) -> str:
        argv, env, script = gw.get_submit_cmd_env_stdin(cluster, worker, with_scheduler)
        sent.append((argv, env, files))
        events.append(("sbatch", script))
        return str(100 + len(events))

    monkeypatch.setattr(gw, "_submit", submit)
    config = SiteClusterConfig(
        site="alpha", partition="interactive", start_workers=start, scheduler_in_worker_job=in_job
    )
    cluster = gw.db.create_cluster("root", {}, config.to_dict())
    gw.phases.mark(cluster.name, "created")
    states = [state async for state in gw.do_start_cluster(cluster)]
    staging = f"/root/.dask-gateway/{cluster.name}"
    address_file = f"{staging}/scheduler.json"
    kind, script = events[0]
    if start and in_job:
        scheduler, first = both_commands(script)
    else:
        scheduler, first = job_command(script), []
    assert kind == "sbatch" and scheduler[1] == "scheduler"
    assert scheduler[scheduler.index("--scheduler-file") + 1] == address_file
    preloads = [scheduler[i + 1] for i, a in enumerate(scheduler) if a == "--preload"]
    assert preloads == ["dask_gateway.scheduler_preload", f"{staging}/{SETUP_FILE}"]
    assert "--no-dashboard" in scheduler  # the preload loads it
    argv, env, files = sent[0]
    assert files["files"][SETUP_FILE] == setup_source()
    assert env.get(START_WORKERS_ENV, "0") == str(start)
    # the other workers are queued after the scheduler's sbatch, before the cluster is submitted
    queued = start - 1 if in_job else start
    assert [kind for kind, _ in events[1:]] == ["queued"] * max(0, queued)
    assert states[-1]["job_id"] == "101"
    assert cluster.count == start
    if not start:
        return
    if in_job:
        # one job for both: the scheduler's and the worker's cores and memory
        assert {"--cpus-per-task=2", "--mem=4G"} <= set(argv)
        assert first[1:4] == ["worker", "--scheduler-file", address_file]
        assert "DASK_DISTRIBUTED__COMM__TLS__WORKER__CERT" in env
        inner = cluster.workers[first[first.index("--name") + 1]]
        assert inner.status == JobStatus.SUBMITTED and inner.state["job_id"] == "101"
        assert cluster.active_workers() == [inner, events[1][1]]
        # scaled away, it leaves the job to the scheduler: no scancel
        cancels: list[Any] = []
        monkeypatch.setattr(gw, "_cancel", lambda *args: cancels.append(args))
        await gw.do_stop_worker(inner)
        assert cancels == []
    worker = events[1][1]
    assert worker.status == JobStatus.CREATED and worker.name in cluster.workers
    # submitted before the address is known: the worker reads it from the staging folder
    async for _ in gw.do_start_worker(worker):
        pass
    command = job_command(events[-1][1])
    assert command[1:4] == ["worker", "--scheduler-file", address_file]
    assert "--no-dashboard" in command  # nobody reaches a worker's dashboard
    assert list(gw.phases.elapsed(cluster.name)) == [
        "scheduler submitted",
        "first worker submitted",
    ]
    # once it is known, later workers (scale-ups) get the address itself
    cluster.scheduler_address = "tls://127.0.0.1:4567"
    _, _, script = gw.get_submit_cmd_env_stdin(cluster, worker)
    assert job_command(script)[1:3] == ["worker", "tls://127.0.0.1:4567"]


FAKE = """#!/bin/sh
echo "$$" > "{folder}/$1.pid"
trap 'echo term >> "{folder}/$1.log"; exit 0' TERM
echo started >> "{folder}/$1.log"
[ "$1" = worker ] && [ -e "{folder}/worker-exits" ] && exit 0
while :; do sleep 0.05; done
"""


def pid_file(folder: Path, role: str) -> int:
    deadline = time.monotonic() + 20
    while not (folder / f"{role}.pid").exists() or not (folder / f"{role}.pid").read_text():
        assert time.monotonic() < deadline, f"{role} did not start"
        time.sleep(0.05)
    return int((folder / f"{role}.pid").read_text())


def _state(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1][:3]
    except OSError:
        return b"Z"


@pytest.mark.parametrize("worker_exits", [False, True], ids=["worker-stays", "worker-retired"])
def test_a_job_of_both_lasts_as_long_as_its_scheduler(tmp_path: Path, worker_exits: bool) -> None:
    fake = tmp_path / "dask"
    fake.write_text(FAKE.format(folder=tmp_path))
    fake.chmod(0o755)
    if worker_exits:
        (tmp_path / "worker-exits").touch()
    script = BOTH_SCRIPT.format(setup="", scheduler=f"{fake} scheduler", worker=f"{fake} worker")
    job = subprocess.Popen(["/bin/sh", "-c", script])
    try:
        scheduler = pid_file(tmp_path, "scheduler")
        worker = pid_file(tmp_path, "worker")
        # a retired worker has exited: the job keeps running for the scheduler
        with pytest.raises(subprocess.TimeoutExpired):
            job.wait(timeout=0.5)
        os.kill(scheduler, signal.SIGTERM)  # the scheduler ends (idle timeout, shutdown)
        assert job.wait(timeout=20) == 0
        deadline = time.monotonic() + 20
        while Path(f"/proc/{worker}").exists() and b"Z" not in _state(worker):
            assert time.monotonic() < deadline, "the worker outlived its scheduler"
            time.sleep(0.05)
        worker_log = (tmp_path / "worker.log").read_text().split()
        assert worker_log == (["started"] if worker_exits else ["started", "term"])
    finally:
        if job.poll() is None:
            job.kill()
