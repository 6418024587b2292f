"""Content-addressed notebook snapshots: what a run executes is fixed when it is submitted.

A run never executes the notebook in the user's home folder, which the user may go on editing:
at submit the notebook's bytes are read (below the home folder, through no symbolic link: see
:func:`~.paths.open_under`), checked to be a notebook, and stored as
``snapshots/<sha256>.ipynb`` in a store folder.  The name is the SHA-256 of the bytes, so equal
notebooks share one file, a re-run can prove it executes the same notebook, and the provenance
crate records the same digest.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .paths import PathError, read_under

#: largest notebook accepted for a snapshot (bytes)
MAX_NOTEBOOK_BYTES = 50 * 2**20
SNAPSHOTS = "snapshots"


@dataclass(frozen=True)
class Snapshot:
    """A stored notebook.

    Attributes
    ----------
    sha256
        Hex digest of the bytes; the file is ``<store>/snapshots/<sha256>.ipynb``.
    path
        The stored file.
    source
        The notebook's path relative to the home folder it was taken from.
    """

    sha256: str
    path: Path
    size: int
    source: str


def sha256_file(path: str | os.PathLike[str]) -> tuple[int, str]:
    """Size and SHA-256 hex digest of a file, read in blocks."""
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as file:
        while block := file.read(2**20):
            digest.update(block)
            size += len(block)
    return size, digest.hexdigest()


def check_notebook(data: bytes, name: str) -> None:
    """Refuse bytes that are not a Jupyter notebook (nbformat 4 JSON with a cell list)."""
    try:
        document = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise PathError(f"notebook {name!r} is not a Jupyter notebook (not JSON)") from None
    if (
        not isinstance(document, dict)
        or document.get("nbformat") != 4
        or not isinstance(document.get("cells"), list)
    ):
        raise PathError(f"notebook {name!r} is not a Jupyter notebook in format 4")


def store(folder: str | os.PathLike[str], data: bytes, source: str) -> Snapshot:
    """Store ``data`` as ``<folder>/snapshots/<sha256>.ipynb`` (0600, folders 0700).

    Writing is atomic (a temporary file renamed into place), and a snapshot already stored is
    kept as it is.
    """
    digest = hashlib.sha256(data).hexdigest()
    snapshots = Path(folder) / SNAPSHOTS
    snapshots.mkdir(mode=0o700, parents=True, exist_ok=True)
    target = snapshots / f"{digest}.ipynb"
    if not target.exists():
        fd, temporary = tempfile.mkstemp(dir=snapshots, prefix=".incoming-", suffix=".ipynb")
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(data)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
    return Snapshot(digest, target, len(data), source)


def take(
    home: str | os.PathLike[str],
    notebook: str,
    folder: str | os.PathLike[str],
    limit: int = MAX_NOTEBOOK_BYTES,
) -> Snapshot:
    """Snapshot the notebook ``home/notebook`` into ``folder``.

    Raises
    ------
    PathError
        The path is absolute, leaves ``home``, passes through a symbolic link, does not exist,
        is not a regular file, is larger than ``limit`` or is not a notebook.
    """
    data = read_under(home, notebook, "notebook", limit)
    check_notebook(data, notebook)
    return store(folder, data, notebook)


def verify(snapshot: str | os.PathLike[str]) -> str:
    """The digest of a stored snapshot, after checking that its content still matches its name.

    Raises
    ------
    PathError
        The file's SHA-256 is not the one in its name.
    """
    path = Path(snapshot)
    _, digest = sha256_file(path)
    if path.name != f"{digest}.ipynb":
        raise PathError(f"snapshot {path.name} has changed: its content hashes to {digest}")
    return digest
