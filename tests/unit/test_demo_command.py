"""The demo's command line: ``python -m continuum_federation demo`` and ``continuum-hub demo``.

The runtime's ``continuum-hub`` imports the local federation only when ``demo`` runs, and says
where the demo lives when the federation is not installed (a site's install of the wheel).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from continuum_federation import cli

REPO = Path(__file__).resolve().parents[2]

# a Python without images/federation on its path: what a site's install of the wheel sees
WITHOUT_FEDERATION = (
    "import sys; sys.path[:] = [p for p in sys.path if not p.rstrip('/').endswith("
    "'images/federation')]; from continuum_hub.cli import main; main(sys.argv[1:])"
)


def run_python(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


def test_federation_module_help_lists_the_demo_flags() -> None:
    result = run_python("-m", "continuum_federation", "demo", "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: python -m continuum_federation demo")
    for flag in ("--port", "--idp-port", "--partner-port", "--state-dir", "--repo"):
        assert flag in result.stdout


@pytest.mark.parametrize(
    ("args", "status", "expected"),
    [
        (["--help"], 0, r"^usage: continuum-hub demo (.|\n)*--state-dir"),
        (["--no-such-flag"], 2, r"continuum-hub: error: unrecognized arguments: --no-such-flag"),
    ],
    ids=["help", "unknown-flag"],
)
def test_continuum_hub_demo_hands_its_arguments_to_the_federation(
    args: list[str], status: int, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from continuum_hub.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["demo", *args])
    assert exit_info.value.code == status
    captured = capsys.readouterr()
    assert re.search(expected, captured.out + captured.err)


def test_runtime_cli_does_not_import_the_federation() -> None:
    result = run_python(
        "-c", "import sys, continuum_hub.cli; print('continuum_federation' in sys.modules)"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_continuum_hub_demo_without_the_federation_says_where_it_lives(tmp_path: Path) -> None:
    result = run_python("-c", WITHOUT_FEDERATION, "demo", "--port", "8123", cwd=tmp_path)
    assert result.returncode == 2
    assert "the local federation ships with the source checkout" in result.stderr
    assert "make demo" in result.stderr


def test_find_repo_walks_up_from_cwd_then_falls_back_to_the_package_checkout(
    tmp_path: Path,
) -> None:
    assert cli.find_repo(REPO / "images" / "slurm") == REPO
    # outside any checkout: the one this package ships with
    assert cli.find_repo(tmp_path) == REPO == cli.CHECKOUT
    other = tmp_path / "other-checkout"
    (other / "hub-config").mkdir(parents=True)
    (other / "hub-config" / "jupyterhub_config.py").write_text("")
    assert cli.find_repo(other / "hub-config") == other
