"""The job's half of the job-ending report: the reason, the post, and the supervising launcher.

The supervisor runs for real as a process with a real child and posts to a real HTTP server
in this test (a thread), as it would to the hub.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from continuum_spawners.job_end import (
    REPORT_PATH,
    ending_reason,
    report_job_ending,
)

END = "2026-11-21T07:30:00Z"
END_EPOCH = 1795246200.0


class FakeHub(BaseHTTPRequestHandler):
    """Records each POST (path, token, body) and answers with ``server.answer``."""

    def do_POST(self) -> None:  # http.server's naming
        length = int(self.headers.get("Content-Length", "0"))
        self.server.posts.append(  # type: ignore[attr-defined]
            (self.path, self.headers.get("Authorization"), json.loads(self.rfile.read(length)))
        )
        self.send_response(self.server.answer)  # type: ignore[attr-defined]
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def hub() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeHub)
    server.posts = []  # type: ignore[attr-defined]
    server.answer = 202  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def api_url(server: ThreadingHTTPServer) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/hub/api"


@pytest.mark.parametrize(
    "environ,now,reason",
    [
        ({"CONTINUUM_JOB_END": END}, END_EPOCH - 3600, "cancelled"),
        ({"CONTINUUM_JOB_END": END}, END_EPOCH - 30, "walltime"),
        ({"CONTINUUM_JOB_END": END}, END_EPOCH + 5, "walltime"),
        ({}, END_EPOCH, "cancelled"),
        ({"CONTINUUM_JOB_END": "soon"}, END_EPOCH, "cancelled"),
    ],
    ids=["early", "near-end", "past-end", "no-end", "garbage-end"],
)
def test_ending_reason(environ, now, reason):
    assert ending_reason(environ, now) == reason


def test_report_posts_the_reason_only_with_the_token(hub):
    assert report_job_ending(api_url(hub), "t0k", "walltime") == 202
    assert hub.posts == [("/hub/api" + REPORT_PATH, "token t0k", {"reason": "walltime"})]


def test_report_returns_a_refusal(hub):
    hub.answer = 409
    assert report_job_ending(api_url(hub) + "/", "t0k", "cancelled") == 409


@pytest.mark.parametrize(
    "url,reason",
    [("file:///etc/passwd", "cancelled"), ("http://127.0.0.1:1/hub/api", "oops")],
    ids=["not-http", "unknown-reason"],
)
def test_report_refuses_bad_arguments(url, reason):
    with pytest.raises(ValueError):
        report_job_ending(url, "t0k", reason)


CHILD = textwrap.dedent(
    """
    import pathlib, signal, sys, time
    marks = pathlib.Path(sys.argv[1])
    def stop(signum, frame):
        with marks.open("a") as f:
            f.write(f"signal {signum}\\n")
        sys.exit(7)
    signal.signal(signal.SIGTERM, stop)
    marks.write_text("ready\\n")
    while True:
        time.sleep(0.05)
    """
)


def wait_for(predicate, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)
    return value


def start_launcher(hub, tmp_path: Path) -> tuple[subprocess.Popen[bytes], Path]:
    marks = tmp_path / "marks"
    code = (
        "import sys; from continuum_spawners.job_end import supervise;"
        " sys.exit(supervise(sys.argv[1:]))"
    )
    env = {
        **os.environ,
        "JUPYTERHUB_API_URL": api_url(hub),
        "JUPYTERHUB_API_TOKEN": "server-token",
        "CONTINUUM_JOB_END": "2999-01-01T00:00:00Z",
    }
    launcher = subprocess.Popen(
        [sys.executable, "-c", code, sys.executable, "-c", CHILD, str(marks)],
        env=env,
        stderr=subprocess.PIPE,
    )
    wait_for(lambda: marks.exists() and "ready" in marks.read_text())
    return launcher, marks


def test_sigterm_is_passed_on_and_reported_once(hub, tmp_path):
    launcher, marks = start_launcher(hub, tmp_path)
    launcher.send_signal(signal.SIGTERM)  # only the launcher: it must pass it on
    _, stderr = launcher.communicate(timeout=20)
    assert launcher.returncode == 7  # the server's own exit status
    assert marks.read_text().splitlines() == ["ready", f"signal {int(signal.SIGTERM)}"]
    assert hub.posts == [("/hub/api" + REPORT_PATH, "token server-token", {"reason": "cancelled"})]
    assert b"job ending (cancelled); hub answered 202" in stderr


def test_an_unreachable_hub_does_not_hold_up_the_shutdown(hub, tmp_path):
    launcher, marks = start_launcher(hub, tmp_path)
    hub.shutdown()
    hub.server_close()  # connection refused at once
    started = time.monotonic()
    launcher.send_signal(signal.SIGTERM)
    _, stderr = launcher.communicate(timeout=20)
    assert time.monotonic() - started < 10
    assert launcher.returncode == 7
    assert b"job-ending report failed" in stderr
    assert f"signal {int(signal.SIGTERM)}" in marks.read_text()


def test_a_killed_server_gives_128_plus_signal(hub, tmp_path):
    launcher, _ = start_launcher(hub, tmp_path)
    child_pid = wait_for(lambda: _child_of(launcher.pid))
    os.kill(child_pid, signal.SIGKILL)
    launcher.communicate(timeout=20)
    assert launcher.returncode == 128 + signal.SIGKILL
    assert hub.posts == []  # no SIGTERM, no report: polling finds such ends


def _child_of(pid: int) -> int | None:
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                stat = (proc / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                return int(proc.name)
    return None
