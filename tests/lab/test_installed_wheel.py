"""The installed wheel on a machine without Node: lab extensions OK, server extension on, the
session extension working in Chromium.

The wheel is built from the checkout (its build hook finds the lab extensions that
``images/setup.sh`` built), installed into a fresh virtual environment whose dependencies come
from the project's environment, and run with a ``PATH`` on which there is no ``node``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from lab_support import (
    JOB_ENV,
    LabServer,
    isolated_jupyter_env,
    start_lab_server,
)
from playwright.sync_api import Page, expect

from continuum_federation.process import free_port

pytestmark = [pytest.mark.lab, pytest.mark.slow]

EXTENSIONS = [
    "@continuum-hub/session",
    "@continuum-hub/clusters",
    "@continuum-hub/workflows",
    "@continuum-hub/catalogue",
    "@continuum-hub/usage",
    "@continuum-hub/workshop",
]
# the wheel holds Python code and a few hundred kB of bundled JavaScript
MAX_WHEEL_BYTES = 2 * 1024 * 1024


@dataclass
class Install:
    wheel: Path
    prefix: Path
    env: dict[str, str]

    @property
    def python(self) -> Path:
        return self.prefix / "bin" / "python"

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.python), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


@pytest.fixture(scope="module")
def install(repo_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Install:
    """The wheel, built from the checkout and installed into a fresh environment."""
    work = tmp_path_factory.mktemp("wheel")
    env = {k: v for k, v in os.environ.items() if k != "SKIP_JUPYTER_BUILDER"}
    pip = [sys.executable, "-m", "pip"]
    built = subprocess.run(
        [*pip, "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", work / "dist", repo_root],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = (work / "dist").glob("continuum_hub-*.whl")

    prefix = work / "venv"
    subprocess.run(["/usr/bin/python3", "-m", "venv", "--without-pip", str(prefix)], check=True)
    (site,) = prefix.glob("lib/python3*/site-packages")
    # the dependencies (jupyterlab, jupyter-server, …) come from the project's environment
    deps = [p for p in map(Path, sys.path) if p.name == "site-packages" and p.is_dir()]
    (site / "continuum-test-deps.pth").write_text("\n".join(map(str, deps)) + "\n")
    installed = subprocess.run(
        [*pip, "--python", prefix / "bin" / "python", "install", "-q", "--no-deps", wheel],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr

    home = work / "home"
    run_env = isolated_jupyter_env(
        home,
        # only the fresh environment's commands: no node, no npm
        PATH=str(prefix / "bin"),
        # JupyterLab's core application is data of the jupyterlab package in the project's env
        JUPYTERLAB_DIR=str(Path(sys.prefix) / "share" / "jupyter" / "lab"),
    )
    assert shutil.which("node", path=run_env["PATH"]) is None
    return Install(wheel=wheel, prefix=prefix, env=run_env)


def test_wheel_ships_the_prebuilt_extensions_and_the_server_config(install: Install) -> None:
    size = install.wheel.stat().st_size
    print(f"wheel {install.wheel.name}: {size / 1024:.0f} KiB")
    assert size < MAX_WHEEL_BYTES
    names = zipfile.ZipFile(install.wheel).namelist()
    data = "continuum_hub-0.1.0.data/data/"
    assert f"{data}etc/jupyter/jupyter_server_config.d/continuum_lab.json" in names
    # our JupyterLab defaults (the news prompt off), where JupyterLab reads package overrides
    assert f"{data}share/jupyter/lab/settings/overrides.d/continuum-hub.json" in names
    for name in EXTENSIONS:
        for part in ("package.json", "install.json"):
            assert f"{data}share/jupyter/labextensions/{name}/{part}" in names
        assert any(n.startswith(f"{data}share/jupyter/labextensions/{name}/static/") for n in names)
    # no sources, source maps or node_modules in the wheel
    assert not [n for n in names if n.endswith((".ts", ".map")) or "node_modules" in n]
    # the local federation (demo and tests) stays in the checkout
    assert not [
        n for n in names if n.startswith(("continuum_federation", "continuum_hub/federation"))
    ]


def test_installed_continuum_hub_demo_points_to_the_checkout(install: Install) -> None:
    found = install.run(
        "-c", "import importlib.util as u; print(u.find_spec('continuum_federation'))"
    )
    assert found.stdout.strip() == "None", found.stdout + found.stderr
    result = install.run(str(install.prefix / "bin" / "continuum-hub"), "demo")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "ships with the source checkout" in result.stderr
    assert "make demo" in result.stderr


def test_labextension_list_shows_them_ok(install: Install) -> None:
    result = install.run("-m", "jupyterlab.labextensions", "list")
    output = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout + result.stderr)
    assert result.returncode == 0, output
    for name in EXTENSIONS:
        assert re.search(rf"{re.escape(name)} v\S+ enabled OK \(python, continuum-hub\)", output), (
            output
        )


def test_server_extension_is_enabled_by_the_installed_config(install: Install) -> None:
    result = install.run("-m", "jupyter_server.extension.serverextension", "list")
    output = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout + result.stderr)
    assert result.returncode == 0, output
    assert re.search(r"continuum_lab enabled", output), output
    assert re.search(r"continuum_lab\s+OK", output), output


def test_browser_check_passes(install: Install) -> None:
    # --no-browser-test: the check's own browser step downloads a browser (impossible here);
    # the Chromium test below drives the same page with Debian's Chromium
    result = install.run(
        "-m", "jupyterlab.browser_check", "--no-browser-test", "--ServerApp.allow_root=True"
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "continuum_lab | extension was successfully loaded" in result.stderr


@pytest.fixture
def lab(install: Install, tmp_path: Path) -> Iterator[LabServer]:
    """JupyterLab from the installed wheel, in a job that ends in 10 minutes, hub unreachable."""
    end = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=10)
    env = dict(install.env)
    env.update(
        JOB_ENV,
        CONTINUUM_JOB_END=end.strftime("%Y-%m-%dT%H:%M:%SZ"),
        # nothing listens there: the server extension falls back to the environment
        JUPYTERHUB_API_URL=f"http://127.0.0.1:{free_port()}/hub/api",
        JUPYTERHUB_API_TOKEN="unused",
    )
    server = start_lab_server(install.python, tmp_path, env, app="jupyterlab")
    try:
        yield server
    finally:
        server.process.stop()


def test_session_extension_in_chromium(lab: LabServer, page: Page) -> None:
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{lab.url}lab?reset&token={lab.token}")
    expect(page.locator("#jp-main-dock-panel")).to_be_visible(timeout=120_000)

    status = page.locator(".jp-ContinuumSession-status")
    expect(status).to_contain_text(
        re.compile(r"alpha · interactive · job 4242 · \d+:\d\d left"), timeout=60_000
    )
    expect(status).to_have_attribute("data-job-id", "4242")
    # 10 minutes left is past the 15-minute threshold: the warning is shown at once
    expect(page.get_by_text(re.compile(r"walltime ends in .*less than 15 min"))).to_be_visible()

    status.click()
    panel = page.locator(".jp-ContinuumSession-panel")
    expect(panel).to_be_visible()
    expect(panel.locator('dd[data-field="job-id"]')).to_have_text("4242")
    expect(panel.locator('dd[data-field="node"]')).to_have_text("alpha-node1")
    expect(panel.locator('dd[data-field="environment"]')).to_have_text("default")
    expect(panel.locator('dd[data-field="site"]')).to_have_text("Alpha HPC centre (CPU) (alpha)")
    expect(panel.get_by_role("button", name="Hub control panel")).to_be_visible()
    expect(panel.get_by_role("button", name="Stop server…")).to_be_visible()
    expect(panel).to_contain_text("The hub could not be asked")
    assert not errors, errors
