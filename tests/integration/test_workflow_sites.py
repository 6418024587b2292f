"""Batch runs on the real Slurm site ``alpha``, through the site executor (no hub).

As alice, :class:`~continuum_hub.workflows.executor.SiteExecutor` prepares each run folder as
her account, submits the job (a sweep: one job array; a chain step: ``afterok`` on the step
before), follows it with the site's batched status query and judges its end from what the
runner wrote.  The notebook is tiny (papermill's kernel start is most of a run's time).  A small
HTTP server stands in for the hub's token route, so the token agent in the job really fills
``BEARER_TOKEN_FILE``.
"""

from __future__ import annotations

import asyncio
import json
import os
import pwd
import secrets
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from continuum_hub.workflows.executor import RunPlan, SiteExecutor, member_states, run_state
from fixtures.crates import validate
from fixtures.slurm import run_as, squeue, wait_until
from fixtures.workflow_runs import TOKEN, demo_registry, make_plan

# every test waits for Slurm jobs and papermill kernels: slow
pytestmark = [pytest.mark.integration, pytest.mark.workflows, pytest.mark.slow]

FINAL = {"done", "failed", "cancelled"}
ACCESS_TOKEN = "access-token-for-the-run"


class TokenRoute(BaseHTTPRequestHandler):
    """``GET /hub/api/continuum/token`` as the hub answers it, for the run's token only."""

    def do_GET(self) -> None:
        ok = self.path == "/hub/api/continuum/token" and (
            self.headers.get("Authorization") == f"token {TOKEN}"
        )
        body = json.dumps(
            {"access_token": ACCESS_TOKEN, "expires_at": time.time() + 3600}
            if ok
            else {"message": "no"}
        ).encode()
        self.send_response(200 if ok else 403)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def hub_api() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), TokenRoute)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hub/api"
    server.shutdown()


@pytest.fixture(scope="module")
def registry(slurm_sites, unix_users):
    return demo_registry(
        {
            "CONTINUUM_SLURM_CONF_ALPHA": str(slurm_sites["alpha"].conf_path),
            "CONTINUUM_SLURM_CONF_BETA": str(slurm_sites["beta"].conf_path),
        }
    )


@pytest.fixture
def executor() -> SiteExecutor:
    return SiteExecutor(status_max_age=0.3)


@pytest.fixture
def runs(registry, hub_api, executor) -> Iterator[list[RunPlan]]:
    """Plans made by a test (``new(...)``); their jobs are cancelled and folders removed."""
    made: list[RunPlan] = []
    yield made
    for plan in made:
        subprocess.run(
            ["scancel", f"--name=cw-{plan.run_id}"],
            env={**os.environ, **plan.site.env},
            capture_output=True,
            check=False,
        )
        shutil.rmtree(executor.folder(plan), ignore_errors=True)


def new(runs: list[RunPlan], registry, hub_api: str, **fields) -> RunPlan:
    fields.setdefault("run_id", f"r-{secrets.token_hex(6)}")
    plan = make_plan(registry, hub_api_url=hub_api, **fields)
    runs.append(plan)
    return plan


async def start(executor: SiteExecutor, plan: RunPlan) -> tuple[str, str]:
    folder = await executor.prepare(plan)
    return folder, await executor.submit(plan)


async def follow(
    executor: SiteExecutor, plan: RunPlan, folder: str, job_id: str, limit: float = 90
) -> tuple[str, list[dict], list[dict]]:
    """Poll until the run is final: its state, its members, and every status answer seen."""
    seen: list[dict] = []
    deadline = time.monotonic() + limit
    while True:
        statuses = await executor.status(plan.site, [job_id])
        seen.append({key: status.state.value for key, status in statuses.items()})
        members = member_states(
            await executor.report(plan.site, plan.account, folder), statuses, job_id
        )
        state = run_state(members)
        if state in FINAL:
            return state, members, seen
        assert time.monotonic() < deadline, f"run {plan.run_id} still {state}: {members}"
        await asyncio.sleep(0.5)


async def crate_written(executor: SiteExecutor, plan: RunPlan, folder: str) -> None:
    for _ in range(60):
        if (await executor.report(plan.site, plan.account, folder))["crate"]:
            return
        await asyncio.sleep(0.5)
    raise AssertionError(f"no crate in {folder}")


def injected(notebook: bytes) -> str:
    """The source of papermill's injected-parameters cell."""
    cells = json.loads(notebook)["cells"]
    return next(
        "".join(c["source"])
        for c in cells
        if "injected-parameters" in c["metadata"].get("tags", [])
    )


def text(*parts: str) -> str | None:
    """The file's text, as root; ``None`` when it does not exist."""
    path = Path(*parts)
    return path.read_text() if path.exists() else None


def processes_of(run_id: str) -> list[int]:
    """Processes whose environment names the run (``CONTINUUM_RUN_ID``)."""
    marker = f"CONTINUUM_RUN_ID={run_id}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and marker in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def private_to(folder: str, account: str) -> None:
    """Everything in ``folder`` belongs to ``account``, none of it open to others."""
    uid = pwd.getpwnam(account).pw_uid
    for top, dirs, files in os.walk(folder):
        for name in [*dirs, *files, ""]:
            info = os.lstat(os.path.join(top, name))
            assert info.st_uid == uid, os.path.join(top, name)
            assert info.st_mode & 0o077 == 0, (os.path.join(top, name), oct(info.st_mode))


