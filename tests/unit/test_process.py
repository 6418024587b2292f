"""Supervision of the local federation's processes."""

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

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


# an owner that starts LocalHub's proxy as LocalHub does, says its pid and port, and waits
PROXY_OWNER = """
import sys, threading, time
from pathlib import Path
from continuum_federation.hub import LocalHub

state, repo = Path(sys.argv[1]), Path(sys.argv[2])
hub = LocalHub(
    state, repo, issuer="http://127.0.0.1:9", client_id="c", client_secret="s", site_confs={}
)
# from a thread that ends at once: the death signal must follow the owner, not this thread
starter = threading.Thread(target=hub.start_proxy)
starter.start()
starter.join()
said = f"{hub.proxy.proc.pid} {hub.port} {hub.proxy_api_port} {starter.native_id}"
(state / "proxy.txt").write_text(said)
time.sleep(300)
"""


def test_localhub_proxy_dies_with_its_owner_killed_by_sigkill(tmp_path, repo_root):
    owner = subprocess.Popen(
        [sys.executable, "-c", PROXY_OWNER, str(tmp_path), str(repo_root)],
        start_new_session=True,
    )
    try:
        said = tmp_path / "proxy.txt"
        _wait(lambda: said.exists() or owner.poll() is not None, 60, "the owner's proxy start")
        assert owner.poll() is None, "the owner died while starting its proxy"
        pid, port, api_port, thread = (int(word) for word in said.read_text().split())
        # the thread that started the proxy has ended (the kernel has released it) ...
        _wait(lambda: not Path(f"/proc/{owner.pid}/task/{thread}").exists(), 10, "thread end")
        # ... and the proxy, in its own session, lives on and serves
        token = (tmp_path / "proxy_token").read_text().strip()
        api = f"http://127.0.0.1:{api_port}/api/routes"
        answer = requests.get(api, headers={"Authorization": f"token {token}"}, timeout=10)
        assert answer.status_code == 200 and _alive(pid)
        assert os.getsid(pid) == pid != os.getsid(owner.pid)
        owner.send_signal(signal.SIGKILL)
        owner.wait(10)
        # (its leader shows as a zombie while its other threads still close its sockets)
        _wait(lambda: not (_alive(pid) or port_open(port)), 10, "the proxy's end")
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait(10)
        with contextlib.suppress(OSError, ValueError):  # a proxy a failure left, no reused pid
            left = int((tmp_path / "proxy.txt").read_text().split()[0])
            if b"configurable-http-proxy" in Path(f"/proc/{left}/cmdline").read_bytes():
                os.kill(left, signal.SIGKILL)


def _wait(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
