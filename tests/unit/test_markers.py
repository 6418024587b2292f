"""Markers follow from what a test uses (:mod:`fixtures.markers`): ``-m "not slow"`` leaves out
every test that would start the federation, and collecting it starts nothing.

The selection runs a real pytest, in a subprocess, on a small test folder whose ``hub`` and
``page`` fixtures write a file when they start, so a fixture that ran is seen.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from fixtures.markers import BROWSER_FIXTURES, FEDERATION_FIXTURES, implied_markers

TESTS = Path(__file__).resolve().parents[1]

CONFTEST = '''
"""A federation fixture and a browser fixture that leave a trace when started."""
from pathlib import Path

import pytest

from fixtures.markers import mark_by_fixtures

STARTED = Path(__file__).parent / "started"


@pytest.fixture(scope="session")
def hub():
    with STARTED.open("a") as out:
        out.write("hub\\n")


@pytest.fixture
def page():
    with STARTED.open("a") as out:
        out.write("page\\n")


@pytest.fixture
def uses_hub(hub):
    return hub


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    mark_by_fixtures(items)
'''

TESTS_PY = """
import pytest


def test_plain():
    assert True


def test_through_another_fixture(uses_hub):
    assert True


def test_in_a_browser(page):
    assert True


@pytest.mark.slow
def test_marked_by_hand():
    assert True
"""

INI = """
[pytest]
addopts = --strict-markers -p no:cacheprovider
markers =
    slow: starts the federation
    browser: drives Chromium
    spawner: the spawner
"""


@pytest.fixture
def suite(tmp_path: Path) -> Path:
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_spawn_attacks.py").write_text(TESTS_PY)
    (tmp_path / "pytest.ini").write_text(INI)
    return tmp_path


def pytest_in(folder: Path, *args: str) -> list[str]:
    """Run pytest in ``folder`` with ``args``; the node ids it collected or ran (``-q`` lines)."""
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rA", *args],
        cwd=folder,
        env={"PYTHONPATH": str(TESTS), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode in (0, 5), result.stdout + result.stderr  # 5: nothing selected
    return sorted(
        line.split("::")[-1].split()[0] for line in result.stdout.splitlines() if "::" in line
    )


def test_not_slow_leaves_out_federation_tests_and_starts_nothing(suite: Path) -> None:
    collected = pytest_in(suite, "-m", "not slow", "--collect-only")
    assert collected == ["test_in_a_browser", "test_plain"]
    ran = pytest_in(suite, "-m", "not slow and not browser")
    assert ran == ["test_plain"]
    assert not (suite / "started").exists()  # neither collection nor the fast run started a hub


def test_browser_and_spawner_markers_are_added(suite: Path) -> None:
    assert pytest_in(suite, "-m", "browser") == ["test_in_a_browser"]
    assert (suite / "started").read_text() == "page\n"
    # the module's name makes every test in it a spawner test
    assert len(pytest_in(suite, "-m", "spawner", "--collect-only")) == 4


@pytest.mark.parametrize(
    "fixtures,module,wanted",
    [
        ({"tmp_path"}, "test_sites", set()),
        ({"tmp_path", "slurm_sites"}, "test_sites", {"slow"}),
        ({"page", "chromium", "hub"}, "test_x", {"slow", "browser"}),
        ({"tmp_path"}, "test_hub_spawn", {"spawner"}),
    ],
)
def test_implied_markers(fixtures: set[str], module: str, wanted: set[str]) -> None:
    assert implied_markers(fixtures, module) == wanted


def test_fixture_lists_name_real_fixtures() -> None:
    # a renamed fixture would silently stop marking its tests
    text = "\n".join(path.read_text() for path in (TESTS / "fixtures").glob("*.py"))
    for name in FEDERATION_FIXTURES | BROWSER_FIXTURES:
        assert f"def {name}(" in text, name
