"""Gateway jobs on sites without a shell (``continuum_hub.gateway.remote``): the job stages
its own folder from its environment; the staging step is run here with the real ``/bin/sh``."""

from __future__ import annotations

import asyncio
import os
import signal
import stat
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from dask_gateway_server.backends.db_base import Cluster
from test_gateway_service import cluster as service_cluster
from traitlets.config import Config

from continuum_federation.process import free_port
from continuum_hub.gateway.availability import SiteAvailability
from continuum_hub.gateway.backend import SiteSlurmBackend
from continuum_hub.gateway.remote import (
    SCHEDULER_TAIL,
    STAGING_VARIABLE,
    launcher_answer,
    stage_environment,
    stage_step,
    stage_variable,
)
from continuum_spawners import site_health
from continuum_spawners.schedulers import clear_monitors
from continuum_spawners.schedulers.transport import SAFE_PATH, CommandResult
from continuum_spawners.sites import SiteRegistry

pytestmark = pytest.mark.gateway

REGISTRY = """
sites:
  - name: delta
    scheduler: slurm
    connection:
      transport: slurmrestd
      url: http://127.0.0.1:6820
      token_file: /etc/continuum/delta.jwt
    partitions:
      - {name: short, default: true, max_cores: 4, max_memory_gb: 8, max_walltime: "01:00:00"}
"""
NAME = "0123456789abcdef" * 2
#: a private key's look: several lines, quotes, a dollar sign and a backslash
SECRET = "-----BEGIN KEY-----\nab'c\"d $HOME `x` \\n\n-----END KEY-----\n"


@pytest.fixture
def gw(tmp_path: Path) -> Iterator[SiteSlurmBackend]:
    path = tmp_path / "sites.yaml"
    path.write_text(REGISTRY)
    config = Config(
        {
            "SiteSlurmBackend": {
                "registry_path": str(path),
                "api_url": "http://127.0.0.1:9001/services/dask-gateway/api",
                "python_prefix": "/opt/env",
                "token_agent": [],
            }
        }
    )
    yield SiteSlurmBackend(config=config)
    clear_monitors()


def cluster() -> Cluster:
    made = service_cluster("delta", partition="short")
    made.tls_cert, made.tls_key = b"the-cert", SECRET.encode()
    return made


async def test_a_self_staging_jobs_secrets_are_in_its_environment_only(
    gw: SiteSlurmBackend,
) -> None:
    files = {"dask.pem": SECRET, "dask.crt": "the-cert", "hub-token": "the-hub-token"}
    argv, env, script = gw.get_submit_cmd_env_stdin(cluster(), files=files)
    staging = f"/root/.dask-gateway/{NAME}"
    assert env[STAGING_VARIABLE] == staging
    assert env[stage_variable("dask.pem")] == SECRET
    assert env[stage_variable("hub-token")] == "the-hub-token"
    for secret in (SECRET, "the-hub-token", "the-cluster-token"):
        assert secret not in script and secret not in " ".join(argv)
    export = next(a for a in argv if a.startswith("--export="))
    assert set(export.removeprefix("--export=").split(",")) == set(env)
    # the folder does not exist when the job starts: output and working folder in the home
    assert "--chdir=/root" in argv
    assert f"--output=/root/.continuum-dg-{NAME}-%j.log" in argv
    # the scheduler's shell stays (no exec) to remove the folder at the end
    assert "exec " not in script and script.rstrip().endswith('wait "$!"')

    # a worker's job stages the TLS pair only, and leaves the folder to the scheduler
    class Worker:
        name = "w1"

    _, worker_env, worker_script = gw.get_submit_cmd_env_stdin(cluster(), Worker())
    assert {k for k in worker_env if k.startswith("CONTINUUM_STAGE_")} == {
        stage_variable("dask.pem"),
        stage_variable("dask.crt"),
    }
    assert "trap" not in worker_script and "\nexec " in worker_script


def run_step(tmp_path: Path, files: dict[str, str], cleanup: bool, tail: str) -> subprocess.Popen:
    script = "set -eu\n" + stage_step(files, cleanup) + tail
    env = {"PATH": SAFE_PATH, **stage_environment(str(tmp_path / "stage" / NAME), files)}
    return subprocess.Popen(["/bin/sh", "-c", script], env=env, stdout=subprocess.PIPE, text=True)


def test_the_staging_step_makes_private_files_and_unsets_their_variables(tmp_path: Path) -> None:
    files = {"dask.pem": SECRET, "dask.crt": "the-cert"}
    folder = tmp_path / "stage" / NAME
    proc = run_step(tmp_path, files, cleanup=False, tail="pwd; env | grep -c STAGE_ || true\n")
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert out.split() == [str(folder), "0"]  # in the folder, no variable left
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for name, text in files.items():
        assert (folder / name).read_text() == text  # byte for byte
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o600
    # a second job (a worker) keeps what is there
    (folder / "dask.crt").write_text("kept")
    assert run_step(tmp_path, files, cleanup=False, tail="").wait(timeout=30) == 0
    assert (folder / "dask.crt").read_text() == "kept"
    assert sorted(p.name for p in folder.iterdir()) == ["dask.crt", "dask.pem"]


def test_the_schedulers_job_removes_the_folder_when_it_ends(tmp_path: Path) -> None:
    folder = tmp_path / "stage" / NAME
    files = {"dask.pem": SECRET}
    assert run_step(tmp_path, files, True, SCHEDULER_TAIL.format(command="true")).wait(30) == 0
    assert not folder.exists()
    # cancelled (scancel sends SIGTERM): removed too
    proc = run_step(tmp_path, files, True, SCHEDULER_TAIL.format(command="sleep 20"))
    deadline = time.monotonic() + 30
    while not (folder / "dask.pem").exists():
        assert time.monotonic() < deadline and proc.poll() is None, "never staged"
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=30) == 143
    assert not folder.exists()


def test_the_launchers_answer() -> None:
    ok = CommandResult(0, '{"ok": true, "returncode": 0, "stdout": "42\\n", "stderr": ""}', "")
    assert launcher_answer(ok) == (0, "42\n", "")
    with pytest.raises(RuntimeError, match="staging"):
        launcher_answer(CommandResult(0, '{"ok": false, "error": "staging: exists"}', ""))
    with pytest.raises(RuntimeError, match="exit 254"):
        launcher_answer(CommandResult(254, "", "sudo: a password is required"))


async def test_the_gateways_probe_marks_a_site_that_does_not_answer(tmp_path: Path) -> None:
    token = tmp_path / "delta.jwt"
    token.write_text("SLURM_JWT=abc")
    token.chmod(0o600)
    port = free_port()  # nothing listens there: slurmrestd is down
    registry = SiteRegistry.from_dict(
        yaml.safe_load(
            REGISTRY.replace("http://127.0.0.1:6820", f"http://127.0.0.1:{port}").replace(
                "/etc/continuum/delta.jwt", str(token)
            )
        )
    )
    probe = SiteAvailability(interval=0.1, timeout=5)
    site_health.BOARD.forget()
    try:
        probe.start(lambda: registry.sites.values())
        deadline = time.monotonic() + 10
        while not (down := probe.down(registry.sites.values())):
            assert time.monotonic() < deadline, "never marked down"
            await asyncio.sleep(0.05)
        assert down["delta"].startswith("Site delta is unavailable")
        assert "cannot reach slurmrestd" in down["delta"]
    finally:
        await probe.stop()
        site_health.BOARD.forget()
