"""Paths a user names in a workflow, checked in the text and again on the disk.

A workflow names its notebooks and inputs relative to the user's home folder and its outputs
relative to the run's folder.  :func:`relative_path` refuses, from the text alone, what could
point elsewhere: absolute paths, ``~``, ``..`` and NUL characters.  :func:`open_under` then opens
such a path below a root folder one component at a time with ``O_NOFOLLOW``, so neither a
symbolic link planted on the way nor one swapped in between a check and the open can lead
outside the root (comparing ``realpath`` before opening would leave that window open).
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import PurePosixPath


class PathError(ValueError):
    """A path is refused; the message says which and why."""


def relative_path(text: object, what: str = "path", base: str = "your home folder") -> str:
    """``text`` normalized (``a//b/./c`` → ``a/b/c``; a trailing ``/`` kept: a folder).

    Parameters
    ----------
    what
        What the path is, for the message (``"notebook"``, ``"output"``).
    base
        What it is relative to, for the message.

    Raises
    ------
    PathError
        Empty, not text, absolute, starting with ``~``, containing ``..`` or a NUL character.
    """
    if not isinstance(text, str) or not text.strip("/."):
        raise PathError(f"{what} {text!r} is not a path")
    if "\x00" in text:
        raise PathError(f"{what} {text!r} contains a NUL character")
    if text.startswith(("/", "~")):
        raise PathError(f"{what} {text!r} is absolute: give a path relative to {base}")
    if ".." in text.split("/"):
        raise PathError(f"{what} {text!r} contains '..': a path may not leave {base}")
    normal = str(PurePosixPath(text))
    return normal + "/" if text.endswith("/") else normal


def _refusal(root: int, parts: list[str], index: int, what: str, rel: str) -> PathError:
    """Why opening ``parts[index]`` (below the folder ``root``) failed."""
    shown = "/".join(parts[: index + 1])
    try:
        mode = os.lstat(parts[index], dir_fd=root).st_mode
    except FileNotFoundError:
        return PathError(f"{what} {rel!r} does not exist")
    except OSError as exc:
        return PathError(f"{what} {rel!r} cannot be opened: {exc.strerror}")
    if stat.S_ISLNK(mode):
        return PathError(f"{what} {rel!r} passes through the symbolic link {shown!r}")
    if index < len(parts) - 1:
        return PathError(f"{what} {rel!r}: {shown!r} is not a folder")
    return PathError(f"{what} {rel!r} cannot be opened")


def open_under(root: str | os.PathLike[str], rel: str, what: str = "path") -> int:
    """Open the regular file ``root/rel`` for reading, following no symbolic link below ``root``.

    Returns
    -------
    int
        A file descriptor (the caller closes it).

    Raises
    ------
    PathError
        ``rel`` is refused by :func:`relative_path`, does not exist, passes through a symbolic
        link, or is not a regular file.
    """
    rel = relative_path(rel, what)
    parts = rel.rstrip("/").split("/")
    try:
        folder = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise PathError(f"cannot open the folder {os.fspath(root)!r}: {exc.strerror}") from None
    try:
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            # O_NONBLOCK: opening a FIFO planted in place of the file must not hang the caller
            flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
            flags |= os.O_NONBLOCK if last else os.O_DIRECTORY
            try:
                fd = os.open(part, flags, dir_fd=folder)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.ENOENT, errno.EACCES):
                    raise _refusal(folder, parts, index, what, rel) from None
                raise PathError(f"{what} {rel!r} cannot be opened: {exc.strerror}") from None
            os.close(folder)
            folder = fd
        if not stat.S_ISREG(os.fstat(folder).st_mode):
            raise PathError(f"{what} {rel!r} is not a regular file")
        os.set_blocking(folder, True)
        fd, folder = folder, -1
        return fd
    finally:
        if folder >= 0:
            os.close(folder)


def read_under(root: str | os.PathLike[str], rel: str, what: str, limit: int) -> bytes:
    """The content of ``root/rel`` (opened with :func:`open_under`), at most ``limit`` bytes.

    Raises
    ------
    PathError
        As :func:`open_under`, or the file is larger than ``limit``.
    """
    fd = open_under(root, rel, what)
    with os.fdopen(fd, "rb") as file:
        data = file.read(limit + 1)
    if len(data) > limit:
        raise PathError(f"{what} {rel!r} is larger than the limit of {limit} bytes")
    return data
