"""The gateway's launcher (:mod:`continuum_hub.gateway.launcher`), run as the backend runs it.

Run with the gateway's Python, ``-I -S``: it must work with the standard library alone; its
answers are those of dask-gateway's launcher, which the backend parses.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from traitlets.config import Config

from continuum_hub.gateway import launcher
from continuum_hub.gateway.backend import SiteSlurmBackend

pytestmark = pytest.mark.gateway


def run(request: dict[str, Any] | str) -> dict[str, Any]:
    text = request if isinstance(request, str) else json.dumps(request)
    done = subprocess.run(
        [sys.executable, "-I", "-S", launcher.__file__],
        input=text,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def test_start_writes_private_files_then_runs_the_command(tmp_path: Path) -> None:
    staging = tmp_path / "cluster"
    answer = run(
        {
            "action": "start",
            "cmd": ["/bin/sh", "-c", 'cat; echo "$WHO" >&2; ls "$0"', str(staging)],
            "env": {"WHO": "alice", "PATH": "/usr/bin:/bin"},
            "stdin": "the job script\n",
            "staging_dir": str(staging),
            "files": {"dask.pem": "KEY", "hub-token": "TOKEN"},
        }
    )
    assert answer == {
        "ok": True,
        "returncode": 0,
        "stdout": "the job script\ndask.pem\nhub-token\n",
        "stderr": "alice\n",
    }
    assert staging.stat().st_mode & 0o777 == 0o700
    assert (staging / "hub-token").read_text() == "TOKEN"
    assert {(staging / n).stat().st_mode & 0o777 for n in ("dask.pem", "hub-token")} == {0o600}
    # a second start of the same cluster: the folder exists, nothing is submitted
    again = run({"action": "start", "cmd": ["/bin/false"], "env": {}, "staging_dir": str(staging)})
    assert again["ok"] is False and "staging directory" in again["error"]


def test_stop_removes_the_folder_and_reports_the_exit_status(tmp_path: Path) -> None:
    staging = tmp_path / "cluster"
    staging.mkdir()
    (staging / "scheduler.json").write_text("{}")
    answer = run(
        {
            "action": "stop",
            "cmd": ["/bin/sh", "-c", "exit 3"],
            "env": {},
            "staging_dir": str(staging),
        }
    )
    assert answer["ok"] is True and answer["returncode"] == 3
    assert not staging.exists()
    assert run("not json")["ok"] is False
    assert run({"action": "dance"}) == {
        "ok": False,
        "error": "Valid actions are 'start' and 'stop'",
    }


async def test_the_backend_runs_it_with_the_standard_library_only(tmp_path: Path) -> None:
    gw = SiteSlurmBackend(config=Config({"SiteSlurmBackend": {"api_url": "http://x/api"}}))
    assert gw.launcher_command == [sys.executable, "-I", "-S", launcher.__file__]
    code, stdout, _ = await gw.do_as_user("root", "start", cmd=["/bin/echo", "submitted"], env={})
    assert (code, stdout) == (0, "submitted\n")
    with pytest.raises(RuntimeError, match="staging directory"):
        await gw.do_as_user(
            "root", "start", cmd=["/bin/true"], env={}, staging_dir=str(tmp_path), files={}
        )
