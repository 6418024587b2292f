"""A service process's first steps (``continuum_hub.process_start``) and serving on the socket
it opened then (``continuum_hub.service_api.serve_on``): the hub's first check of a starting
service connects at once and is answered once the application serves; jsonschema does without
``rfc3987_syntax`` in a service process, and validates as before."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys

import pytest
from tornado import web
from tornado.httpclient import AsyncHTTPClient

from continuum_hub.process_start import listen_early
from continuum_hub.service_api import ServiceSettings, serve_on


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize(
    "url",
    ["", "https://127.0.0.1:8000/", "http://127.0.0.1/", "unix:///run/x.sock", "http:///x"],
)
def test_no_early_socket_without_an_http_address(url: str):
    assert listen_early({"JUPYTERHUB_SERVICE_URL": url} if url else {}) is None


def test_no_early_socket_where_the_port_is_taken():
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        assert listen_early({"JUPYTERHUB_SERVICE_URL": f"http://127.0.0.1:{port}/"}) is None


class Hello(web.RequestHandler):
    def get(self) -> None:
        self.write("ready")


async def test_a_check_made_before_the_application_serves_is_answered_when_it_does():
    port = free_port()
    early = listen_early({"JUPYTERHUB_SERVICE_URL": f"http://127.0.0.1:{port}/services/x/"})
    assert early is not None
    # the hub's check while the service still imports: it connects, and waits
    with socket.create_connection(("127.0.0.1", port), timeout=5):
        pass
    check = asyncio.ensure_future(AsyncHTTPClient().fetch(f"http://127.0.0.1:{port}/"))
    await asyncio.sleep(0.3)
    assert not check.done()
    settings = ServiceSettings(ip="127.0.0.1", port=port)
    serve_on(web.Application([("/", Hello)]), settings, early, 1024)
    answer = await asyncio.wait_for(check, 10)
    assert answer.body == b"ready"


async def test_an_early_socket_on_another_address_is_closed_and_the_service_listens_itself():
    other = listen_early({"JUPYTERHUB_SERVICE_URL": f"http://127.0.0.1:{free_port()}/"})
    assert other is not None
    port = free_port()
    serve_on(web.Application([("/", Hello)]), ServiceSettings(port=port), other, 1024)
    assert other.fileno() == -1
    answer = await AsyncHTTPClient().fetch(f"http://127.0.0.1:{port}/")
    assert answer.body == b"ready"


def test_a_service_process_does_without_rfc3987_syntax_and_validates_as_before():
    code = (
        "import sys\n"
        "from continuum_hub.process_start import skip_slow_optional_imports\n"
        "skip_slow_optional_imports()\n"
        "import jsonschema\n"
        "from continuum_spawners.sites import load_registry\n"
        "assert 'rfc3987_syntax' not in {m for m, v in sys.modules.items() if v is not None}\n"
        "v = jsonschema.Draft202012Validator({'type': 'object', 'required': ['a']})\n"
        "print(sorted(e.message for e in v.iter_errors({})))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[\"'a' is a required property\"]"


def test_the_hub_command_is_jupyterhubs():
    """``python -m continuum_hub.process_start`` (the deployed unit's command) is JupyterHub's
    command line: its arguments reach JupyterHub."""
    import jupyterhub

    done = subprocess.run(
        [sys.executable, "-m", "continuum_hub.process_start", "--version"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == jupyterhub.__version__


@pytest.mark.parametrize(("listen", "expected"), [(True, "socket 1"), (False, "none 1")])
def test_a_service_runs_its_apps_main_with_its_early_socket(tmp_path, listen: bool, expected: str):
    """``run_service``: the app module's ``main`` gets the socket opened before its import
    (``listen``), else is called without one; the slow optional module is absent by then."""
    (tmp_path / "standin_app.py").write_text(
        "import sys\n"
        "SKIPPED = sys.modules.get('rfc3987_syntax', 'missing') is None\n"
        "def main(early=None):\n"
        "    print('socket' if early is not None else 'none', int(SKIPPED))\n"
    )
    code = "from continuum_hub.process_start import run_service\n"
    code += f"run_service('standin_app', listen={listen})"
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}:{os.environ.get('PYTHONPATH', '')}"}
    env["JUPYTERHUB_SERVICE_URL"] = f"http://127.0.0.1:{free_port()}/services/x/"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == expected
