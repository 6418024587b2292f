"""Inputs with ``copy: true``, copied into the run folder by ``prepare``, as the user.

A step's inputs name files, or folders (ending in ``/``), relative to the user's home folder.
Those marked ``copy: true`` are copied at submit — by ``continuum-workflow-run prepare``, which
runs as the user's account on the site, so the account's own permissions decide what it may
read — into the run's working folder at the same relative path: ``FOLDER/<path>`` for a single
run; for a sweep, once into ``FOLDER/<path>`` and hard-linked into each member's working folder
``members/<i>/<path>`` (the same bytes, one copy on the disk).  The notebook reads them where it
runs, whatever later happens to the originals, and the run's crate describes the copies with
their size and SHA-256 (from the folder, so the same digests the originals had at submit).

Checks: each path as :func:`~.paths.relative_path` accepts it (no absolute path, ``~``, ``..``);
opened below the home one component at a time with ``O_NOFOLLOW`` (a symbolic link anywhere,
also inside a copied folder, is refused); regular files and folders only; at most
:data:`MAX_COPY_BYTES` and :data:`MAX_COPY_FILES` in all, counted before anything is copied;
a path may not take a name of the run folder's own (``run.json``, ``members/``, …) nor overlap
another input.  Copies are read-only (0400; folders 0700).
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from typing import Any

from .paths import PathError, relative_path

#: most bytes copied into one run folder
MAX_COPY_BYTES = 2 * 2**30
#: most files copied into one run folder
MAX_COPY_FILES = 10_000
#: top-level names of the run folder an input may not take
RESERVED = frozenset(
    {
        "run.json",
        "snapshots",
        "members",
        "attempts",
        "status.json",
        "output.ipynb",
        "parameters.json",
        "ro-crate-metadata.json",
        ".crate.lock",
        ".hub-token",
        ".bearer-token",
    }
)
_CHUNK = 2**20


def copied_paths(inputs: Any) -> list[str]:
    """The checked paths of the inputs marked ``copy: true`` (run.json's ``inputs``).

    Raises
    ------
    PathError
        A path :func:`~.paths.relative_path` refuses, a reserved name, or overlapping inputs.
    """
    paths = []
    for item in inputs if isinstance(inputs, list) else []:
        if not (isinstance(item, dict) and item.get("copy") is True):
            continue
        path = relative_path(item.get("path"), "input", "your home folder")
        top = path.split("/")[0]
        if top in RESERVED or top.startswith("slurm-"):
            raise PathError(f"input {path!r} would take the run folder's own name {top!r}")
        for other in paths:
            shorter, longer = sorted((other.rstrip("/"), path.rstrip("/")), key=len)
            if longer == shorter or longer.startswith(shorter + "/"):
                raise PathError(f"inputs {other!r} and {path!r} overlap")
        paths.append(path)
    return paths


def _open(parent: int, name: str, shown: str, folder: bool) -> int:
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
    flags |= os.O_DIRECTORY if folder else os.O_NONBLOCK
    try:
        fd = os.open(name, flags, dir_fd=parent)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise PathError(f"input {shown!r} is or passes through a symbolic link") from None
        raise PathError(f"input {shown!r} cannot be opened: {exc.strerror}") from None
    if not folder and not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise PathError(f"input {shown!r} is not a regular file")
    return fd


def _source(home: int, path: str) -> int:
    """A descriptor of the input ``path`` (a folder when it ends in ``/``) below ``home``."""
    if path.endswith("/"):
        return _makedirs(home, path, create=False)
    parent, _, name = path.rpartition("/")
    folder = _makedirs(home, parent, create=False)
    try:
        return _open(folder, name, path, folder=False)
    finally:
        os.close(folder)


def _files(fd: int, rel: str, path: str) -> Iterator[tuple[str, int]]:
    """Every file below the open folder ``fd`` (``rel/…``) and its size; links refused."""
    with os.scandir(fd) as entries:
        names = sorted(entry.name for entry in entries)
    for name in names:
        info = os.stat(name, dir_fd=fd, follow_symlinks=False)
        shown = f"{path}{rel}{name}"
        if stat.S_ISLNK(info.st_mode):
            raise PathError(f"input {shown!r} is a symbolic link")
        if stat.S_ISDIR(info.st_mode):
            child = _open(fd, name, shown, folder=True)
            try:
                yield f"{rel}{name}/", 0
                yield from _files(child, f"{rel}{name}/", path)
            finally:
                os.close(child)
        elif stat.S_ISREG(info.st_mode):
            yield f"{rel}{name}", info.st_size
        else:
            raise PathError(f"input {shown!r} is neither a file nor a folder")


def _makedirs(folder: int, rel: str, create: bool = True) -> int:
    """A descriptor of ``folder/rel`` (a folder path), made 0700 where missing if ``create``."""
    fd = os.dup(folder)
    try:
        for part in [p for p in rel.split("/") if p]:
            if create:
                try:
                    os.mkdir(part, 0o700, dir_fd=fd)
                except FileExistsError:
                    pass
            child = _open(fd, part, rel, folder=True)
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def _copy_file(source: int, target: int, name: str, shown: str) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        out = os.open(name, flags, 0o400, dir_fd=target)
    except FileExistsError:
        raise PathError(f"input {shown!r} exists in the run folder already") from None
    with os.fdopen(out, "wb") as file:
        while chunk := os.read(source, _CHUNK):
            file.write(chunk)


def _link(folder: int, rel: str, member: str) -> None:
    """Hard-link ``folder/rel`` (file or folder tree) at ``folder/member/rel``."""
    parent, _, name = rel.rstrip("/").rpartition("/")
    target = _makedirs(folder, f"{member}/{parent}")
    source = _makedirs(folder, parent)
    try:
        if rel.endswith("/"):
            os.mkdir(name, 0o700, dir_fd=target)
            below = _open(source, name, rel, folder=True)
            try:
                entries = [entry for entry, _ in _files(below, "", rel)]
            finally:
                os.close(below)
            for entry in entries:
                if entry.endswith("/"):
                    os.mkdir(f"{name}/{entry}", 0o700, dir_fd=target)
                else:
                    os.link(f"{name}/{entry}", f"{name}/{entry}", src_dir_fd=source,
                            dst_dir_fd=target, follow_symlinks=False)  # fmt: skip
        else:
            os.link(name, name, src_dir_fd=source, dst_dir_fd=target, follow_symlinks=False)
    finally:
        os.close(target)
        os.close(source)


def _opened(root: int, paths: list[str]) -> list[int]:
    """Descriptors of the inputs ``paths`` below ``root``, within the bounds (all closed and
    :class:`~.paths.PathError` raised when one is refused)."""
    sources: list[int] = []
    try:
        total = count = 0
        for path in paths:
            fd = _source(root, path)
            sources.append(fd)
            listed = list(_files(fd, "", path)) if path.endswith("/") else []
            total += sum(size for _, size in listed) + (0 if listed else os.fstat(fd).st_size)
            count += max(len(listed), 1)
        if total > MAX_COPY_BYTES or count > MAX_COPY_FILES:
            raise PathError(
                f"the inputs to copy hold {count} files, {total} bytes: more than "
                f"{MAX_COPY_FILES} files or {MAX_COPY_BYTES // 2**20} MiB"
            )
    except BaseException:
        for fd in sources:
            os.close(fd)
        raise
    return sources


def copy_inputs(
    folder: int | None, inputs: Any, members: int, home: str | os.PathLike[str]
) -> list[str]:
    """Copy the ``copy: true`` inputs from ``home`` into the open run folder ``folder``.

    Parameters
    ----------
    folder
        The run folder's descriptor; ``None`` checks the inputs (paths, links, bounds)
        without copying, so ``prepare`` refuses them before it makes anything.
    inputs
        run.json's ``inputs`` (``[{"path", "copy"}, …]``).
    members
        The run's member count: above 1, each member's folder gets hard links.
    home
        The account's home folder (the paths' root).

    Returns
    -------
    list[str]
        The copied paths.

    Raises
    ------
    PathError
        A refused path, a link, more than the bounds: before anything is copied.
    """
    paths = copied_paths(inputs)
    if not paths:
        return []
    root = os.open(home, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        sources = _opened(root, paths)
    finally:
        os.close(root)
    try:
        for path, fd in zip(paths, sources, strict=True):
            if folder is not None:
                _copy(folder, fd, path)
    finally:
        for fd in sources:
            os.close(fd)
    for index in range(members if folder is not None and members > 1 else 0):
        for path in paths:
            _link(folder, path, f"members/{index}")
    return paths


def _copy(folder: int, source: int, path: str) -> None:
    """Copy the open input ``source`` (file, or folder for ``…/``) to ``folder/path``."""
    parent, _, name = path.rstrip("/").rpartition("/")
    target = _makedirs(folder, parent)
    try:
        if not path.endswith("/"):
            _copy_file(source, target, name, path)
            return
        os.mkdir(name, 0o700, dir_fd=target)
        for rel, _ in list(_files(source, "", path)):
            if rel.endswith("/"):
                os.mkdir(f"{name}/{rel}", 0o700, dir_fd=target)
                continue
            sub, _, leaf = rel.rpartition("/")
            into = _makedirs(target, f"{name}/{sub}")
            from_dir = _makedirs(source, sub, create=False)
            try:
                fd = _open(from_dir, leaf, f"{path}{rel}", folder=False)
                try:
                    _copy_file(fd, into, leaf, f"{path}{rel}")
                finally:
                    os.close(fd)
            finally:
                os.close(from_dir)
                os.close(into)
    finally:
        os.close(target)
