"""Database files made private (0600) without ever opening one that exists.

Every store of ours keeps its SQLite file 0600: it holds people's jobs, identities and tokens'
metadata.  The tempting way — ``os.close(os.open(path, O_CREAT))`` on every start — is unsafe
for a file that exists: closing *any* descriptor of a file drops every POSIX lock this process
holds on it, SQLite's own included, so another connection of the same process loses its locks
and another process may then checkpoint, truncate or delete the write-ahead log under it (seen
here: the hub and a second ledger in one process each went on seeing only their own writes).
:func:`create_private` opens a file only to create it.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["create_private"]


def create_private(path: str | os.PathLike[str]) -> Path:
    """Create ``path`` empty and 0600 when it does not exist; else make it 0600 (``chmod``
    needs no descriptor).  Its folder must exist.  Returns the absolute path."""
    target = Path(path).absolute()
    try:
        os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        target.chmod(0o600)
    return target