async def test_single_run(executor, runs, registry, hub_api, validator_cache, tmp_path):
    label = 'a\'b "c" $(touch /tmp/pwned) `id`\nnext'
    plan = new(runs, registry, hub_api, parameters=[{"label": label}], outputs=["result.txt"])
    folder, job_id = await start(executor, plan)
    assert folder == f"{pwd.getpwnam('alice').pw_dir}/continuum-runs/{plan.run_id}"

    state, members, _ = await follow(executor, plan, folder, job_id)

    assert state == "done", members
    output = await executor.read_file(plan.site, "alice", folder, "output.ipynb")
    assert injected(output).startswith("# Parameters\nlabel = ") and "$(touch" in injected(output)
    assert text(folder, "result.txt") == label
    assert text("/tmp/pwned") is None
    # the token agent filled BEARER_TOKEN_FILE from the (stand-in) hub
    assert (text(folder, ".bearer-token") or "").strip() == ACCESS_TOKEN
    await crate_written(executor, plan, folder)
    crate = json.loads(
        await executor.read_file(plan.site, "alice", folder, "ro-crate-metadata.json")
    )
    graph = {entity["@id"]: entity for entity in crate["@graph"]}
    assert graph["#attempt-1"]["identifier"] == job_id
    assert graph["#parameter-value-label"]["value"] == label
    status, report = validate(Path(folder), validator_cache, tmp_path)
    assert report["issues"] == [] and status == 0
    private_to(folder, "alice")


async def test_sweep_is_one_job_array(executor, runs, registry, hub_api, slurm_sites):
    values = ["first", "second", "third"]
    plan = new(
        runs,
        registry,
        hub_api,
        parameters=[{"label": value, "sleep": 1.0} for value in values],
        max_parallel=2,
    )
    folder, job_id = await start(executor, plan)
    assert job_id.isdigit()  # one job: the array
    # found again by its name (a service restarted before recording the id)
    assert await executor.find_job(plan.site, "alice", plan.run_id) == job_id

    # while it runs, the site's status query lists the array's tasks
    statuses = await executor.status(plan.site, [job_id])
    tasks = {key for key in statuses if key.startswith(f"{job_id}_")}
    rows = squeue(slurm_sites["alpha"], f"--jobs={job_id}", "--array", "--format=%i|%T")
    assert tasks == {row[0] for row in rows}, rows
    state, members, seen = await follow(executor, plan, folder, job_id)

    assert state == "done", members
    assert any(f"{job_id}_2" in answer for answer in seen)
    for index, value in enumerate(values):
        output = await executor.read_file(
            plan.site, "alice", folder, f"members/{index}/output.ipynb"
        )
        assert f'label = "{value}"' in injected(output)
        assert text(folder, "members", str(index), "result.txt") == value
    await crate_written(executor, plan, folder)
    private_to(folder, "alice")


async def test_chain_step_after_a_failed_step_is_cancelled(executor, runs, registry, hub_api):
    first = new(runs, registry, hub_api, parameters=[{"label": "step 1", "fail": True}])
    folder1, job1 = await start(executor, first)
    second = new(runs, registry, hub_api, depends_on_jobs=[job1])
    folder2, job2 = await start(executor, second)
    waiting = (await executor.status(second.site, [job2]))[job2]
    assert (waiting.state.value, waiting.reason) == ("pending", "Dependency")

    state1, members1, _ = await follow(executor, first, folder1, job1)
    state2, members2, _ = await follow(executor, second, folder2, job2)

    assert state1 == "failed"
    assert "ValueError: asked to fail: step 1" in members1[0]["reason"]
    assert state2 == "cancelled", members2
    assert "Dependency" in members2[0]["reason"]
    assert text(folder2, "output.ipynb") is None


async def test_cancel_ends_the_job_and_its_processes(executor, runs, registry, hub_api):
    plan = new(runs, registry, hub_api, parameters=[{"label": "long", "sleep": 120.0}])
    folder, job_id = await start(executor, plan)

    async def notebook_running() -> bool:
        report = await executor.report(plan.site, "alice", folder)
        status = report["members"][0]["status"] or {}
        return status.get("cell") is not None and status["cell"] >= 3

    for _ in range(120):
        if await notebook_running():
            break
        await asyncio.sleep(0.5)
    else:
        raise AssertionError("the notebook never reached its sleeping cell")

    await executor.cancel(plan.site, "alice", [job_id])

    def nothing_left() -> bool:
        # neither the runner, its kernel nor the token agent (all carry the run's id)
        return not processes_of(plan.run_id)

    wait_until(nothing_left, 60, 0.5, "the run's processes ended")
    state, members, _ = await follow(executor, plan, folder, job_id)
    assert state == "failed" and members[0]["reason"]  # the manager records it as cancelled


async def test_other_users_cannot_read_the_run_folder(executor, runs, registry, hub_api):
    plan = new(runs, registry, hub_api)
    folder = await executor.prepare(plan)
    assert await executor.find_job(plan.site, "alice", plan.run_id) is None  # not submitted

    for argv in (["cat", f"{folder}/run.json"], ["ls", folder], ["cat", f"{folder}/.hub-token"]):
        result = run_as("bob", argv)
        assert result.returncode != 0 and "Permission denied" in result.stderr, argv
    as_bob = await asyncio.gather(
        executor.report(plan.site, "bob", folder),
        executor.read_file(plan.site, "bob", folder, "output.ipynb"),
        return_exceptions=True,
    )
    assert all(isinstance(answer, RuntimeError) for answer in as_bob), as_bob
    assert all("Permission denied" in str(answer) for answer in as_bob), as_bob
    # and a second prepare of the same attempt (a resubmission) refuses the existing folder
    with pytest.raises(RuntimeError, match="holds attempt 1, not one before 1"):
        await executor.prepare(plan)
    private_to(folder, "alice")
