"""Notebook snapshots: paths checked on the disk (no symbolic link anywhere on the way, nothing
outside the home folder, regular notebook files only) and content-addressed storage."""

import json
import os
from pathlib import Path

import pytest

from continuum_hub.workflows import snapshot
from continuum_hub.workflows.paths import PathError


@pytest.fixture
def home(tmp_path):
    home = tmp_path / "alice"
    (home / "analysis").mkdir(parents=True)
    notebook = {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": []}
    (home / "analysis" / "scan.ipynb").write_text(json.dumps(notebook))
    (tmp_path / "bob").mkdir()
    (tmp_path / "bob" / "secret.ipynb").write_text(json.dumps(notebook))
    return home


@pytest.mark.parametrize(
    "setup,path,error",
    [
        pytest.param(
            lambda h: (h / "link.ipynb").symlink_to(h.parent / "bob" / "secret.ipynb"),
            "link.ipynb",
            "notebook 'link.ipynb' passes through the symbolic link 'link.ipynb'",
            id="symlinked-notebook",
        ),
        pytest.param(
            lambda h: (h / "shared").symlink_to(h.parent / "bob"),
            "shared/secret.ipynb",
            "notebook 'shared/secret.ipynb' passes through the symbolic link 'shared'",
            id="symlinked-folder-on-the-way",
        ),
        pytest.param(
            lambda h: (h / "analysis" / "inner").symlink_to(h / "analysis"),
            "analysis/inner/scan.ipynb",
            "notebook 'analysis/inner/scan.ipynb' passes through the symbolic link "
            "'analysis/inner'",
            id="symlink-inside-home",
        ),
        pytest.param(
            lambda h: None,
            "../bob/secret.ipynb",
            "notebook '../bob/secret.ipynb' contains '..': a path may not leave your home folder",
            id="dot-dot",
        ),
        pytest.param(
            lambda h: None,
            str(Path("/etc/passwd")),
            "notebook '/etc/passwd' is absolute: give a path relative to your home folder",
            id="absolute",
        ),
        pytest.param(
            lambda h: None,
            "analysis/missing.ipynb",
            "notebook 'analysis/missing.ipynb' does not exist",
            id="missing",
        ),
        pytest.param(
            lambda h: os.mkfifo(h / "pipe.ipynb"),
            "pipe.ipynb",
            "notebook 'pipe.ipynb' is not a regular file",
            id="fifo",
        ),
        pytest.param(
            lambda h: (h / "text.ipynb").write_text("print('hi')"),
            "text.ipynb",
            "notebook 'text.ipynb' is not a Jupyter notebook (not JSON)",
            id="not-a-notebook",
        ),
        pytest.param(
            lambda h: (h / "analysis" / "scan.ipynb").with_name("file").write_text(""),
            "analysis/file/scan.ipynb",
            "notebook 'analysis/file/scan.ipynb': 'analysis/file' is not a folder",
            id="file-as-folder",
        ),
    ],
)
def test_snapshot_refuses(home, tmp_path, setup, path, error):
    setup(home)
    with pytest.raises(PathError) as caught:
        snapshot.take(home, path, tmp_path / "run")
    assert str(caught.value) == error
    assert not (tmp_path / "run").exists()


def test_snapshot_is_content_addressed(home, tmp_path):
    first = snapshot.take(home, "analysis/scan.ipynb", tmp_path / "run")
    data = (home / "analysis" / "scan.ipynb").read_bytes()
    assert first.path == tmp_path / "run" / "snapshots" / f"{first.sha256}.ipynb"
    assert first.path.read_bytes() == data and first.size == len(data)
    assert first.source == "analysis/scan.ipynb"
    assert (first.path.parent.stat().st_mode & 0o777) == 0o700
    again = snapshot.take(home, "./analysis//scan.ipynb", tmp_path / "run")
    assert again.path == first.path
    assert snapshot.verify(first.path) == first.sha256
    first.path.write_text("{}")
    with pytest.raises(PathError, match="has changed"):
        snapshot.verify(first.path)


def test_missing_home_folder(tmp_path):
    with pytest.raises(PathError) as caught:
        snapshot.take(tmp_path / "nobody", "a.ipynb", tmp_path / "run")
    assert str(caught.value) == (
        f"cannot open the folder '{tmp_path}/nobody': No such file or directory"
    )


def test_snapshot_size_limit(home, tmp_path):
    with pytest.raises(PathError, match="larger than the limit of 10 bytes"):
        snapshot.take(home, "analysis/scan.ipynb", tmp_path / "run", limit=10)
