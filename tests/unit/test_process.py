"""Supervision of the local federation's processes."""

import sys
import time
from pathlib import Path

import pytest

from continuum_federation.process import ManagedProcess, ProcessError, free_port, port_open


def test_start_ready_reports_death_with_log_tail(tmp_path):
    proc = ManagedProcess(
        "dies", [sys.executable, "-c", "print('boom'); raise SystemExit(3)"], tmp_path
    )
    with pytest.raises(ProcessError, match=r"exited with status 3(.|\n)*boom"):
        proc.start_ready(lambda: False, timeout=10)
    assert not proc.running


def test_start_ready_stops_a_process_that_never_gets_ready(tmp_path):
    proc = ManagedProcess("sleeps", [sys.executable, "-c", "import time; time.sleep(60)"], tmp_path)
    with pytest.raises(ProcessError, match="not ready after"):
        proc.start_ready(lambda: False, timeout=0.5)
    assert proc.proc is None


def test_ready_process_serves_until_stopped(tmp_path):
    port = free_port()
    server = [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)]
    proc = ManagedProcess("http", server, tmp_path).start_ready(lambda: port_open(port), 20)
    try:
        assert proc.running and port_open(port)
    finally:
        proc.stop()
    assert not port_open(port)


def test_stop_ends_children_that_left_the_process_group(tmp_path):
    # like JupyterHub starting its proxy and services with start_new_session=True
    code = (
        "import subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'],"
        " start_new_session=True)\n"
        f"open({str(tmp_path / 'child.pid')!r}, 'w').write(str(child.pid))\n"
        "time.sleep(120)\n"
    )
    proc = ManagedProcess("parent", [sys.executable, "-c", code], tmp_path)
    pid_file = tmp_path / "child.pid"
    proc.start_ready(lambda: pid_file.exists() and pid_file.read_text() != "", timeout=20)
    child = int(pid_file.read_text())
    proc.stop(timeout=5)
    deadline = time.monotonic() + 10
    while _alive(child):
        assert time.monotonic() < deadline, "the detached child outlived its parent"
        time.sleep(0.1)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie waits for init to reap it; it runs no more
