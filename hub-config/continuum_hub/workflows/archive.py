"""``continuum-workflow-run archive FOLDER``: a run folder as a tar.gz on standard output.

The *Download* of a run: the workflow service runs this subcommand as the run's account
(through the site's transport, like ``prepare``/``report``/``cat`` of :mod:`.runfolder`) and
streams what it prints to the owner.  The archive holds the folder below one top folder named
like the run folder (``r-…/``), with:

* no credential: the run's ``.hub-token``, the token agent's ``.bearer-token`` and their
  temporary files, and anything else named like a credential (:data:`CREDENTIAL`) — at any
  depth, since a notebook may have copied one;
* symbolic links stored as links, and only those that stay inside the folder: a link whose
  target leaves it (absolute, or ``..`` beyond the top) refuses the whole archive, before
  anything is written, with a message naming it;
* regular files and folders only (a FIFO or socket is left out), opened without following a
  link (``O_NOFOLLOW`` from a descriptor of their folder), owner ids not recorded.

Everything is listed and checked first, so a refusal (exit 3, the reason on standard error)
prints nothing; the listing is bounded to :data:`MAX_ENTRIES` entries and
:data:`MAX_ARCHIVE_BYTES` bytes of files.

The service's end is :func:`stream_command`: the transports answer a command's whole output as
text, so it starts the transport's own argument list itself and hands on the bytes as they come.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import posixpath
import re
import stat
import tarfile
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, BinaryIO

from .runfolder import RunFolderRefused, _open_dir, absolute_folder, open_file, walk

#: most bytes of files in one archive (before compression)
MAX_ARCHIVE_BYTES = 4 * 2**30
#: most entries (files, folders, links) in one archive
MAX_ENTRIES = 100_000
#: names never archived: the run's tokens and their temporary files (``.hub-token``,
#: ``.bearer-token``, ``..bearer-token.x.tmp``, ``..hub-token.new``), any dot file naming a
#: token, X.509 proxies, private keys and key stores, ``.netrc``, SSH identities
CREDENTIAL = re.compile(
    r"^\..*token"
    r"|^x509up_"
    r"|\.(?:pem|key|p12|pfx|jks|keytab)$"
    r"|^\.netrc$"
    r"|^id_(?:rsa|dsa|ecdsa|ed25519)(?:\.pub)?$"
    r"|^\.crate\.lock$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Entry:
    """One member of the archive: its path below the folder, its stat, a link's target."""

    rel: str
    info: os.stat_result
    target: str | None = None


def _listdir(fd: int) -> list[str]:
    with os.scandir(fd) as entries:
        return sorted(entry.name for entry in entries)


def _link_inside(rel: str, target: str) -> bool:
    """Whether the link at ``rel`` (below the folder) pointing at ``target`` stays inside."""
    if target.startswith("/") or "\x00" in target:
        return False
    resolved = posixpath.normpath(posixpath.join(posixpath.dirname(rel), target))
    return resolved != ".." and not resolved.startswith("../")


def listing(folder: int, rel: str = "") -> Iterator[Entry]:
    """What the archive of the open folder ``folder`` holds, depth first, credentials left out.

    Raises
    ------
    RunFolderRefused
        A symbolic link leaving the folder.
    """
    for name in _listdir(folder):
        if CREDENTIAL.search(name):
            continue
        path = f"{rel}{name}"
        info = os.stat(name, dir_fd=folder, follow_symlinks=False)
        if stat.S_ISLNK(info.st_mode):
            target = os.readlink(name, dir_fd=folder)
            if not _link_inside(path, target):
                raise RunFolderRefused(
                    f"{path} is a symbolic link to {target[:200]!r}, outside the run folder"
                )
            yield Entry(path, info, target)
        elif stat.S_ISDIR(info.st_mode):
            yield Entry(path, info)
            child = _open_dir(folder, name, path)
            try:
                yield from listing(child, f"{path}/")
            finally:
                os.close(child)
        elif stat.S_ISREG(info.st_mode):
            yield Entry(path, info)


def checked_listing(folder: int) -> list[Entry]:
    """:func:`listing`, whole, within :data:`MAX_ENTRIES` and :data:`MAX_ARCHIVE_BYTES`."""
    entries, size = [], 0
    for entry in listing(folder):
        entries.append(entry)
        if stat.S_ISREG(entry.info.st_mode):
            size += entry.info.st_size
        if len(entries) > MAX_ENTRIES or size > MAX_ARCHIVE_BYTES:
            raise RunFolderRefused(
                f"the run folder holds more than {MAX_ENTRIES} entries or "
                f"{MAX_ARCHIVE_BYTES // 2**30} GiB: download its files one by one"
            )
    return entries


