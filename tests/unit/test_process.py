"""Supervision of the local federation's processes."""

import sys

import pytest

from continuum_hub.federation.process import ManagedProcess, ProcessError, free_port, port_open


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
