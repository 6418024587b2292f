"""First workers submitted with the scheduler (:mod:`continuum_hub.gateway.quickstart`).

The preload and the scheduler file are tried on a real ``distributed`` scheduler with the real
``dask_gateway.scheduler_preload``, whose heartbeats go to a small stand-in of the gateway's API;
the worker records on a real (in-memory) gateway database.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shlex
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from dask_gateway_server.backends.db_base import DataManager, JobStatus
from distributed import Scheduler, Worker
from traitlets.config import Config

from continuum_hub.gateway.backend import SiteSlurmBackend
from continuum_hub.gateway.jobs import SiteClusterConfig
from continuum_hub.gateway.quickstart import (
    PHASES,
    StartPhases,
    count_preload,
    parse_phases,
    queue_start_workers,
    scheduler_args,
    worker_target,
)

pytestmark = pytest.mark.gateway

NAME = "0123456789abcdef0123456789abcdef"


def test_arguments_name_the_staging_folders_file() -> None:
    assert scheduler_args("/home/a/.dask-gateway/c", 0) == [
        "--scheduler-file",
        "/home/a/.dask-gateway/c/scheduler.json",
    ]
    args = scheduler_args("/s", 3)
    assert args[:3] == ["--scheduler-file", "/s/scheduler.json", "--preload"]
    assert " " in args[3]  # distributed runs a preload with a space as source text
    assert worker_target("tls://10.0.0.2:4567", "/s") == ["tls://10.0.0.2:4567"]
    assert worker_target("", "/s") == ["--scheduler-file", "/s/scheduler.json"]
    with pytest.raises(ValueError, match="not negative"):
        count_preload(-1)


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
    args = scheduler_args(str(tmp_path), 2)
    address_file = Path(args[1])
    try:
        # as the job's command line: the gateway's preload, then ours, then the gateway's options
        async with Scheduler(
            host="127.0.0.1",
            port=0,
            dashboard_address=":0",
            scheduler_file=str(address_file),
            preload=["dask_gateway.scheduler_preload", args[3]],
            preload_argv=["--dg-api-address", "127.0.0.1:0", "--dg-heartbeat-period", "1"],
        ) as scheduler:
            await wait_for(lambda: api.beats, 10, "a heartbeat")
            # the first heartbeat already asks for both workers: the gateway keeps them pending
            assert api.beats[0]["count"] == 2
            assert api.beats[0]["scheduler_address"] == scheduler.address
            written = json.loads(await asyncio.to_thread(address_file.read_text))
            assert written["address"] == scheduler.address
            # a worker started before anyone knew the address finds it in the file, and stays
            async with Worker(scheduler_file=str(address_file), name="w1", nthreads=1) as worker:
                await wait_for(
                    lambda: any("w1" in b["active_workers"] for b in api.beats),
                    10,
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


@pytest.mark.parametrize("start", [2, 0])
async def test_workers_are_queued_right_after_the_scheduler(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, start: int
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

    async def submit(cluster: Any, worker: Any = None, **files: Any) -> str:
        _, _, script = gw.get_submit_cmd_env_stdin(cluster, worker)
        events.append(("sbatch", job_command(script)))
        return str(100 + len(events))

    monkeypatch.setattr(gw, "_submit", submit)
    config = SiteClusterConfig(site="alpha", partition="interactive", start_workers=start)
    cluster = gw.db.create_cluster("root", {}, config.to_dict())
    gw.phases.mark(cluster.name, "created")
    states = [state async for state in gw.do_start_cluster(cluster)]
    address_file = f"/root/.dask-gateway/{cluster.name}/scheduler.json"
    kind, scheduler = events[0]
    assert kind == "sbatch" and scheduler[1] == "scheduler"
    assert scheduler[scheduler.index("--scheduler-file") + 1] == address_file
    preloads = [scheduler[i + 1] for i, a in enumerate(scheduler) if a == "--preload"]
    # the workers are queued after the scheduler's sbatch and before the cluster is submitted
    assert [kind for kind, _ in events[1:]] == ["queued"] * start
    assert states[-1]["job_id"] == "101"
    assert cluster.count == start
    if not start:
        assert preloads == ["dask_gateway.scheduler_preload"]
        return
    assert preloads[0] == "dask_gateway.scheduler_preload"
    assert f"service.count = max(service.count, {start})" in preloads[1]
    worker = events[1][1]
    assert worker.status == JobStatus.CREATED and worker.name in cluster.workers
    # submitted before the address is known: the worker reads it from the staging folder
    async for _ in gw.do_start_worker(worker):
        pass
    command = events[-1][1]
    assert command[1:4] == ["worker", "--scheduler-file", address_file]
    assert list(gw.phases.elapsed(cluster.name)) == [
        "scheduler submitted",
        "first worker submitted",
    ]
    # once it is known, later workers (scale-ups) get the address itself
    cluster.scheduler_address = "tls://127.0.0.1:4567"
    _, _, script = gw.get_submit_cmd_env_stdin(cluster, worker)
    assert job_command(script)[1:3] == ["worker", "tls://127.0.0.1:4567"]