@contextmanager
def _open_file(folder: int, rel: str) -> Iterator[BinaryIO]:
    """The regular file ``rel`` below ``folder``, no link followed on the way."""
    fd = open_file(folder, rel)
    if fd is None:
        raise RunFolderRefused(f"{rel} was removed while the archive was made")
    with os.fdopen(fd, "rb") as file:
        if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
            raise RunFolderRefused(f"{rel} is no longer a regular file")
        yield file


def _tarinfo(top: str, entry: Entry, size: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(f"{top}/{entry.rel}" if entry.rel else top)
    info.mode = stat.S_IMODE(entry.info.st_mode)
    info.mtime = int(entry.info.st_mtime)
    # who owns the files on the site is no business of the archive's reader
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if entry.target is not None:
        info.type, info.linkname = tarfile.SYMTYPE, entry.target
    elif stat.S_ISDIR(entry.info.st_mode):
        info.type = tarfile.DIRTYPE
    else:
        info.size = size
    return info


def archive(path: str, out: BinaryIO) -> int:
    """Write the run folder ``path`` as a tar.gz to ``out``; how many entries it holds.

    Raises
    ------
    RunFolderRefused
        A symbolic link on the way to the folder or leaving it, or too much to archive —
        before anything is written to ``out``.
    """
    path = absolute_folder(path)
    top = posixpath.basename(path)
    with walk(path) as folder:
        entries = checked_listing(folder)
        with tarfile.open(fileobj=out, mode="w|gz", format=tarfile.PAX_FORMAT) as tar:
            tar.addfile(_tarinfo(top, Entry("", os.fstat(folder))))
            for entry in entries:
                if entry.target is not None or stat.S_ISDIR(entry.info.st_mode):
                    tar.addfile(_tarinfo(top, entry))
                    continue
                with _open_file(folder, entry.rel) as file:
                    # the size now: a file still being written is archived as it is
                    size = os.fstat(file.fileno()).st_size
                    tar.addfile(_tarinfo(top, entry, size), file)
    return len(entries) + 1


# -- the service's end ---------------------------------------------------------------------

#: bytes handed on at a time
CHUNK = 256 * 2**10


async def stream_command(
    transport: Any, argv: Sequence[str], user: str, seconds: float
) -> AsyncIterator[bytes]:
    """Run ``argv`` as ``user`` through ``transport`` and yield its standard output in chunks.

    The argument list, environment and standard input are the transport's own (a
    :class:`~continuum_spawners.schedulers.transport.LocalTransport`'s ``sudo``, an
    :class:`~continuum_spawners.schedulers.ssh.SSHTransport`'s ``ssh`` with its environment
    header), so the command runs exactly as the transport would run it.

    Raises
    ------
    RuntimeError
        The command failed (its last line of standard error), or ran longer than ``seconds``;
        a failure after the first chunk ends the stream there.
    """
    from continuum_spawners.schedulers.transport import SAFE_PATH

    if hasattr(transport, "stdin_bytes"):  # ssh: the environment travels on standard input
        full, env = transport.command(argv, user), {"PATH": SAFE_PATH}
        stdin = transport.stdin_bytes({}, None)
    else:
        (full, env), stdin = transport.command(argv, user, {}), b""
    proc = await asyncio.create_subprocess_exec(
        *full,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
        cwd="/",
    )
    assert proc.stdin and proc.stdout and proc.stderr
    proc.stdin.write(stdin)
    proc.stdin.close()
    errors = asyncio.ensure_future(proc.stderr.read(64 * 2**10))
    deadline = asyncio.get_running_loop().time() + seconds
    try:
        while True:
            left = deadline - asyncio.get_running_loop().time()
            try:
                chunk = await asyncio.wait_for(proc.stdout.read(CHUNK), max(left, 0.001))
            except TimeoutError:
                raise RuntimeError(f"{argv[0]} ran longer than {seconds:.0f} s") from None
            if not chunk:
                break
            yield chunk
        code = await proc.wait()
        if code != 0:
            lines = (await errors).decode(errors="replace").strip().splitlines()
            raise RuntimeError(lines[-1][:300] if lines else f"exit status {code}")
    finally:
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()
        errors.cancel()
