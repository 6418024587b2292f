"""The in-job launcher: the server URL, the job's start and end time, and the port reported
once the server listens (the launcher run for real, with a stand-in server and hub)."""

import json
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from tornado.netutil import bind_sockets

from continuum_spawners.launcher import (
    LAUNCHER_AGE_HEADER,
    job_times,
    reserve_port,
    service_url,
)


def test_job_times_from_slurm_start_and_walltime():
    env = {"SLURM_JOB_START_TIME": "1795240800", "CONTINUUM_WALLTIME_MINUTES": "90"}
    assert job_times(env, now=0) == {
        "CONTINUUM_JOB_START": "2026-11-21T06:00:00Z",
        "CONTINUUM_JOB_END": "2026-11-21T07:30:00Z",
    }


def test_job_times_fall_back_to_now_and_tolerate_garbage():
    assert job_times({"CONTINUUM_WALLTIME_MINUTES": "1"}, now=60) == {
        "CONTINUUM_JOB_START": "1970-01-01T00:01:00Z",
        "CONTINUUM_JOB_END": "1970-01-01T00:02:00Z",
    }
    assert job_times({"SLURM_JOB_START_TIME": "soon", "CONTINUUM_WALLTIME_MINUTES": "x"}, 0) == {
        "CONTINUUM_JOB_START": "1970-01-01T00:00:00Z"
    }


def test_service_url_keeps_path():
    url = "http://127.0.0.1:0/user/alice/"
    assert service_url(url, "10.1.2.3", 8888) == "http://10.1.2.3:8888/user/alice/"
    assert service_url(url, "::1", 8888) == "http://[::1]:8888/user/alice/"


# -- the port is reported once the server listens ------------------------------------------------

# a stand-in server: binds the port of JUPYTERHUB_SERVICE_URL after a moment, notes when, serves
SERVER = textwrap.dedent(
    """
    import os, pathlib, socket, sys, time
    from urllib.parse import urlsplit
    port = urlsplit(os.environ["JUPYTERHUB_SERVICE_URL"]).port
    other = socket.socket()  # another job's launcher, binding as it picks a port
    try:
        other.bind(("127.0.0.1", port))
        held = "free"
    except OSError:
        held = "held"
    other.close()
    pathlib.Path(sys.argv[1] + ".meanwhile").write_text(held)
    time.sleep(0.4)  # the imports of a real server
    if sys.argv[2] == "fail":
        sys.exit(3)
    sock = socket.create_server(("127.0.0.1", urlsplit(os.environ["JUPYTERHUB_SERVICE_URL"]).port))
    pathlib.Path(sys.argv[1]).write_text(repr(time.time()))
    time.sleep(1.5)
    """
)


class PortHub(BaseHTTPRequestHandler):
    """Records each port report (time, body, launcher age) and answers 201."""

    def do_POST(self) -> None:  # http.server's naming
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
        age = self.headers.get(LAUNCHER_AGE_HEADER)
        self.server.reports.append((time.time(), self.path, body, age))  # type: ignore[attr-defined]
        self.send_response(201)
        self.end_headers()

    def do_GET(self) -> None:  # the material pull asks for nothing here
        self.send_response(404)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def port_hub() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), PortHub)
    server.reports = []  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def run_launcher(hub: ThreadingHTTPServer, tmp_path: Path, mode: str) -> int:
    env = {
        **os.environ,
        "JUPYTERHUB_API_URL": f"http://127.0.0.1:{hub.server_address[1]}/hub/api",
        "JUPYTERHUB_API_TOKEN": "server-token",
        "JUPYTERHUB_SERVICE_URL": "http://127.0.0.1:0/user/alice/",
        "CONTINUUM_BIND_IP": "127.0.0.1",
        "XDG_RUNTIME_DIR": str(tmp_path),
    }
    argv = [sys.executable, "-m", "continuum_spawners.launcher", sys.executable, "-c", SERVER]
    launcher = subprocess.run(
        [*argv, str(tmp_path / "bound"), mode], env=env, timeout=60, capture_output=True
    )
    return launcher.returncode


def test_port_is_reported_once_the_server_listens(port_hub, tmp_path):
    assert run_launcher(port_hub, tmp_path, "serve") == 0
    (at, path, body, age), *more = port_hub.reports  # type: ignore[attr-defined]
    assert not more and path == "/hub/api/batchspawner"
    bound = float((tmp_path / "bound").read_text())
    assert at >= bound  # not before: the hub's first check of the server finds it
    assert set(body) == {"port"} and 1 <= body["port"] <= 65535
    assert 0 < float(age) < 30  # seconds since the launcher started
    # while the server imported, its port was no one else's (a port merely picked was free
    # until the server bound it, and two jobs on one node got the same one in a storm)
    assert (tmp_path / "bound.meanwhile").read_text() == "held"


def test_a_reserved_port_is_given_to_no_one_else_but_the_server_binds_it():
    held = [reserve_port("127.0.0.1") for _ in range(200)]
    try:
        ports = {sock.getsockname()[1] for sock in held}
        assert len(ports) == len(held)
        for _ in range(2000):  # other launchers picking ports on the node meanwhile
            with socket.socket() as other:
                other.bind(("127.0.0.1", 0))
                assert other.getsockname()[1] not in ports
        port = held[0].getsockname()[1]
        [server] = bind_sockets(port, "127.0.0.1")  # as Jupyter Server binds (Tornado)
        with server, socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
    finally:
        for sock in held:
            sock.close()


def test_a_server_that_never_listens_is_not_reported_and_fails_the_job(port_hub, tmp_path):
    assert run_launcher(port_hub, tmp_path, "fail") == 3
    assert port_hub.reports == []  # type: ignore[attr-defined]
