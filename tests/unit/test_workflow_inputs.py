"""Inputs with ``copy: true``: copied into the run folder by ``prepare``, described in the crate.

Files and folders are copied from the home folder at their relative paths (a sweep's members
get hard links), read-only, with the digests of the originals; a symbolic link anywhere, a
reserved or overlapping path, or more than the bounds is refused before anything is copied.
"""

import hashlib
import io
import json
import os
import stat
from pathlib import Path

import pytest

from continuum_hub.workflows import inputs
from continuum_hub.workflows.crate import write_crate
from continuum_hub.workflows.executor import SiteExecutor
from continuum_hub.workflows.finish import record
from continuum_hub.workflows.inputs import copied_paths, copy_inputs
from continuum_hub.workflows.paths import PathError
from continuum_hub.workflows.runfolder import RunFolderRefused, prepare, read_bundle
from fixtures.workflow_runs import make_plan, notebook_bytes

pytestmark = pytest.mark.workflows


@pytest.fixture
def home(tmp_path) -> Path:
    home = tmp_path / "home"
    (home / "data" / "calibration" / "deep").mkdir(parents=True)
    (home / "data" / "events.csv").write_text("e\n1\n2\n")
    (home / "data" / "calibration" / "gain.json").write_text('{"gain": 2}')
    (home / "data" / "calibration" / "deep" / "table.bin").write_bytes(bytes(range(256)))
    return home


def copy(folder: Path, home: Path, items: list, members: int = 1) -> list[str]:
    folder.mkdir(exist_ok=True)
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        return copy_inputs(fd, items, members, home)
    finally:
        os.close(fd)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_files_and_folders_are_copied_read_only(home, tmp_path):
    folder = tmp_path / "r-1"
    items = [
        {"path": "data/events.csv", "copy": True},
        {"path": "data/calibration/", "copy": True},
        {"path": "elsewhere/in-place.csv", "copy": False},
    ]
    assert copy(folder, home, items) == ["data/events.csv", "data/calibration/"]
    for rel in ("data/events.csv", "data/calibration/gain.json", "data/calibration/deep/table.bin"):
        assert digest(folder / rel) == digest(home / rel)
        assert stat.S_IMODE((folder / rel).stat().st_mode) == 0o400
    assert stat.S_IMODE((folder / "data" / "calibration").stat().st_mode) == 0o700
    assert not (folder / "elsewhere").exists()


def test_a_sweeps_members_get_hard_links(home, tmp_path):
    folder = tmp_path / "r-2"
    for index in range(2):
        (folder / "members" / str(index)).mkdir(parents=True)
    copy(folder, home, [{"path": "data/", "copy": True}], members=2)
    for index in range(2):
        linked = folder / "members" / str(index) / "data" / "calibration" / "gain.json"
        assert linked.stat().st_ino == (folder / "data" / "calibration" / "gain.json").stat().st_ino


@pytest.mark.parametrize(
    ("items", "message"),
    [
        ([{"path": "../etc/passwd", "copy": True}], "contains '..'"),
        ([{"path": "/etc/passwd", "copy": True}], "is absolute"),
        ([{"path": "run.json", "copy": True}], "run folder's own name"),
        ([{"path": "members/x", "copy": True}], "run folder's own name"),
        ([{"path": "data/", "copy": True}, {"path": "data/events.csv", "copy": True}], "overlap"),
    ],
)
def test_paths_are_checked(items, message):
    with pytest.raises(PathError, match=message):
        copied_paths(items)


@pytest.mark.parametrize("where", ["file", "on the way", "inside the folder"])
def test_symbolic_links_are_refused_before_anything_is_copied(home, tmp_path, where):
    secret = tmp_path / "secret.txt"
    secret.write_text("not yours")
    if where == "file":
        (home / "data" / "link.csv").symlink_to(secret)
        items = [{"path": "data/link.csv", "copy": True}]
    elif where == "on the way":
        (home / "linked").symlink_to(home / "data")
        items = [{"path": "linked/events.csv", "copy": True}]
    else:
        (home / "data" / "calibration" / "deep" / "x").symlink_to(secret)
        items = [{"path": "data/events.csv", "copy": True}]
        items.append({"path": "data/calibration/", "copy": True})
    folder = tmp_path / "r-3"
    with pytest.raises(PathError, match="symbolic link"):
        copy(folder, home, items)
    assert os.listdir(folder) == []


def test_the_bounds_hold(home, tmp_path, monkeypatch):
    monkeypatch.setattr(inputs, "MAX_COPY_BYTES", 100)
    with pytest.raises(PathError, match="more than"):
        copy(tmp_path / "r-4", home, [{"path": "data/", "copy": True}])
    assert os.listdir(tmp_path / "r-4") == []


def test_prepare_refuses_a_missing_input_before_making_the_folder(tmp_path):
    plan = make_plan(inputs=[{"path": "no/such/input-7f3a.csv", "copy": True}])
    bundle = read_bundle(io.BytesIO(SiteExecutor().bundle(plan).encode()))
    folder = tmp_path / "runs" / "r-0123456789ab"
    with pytest.raises(RunFolderRefused, match=r"does not exist|cannot be opened"):
        prepare(str(folder), bundle)
    assert not folder.parent.exists()


def test_the_crate_describes_the_copies_with_the_originals_digests(home, tmp_path):
    folder = tmp_path / "r-5"
    items = [{"path": "data/events.csv", "copy": True}, {"path": "data/calibration/", "copy": True}]
    copy(folder, home, items)
    (folder / "snapshots").mkdir()
    (folder / "snapshots" / "x.ipynb").write_bytes(notebook_bytes())
    (folder / "output.ipynb").write_bytes(notebook_bytes())
    run = {"notebook": "snapshots/x.ipynb", "inputs": items, "run_id": "r-5"}
    described = record(folder, run, [{"state": "done"}])
    assert described is not None
    assert [i.path for i in described.inputs] == ["data/events.csv", "data/calibration/"]
    assert all(i.location is None for i in described.inputs)  # from the copies in the folder
    graph = json.loads(write_crate(folder, described).read_text())["@graph"]
    sha = {e["@id"]: e.get("sha256") for e in graph}
    for rel in ("data/events.csv", "data/calibration/gain.json", "data/calibration/deep/table.bin"):
        assert sha[rel] == digest(home / rel), rel
