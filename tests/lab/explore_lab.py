"""Shared by the explore lab tests: a real JupyterLab server (module scope), isolated config.

Bind it in a test module with ``lab = explore_lab.lab`` (pytest finds fixtures by module name).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from lab_support import LabServer, isolated_jupyter_env, start_lab_server


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    """JupyterLab (every installed extension: ours, panel's, pyviz's) with a real kernel."""
    home = tmp_path_factory.mktemp("explore-lab")
    server = start_lab_server(
        Path(sys.executable), home, isolated_jupyter_env(home), app="jupyterlab"
    )
    try:
        yield server
    finally:
        server.process.stop()
