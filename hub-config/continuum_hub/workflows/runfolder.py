"""A run's folder on the site: made at submit, read back while and after the job runs.

The workflow service never touches a site's files itself: it runs ``continuum-workflow-run``
as the user's account (through the site's transport) with one of these subcommands, and the
account's own permissions do the rest::

    continuum-workflow-run prepare FOLDER      < bundle.json   # make the folder (at submit)
    continuum-workflow-run report FOLDER                       # members' status.json, as JSON
    continuum-workflow-run cat FOLDER REL                      # one result file, bounded
    continuum-workflow-run archive FOLDER                      # all of it, .tar.gz (.archive)

``prepare`` reads one JSON bundle (at most :data:`MAX_BUNDLE_BYTES`) from standard input::

    {"version": 1, "run": {...},              # run.json's facts (site, partition, person, …)
     "notebook": "<base64>",                  # the snapshot's bytes
     "members": [{...}, ...],                 # each member's parameters (one: a single run)
     "hub_token": "…" | null}                 # the run's hub token, for the token agent

and creates ``FOLDER`` (absolute, or ``~/…`` below the account's home) with mode 0700 — its
parent too when missing — refusing a symbolic link anywhere on the way and an existing non-empty
folder, except one holding an earlier attempt of the same run (a retry, or a move to a site
sharing the home), which is prepared for the new attempt; files are 0600.  Layout
(:mod:`.runner` executes it; :mod:`.finish` adds the crate)::

    FOLDER/run.json                     what to run, and the facts for the provenance crate
    FOLDER/snapshots/<sha256>.ipynb     the notebook as submitted
    FOLDER/.hub-token                   the run's hub token (when given): the token agent's
    FOLDER/.bearer-token                BEARER_TOKEN_FILE, written by the token agent
    FOLDER/members/<i>/parameters.json  a sweep's member values (a single run: in run.json)
    FOLDER/[members/<i>/]status.json, output.ipynb, declared outputs
    FOLDER/slurm-<job>[_<task>].{out,err}  the job's standard output and error
    FOLDER/ro-crate-metadata.json       written when the last member ends
    FOLDER/attempts/<n>/…               what an ended attempt ``n`` left (status, notebooks)

``report`` and ``cat`` read only the names above (``cat``: executed notebooks, the crate and the
logs), without following a symbolic link, and bounded in size.

(Over 450 lines: making a folder, preparing it again for a retry and reading it back share the
link-refusing walk below, which :mod:`.archive` uses too; the inputs' copies are in
:mod:`.inputs`, the download in :mod:`.archive`.)
"""

from __future__ import annotations

import base64
import binascii
import errno
import hashlib
import json
import os
import pwd
import re
import stat
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

from .inputs import copy_inputs
from .params import ParameterError, check_parameters
from .paths import PathError
from .snapshot import SNAPSHOTS, check_notebook

#: largest bundle ``prepare`` reads (the service caps notebooks at 16 MiB, base64 adds a third)
MAX_BUNDLE_BYTES = 20 * 2**20
#: largest file ``cat`` prints
MAX_CAT_BYTES = 32 * 2**20
#: largest status.json ``report`` reads per member
MAX_STATUS_BYTES = 64 * 2**10
MAX_MEMBERS = 1000
HUB_TOKEN = ".hub-token"  # noqa: S105 - a file name
BEARER_TOKEN = ".bearer-token"  # noqa: S105 - a file name
CRATE = "ro-crate-metadata.json"
# what `cat` may print: executed notebooks, the crate, the job's logs
READABLE = re.compile(
    r"^(?:output\.ipynb|members/\d{1,4}/output\.ipynb|ro-crate-metadata\.json"
    r"|slurm-\d{1,12}(?:_\d{1,7})?\.(?:out|err))$"
)
EXIT_REFUSED = 3


class RunFolderRefused(ValueError):
    """A subcommand refuses its input or the folder; the message says why."""


# -- walking without following links -------------------------------------------------------


def absolute_folder(text: str) -> str:
    """``text`` as an absolute path: ``~/…`` is below this account's home (from the password
    database, not ``$HOME``); ``..`` and relative paths are refused."""
    if text.startswith("~/"):
        text = pwd.getpwuid(os.getuid()).pw_dir.rstrip("/") + text[1:]
    if not text.startswith("/") or "\x00" in text or ".." in text.split("/"):
        raise RunFolderRefused(f"run folder {text[:200]!r} is not an absolute path without '..'")
    return "/" + "/".join(part for part in text.split("/") if part not in ("", "."))


def _open_dir(parent: int, name: str, shown: str) -> int:
    try:
        return os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise RunFolderRefused(f"{shown} is a symbolic link or not a folder") from None
        raise RunFolderRefused(f"cannot open {shown}: {exc.strerror}") from None


@contextmanager
def walk(path: str, create: int = 0) -> Iterator[int]:
    """A descriptor of the folder ``path``, opened from ``/`` one component at a time without
    following a symbolic link; the last ``create`` components are made (0700) when missing."""
    parts = [part for part in absolute_folder(path).split("/") if part]
    fd = os.open("/", os.O_RDONLY | os.O_DIRECTORY)
    try:
        for index, part in enumerate(parts):
            shown = "/" + "/".join(parts[: index + 1])
            if index >= len(parts) - create:
                try:
                    os.mkdir(part, 0o700, dir_fd=fd)
                except FileExistsError:
                    pass
                except OSError as exc:
                    raise RunFolderRefused(f"cannot create {shown}: {exc.strerror}") from None
            child = _open_dir(fd, part, shown)
            os.close(fd)
            fd = child
        yield fd
    finally:
        os.close(fd)


def _write(folder: int, name: str, data: bytes) -> None:
    """A new file ``name`` (0600) in the folder ``folder``; an existing one is refused."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(name, flags, 0o600, dir_fd=folder)
    with os.fdopen(fd, "wb") as file:
        file.write(data)


def _mkdir(folder: int, name: str) -> int:
    os.mkdir(name, 0o700, dir_fd=folder)
    return _open_dir(folder, name, name)


def _exists(folder: int, name: str) -> bool:
    try:
        os.stat(name, dir_fd=folder, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True


def open_file(folder: int, rel: str) -> int | None:
    """A descriptor of the file ``rel`` below ``folder`` (no link followed on the way, the
    file not checked yet), ``None`` when missing.

    Raises
    ------
    RunFolderRefused
        A link or a non-folder on the way, or the file cannot be opened.
    """
    *dirs, name = rel.split("/")
    fd = os.dup(folder)
    try:
        for part in dirs:
            if not _exists(fd, part):
                return None
            child = _open_dir(fd, part, rel)
            os.close(fd)
            fd = child
        try:
            flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
            return os.open(name, flags, dir_fd=fd)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise RunFolderRefused(f"{rel}: {exc.strerror}") from None
    finally:
        os.close(fd)


def read_bounded(folder: int, rel: str, limit: int) -> bytes | None:
    """The regular file ``rel`` below ``folder`` (no link followed), ``None`` when missing.

    Raises
    ------
    RunFolderRefused
        A link or something else than a regular file on the way, or more than ``limit`` bytes.
    """
    file_fd = open_file(folder, rel)
    if file_fd is None:
        return None
    with os.fdopen(file_fd, "rb") as file:
        if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
            raise RunFolderRefused(f"{rel} is not a regular file")
        data = file.read(limit + 1)
    if len(data) > limit:
        raise RunFolderRefused(f"{rel} is larger than {limit} bytes")
    return data


# -- prepare -------------------------------------------------------------------------------


def read_bundle(stream: Any, limit: int = MAX_BUNDLE_BYTES) -> dict[str, Any]:
    """The bundle on ``stream`` (binary), checked: notebook, members' parameters, token."""
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise RunFolderRefused(f"the bundle is larger than {limit} bytes")
    try:
        bundle = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise RunFolderRefused("the bundle is not JSON") from None
    if not isinstance(bundle, dict) or bundle.get("version") != 1:
        raise RunFolderRefused("the bundle is not a version 1 run bundle")
    if not isinstance(bundle.get("run"), dict):
        raise RunFolderRefused("the bundle has no run description")
    try:
        notebook = base64.b64decode(bundle.get("notebook") or "", validate=True)
        check_notebook(notebook, "of the bundle")
    except (binascii.Error, PathError) as exc:
        raise RunFolderRefused(f"the bundle's notebook: {exc}") from None
    members = bundle.get("members")
    if not isinstance(members, list) or not 1 <= len(members) <= MAX_MEMBERS:
        raise RunFolderRefused(f"the bundle needs 1 to {MAX_MEMBERS} members' parameters")
    try:
        members = [check_parameters(values) for values in members]
    except ParameterError as exc:
        raise RunFolderRefused(f"the bundle's parameters: {exc}") from None
    token = bundle.get("hub_token")
    if token is not None and not (isinstance(token, str) and re.fullmatch(r"[!-~]{1,512}", token)):
        raise RunFolderRefused("the bundle's hub token is not a token")
    return {"run": bundle["run"], "notebook": notebook, "members": members, "hub_token": token}


def common_parameters(members: list[dict[str, Any]]) -> dict[str, Any]:
    """The values every member shares (a sweep's provenance names them once)."""
    first, *rest = members
    return {k: v for k, v in first.items() if all(k in m and m[k] == v for m in rest)}


def prepare(path: str, bundle: dict[str, Any]) -> dict[str, Any]:
    """Create the run folder ``path`` from a checked ``bundle``; what was made.

    A folder holding an earlier attempt of the same run (a retry, or a move to a site sharing
    the home) is prepared again for the bundle's later attempt: see :func:`prepare_again`.

    Raises
    ------
    RunFolderRefused
        The folder exists and is not empty (and is not this run's earlier attempt), or a link or
        a non-folder is on the way.
    """
    path = absolute_folder(path)
    os.umask(0o077)
    home = pwd.getpwuid(os.getuid()).pw_dir
    try:  # the inputs to copy (.inputs) are refused before anything is made
        copy_inputs(None, bundle["run"].get("inputs"), len(bundle["members"]), home)
    except PathError as exc:
        raise RunFolderRefused(str(exc)) from None
    parent = os.path.dirname(path)
    with walk(parent, create=1) as parent_fd:
        if os.fstat(parent_fd).st_uid == os.getuid():
            os.fchmod(parent_fd, 0o700)  # ~/continuum-runs: nobody else looks inside
    with walk(path, create=1) as folder:
        notebook, members = bundle["notebook"], bundle["members"]
        digest = hashlib.sha256(notebook).hexdigest()
        if os.listdir(folder):
            prepare_again(folder, path, bundle, digest)
            return {"folder": path, "sha256": digest, "members": len(members)}
        os.fchmod(folder, 0o700)
        snapshots = _mkdir(folder, SNAPSHOTS)
        try:
            _write(snapshots, f"{digest}.ipynb", notebook)
        finally:
            os.close(snapshots)
        if len(members) > 1:
            member_root = _mkdir(folder, "members")
            try:
                for index, values in enumerate(members):
                    member = _mkdir(member_root, str(index))
                    try:
                        _write(member, "parameters.json", json.dumps(values).encode())
                    finally:
                        os.close(member)
            finally:
                os.close(member_root)
        try:
            copy_inputs(folder, bundle["run"].get("inputs"), len(members), home)
        except (PathError, OSError) as exc:
            raise RunFolderRefused(f"copying the inputs: {exc}") from None
        _write(folder, "run.json", _run_json(bundle, digest))
        if bundle["hub_token"]:
            _write(folder, HUB_TOKEN, bundle["hub_token"].encode())
    return {"folder": path, "sha256": digest, "members": len(members)}


def _run_json(bundle: dict[str, Any], digest: str) -> bytes:
    """``run.json`` of the bundle (its parameters: in it for one member, else per member)."""
    members = bundle["members"]
    run = {k: v for k, v in bundle["run"].items() if k not in ("members", "parameters")}
    run.update(version=1, notebook=f"{SNAPSHOTS}/{digest}.ipynb", sha256=digest)
    run.setdefault("kernel", "python3")
    if len(members) == 1:
        run["parameters"] = members[0]
    else:
        run["members"] = len(members)
        run["common_parameters"] = common_parameters(members)
    return json.dumps(run, indent=1).encode()


def _replace(folder: int, name: str, data: bytes) -> None:
    """Replace (or create) the file ``name`` atomically: a new 0600 file renamed over it."""
    temporary = f".{name}.new"
    with suppress(FileNotFoundError):
        os.unlink(temporary, dir_fd=folder)
    _write(folder, temporary, data)
    os.replace(temporary, name, src_dir_fd=folder, dst_dir_fd=folder)


def prepare_again(folder: int, path: str, bundle: dict[str, Any], digest: str) -> None:
    """Prepare the existing folder of the same run for a later attempt.

    ``run.json`` is rewritten atomically (the new attempt, site and earlier attempts), the
    snapshot and the members' parameters are kept, and what the ended attempt left — each
    member's ``status.json``, executed notebook and declared outputs, the crate — moves to
    ``attempts/<n>/`` (same layout), so the runner and the crate start afresh.

    Raises
    ------
    RunFolderRefused
        Not this run's folder, not an earlier attempt, other members, another snapshot.
    """
    refused = RunFolderRefused(f"run folder {path} exists and is not empty")
    try:
        old = json.loads(read_bounded(folder, "run.json", 2**20) or b"")
    except (ValueError, RunFolderRefused):
        raise refused from None
    new = bundle["run"]
    if not isinstance(old, dict) or old.get("run_id") != new.get("run_id") or not old.get("run_id"):
        raise refused
    done, attempt = old.get("attempt"), new.get("attempt")
    if not (isinstance(done, int) and isinstance(attempt, int) and 0 < done < attempt):
        raise RunFolderRefused(f"run folder {path} holds attempt {done}, not one before {attempt}")
    count = len(bundle["members"])
    if member_count(folder) != count or old.get("sha256") != digest:
        raise RunFolderRefused(f"run folder {path} holds another run's notebook or members")
    previous = new.get("previous_attempts")
    last = previous[-1] if isinstance(previous, list) and previous else None
    if isinstance(last, dict) and last.get("site") == old.get("site"):
        last.setdefault("partition", old.get("partition"))  # the service may not know
    _archive(folder, old, done, count)
    _replace(folder, "run.json", _run_json(bundle, digest))
    if bundle["hub_token"]:
        _replace(folder, HUB_TOKEN, bundle["hub_token"].encode())


#: names of the run folder that are no attempt's results
KEPT = frozenset({"run.json", SNAPSHOTS, "members", "attempts", HUB_TOKEN, BEARER_TOKEN})


def _archive(folder: int, old: dict[str, Any], number: int, count: int) -> None:
    """Move attempt ``number``'s results to ``attempts/<number>/``."""
    declared = {str(p).split("/")[0] for p in old.get("outputs") or [] if isinstance(p, str)}
    names = ["status.json", "output.ipynb", *sorted(declared - KEPT - {""})]
    if not _exists(folder, "attempts"):
        os.mkdir("attempts", 0o700, dir_fd=folder)
    root = _open_dir(folder, "attempts", "attempts")
    try:
        archive = _mkdir(root, str(number))
    except FileExistsError:
        raise RunFolderRefused(f"attempts/{number} exists already") from None
    finally:
        os.close(root)
    try:
        for index in range(count):
            source, target = os.dup(folder), os.dup(archive)
            try:
                for part in member_prefix(count, index).strip("/").split("/"):
                    if part:
                        child = _open_dir(source, part, part)
                        os.close(source)
                        source = child
                        with suppress(FileExistsError):
                            os.mkdir(part, 0o700, dir_fd=target)
                        child = _open_dir(target, part, part)
                        os.close(target)
                        target = child
                for name in names:
                    if _exists(source, name):  # rename moves a link itself, never its target
                        os.rename(name, name, src_dir_fd=source, dst_dir_fd=target)
            finally:
                os.close(source)
                os.close(target)
        if _exists(folder, CRATE):
            os.rename(CRATE, CRATE, src_dir_fd=folder, dst_dir_fd=archive)
    finally:
        os.close(archive)


# -- report and cat ------------------------------------------------------------------------


def member_count(folder: int) -> int:
    """How many members the run in ``folder`` has (1: a single run)."""
    data = read_bounded(folder, "run.json", 2**20)
    if data is None:
        raise RunFolderRefused("the folder has no run.json")
    try:
        members = json.loads(data).get("members")
    except (ValueError, AttributeError):
        raise RunFolderRefused("run.json is not a run description") from None
    return members if isinstance(members, int) and 1 <= members <= MAX_MEMBERS else 1


def member_prefix(count: int, index: int) -> str:
    return "" if count == 1 else f"members/{index}/"


def report(path: str) -> dict[str, Any]:
    """Each member's ``status.json`` (``None`` before it starts), whether its executed notebook
    exists, and whether the run's crate exists."""
    with walk(path) as folder:
        count = member_count(folder)
        members = []
        for index in range(count):
            prefix = member_prefix(count, index)
            data = read_bounded(folder, f"{prefix}status.json", MAX_STATUS_BYTES)
            try:
                status = json.loads(data) if data is not None else None
            except ValueError:
                status = None  # being replaced (writes are atomic, so this is not expected)
            output = _exists_bounded(folder, f"{prefix}output.ipynb")
            members.append({"index": index, "status": status, "output": output})
        crate = _exists(folder, CRATE)
    return {"folder": absolute_folder(path), "members": members, "crate": crate}


def _exists_bounded(folder: int, rel: str) -> bool:
    try:
        return read_bounded(folder, rel, 0) is not None
    except RunFolderRefused as exc:
        return "larger than" in str(exc)


def cat(path: str, rel: str, limit: int = MAX_CAT_BYTES) -> bytes:
    """The result file ``rel`` of the run folder ``path`` (see :data:`READABLE`)."""
    if not READABLE.match(rel):
        raise RunFolderRefused(f"{rel[:200]!r} is not a result file of a run")
    with walk(path) as folder:
        data = read_bounded(folder, rel, limit)
    if data is None:
        raise RunFolderRefused(f"{rel} does not exist (yet)")
    return data


def main(argv: list[str]) -> int:
    """``prepare``/``report``/``cat`` (see the module's docstring) and ``archive``
    (:mod:`.archive`); exit 3 when refused."""
    command, *args = argv
    usage = {"prepare": 1, "report": 1, "cat": 2, "archive": 1}
    if len(args) != usage[command]:
        print(f"usage: continuum-workflow-run {command} FOLDER{' REL' * (command == 'cat')}")
        return 2
    try:
        if command == "prepare":
            made = prepare(args[0], read_bundle(sys.stdin.buffer))
            print(json.dumps(made))
        elif command == "report":
            print(json.dumps(report(args[0])))
        elif command == "archive":
            from .archive import archive

            archive(args[0], sys.stdout.buffer)
        else:
            sys.stdout.buffer.write(cat(args[0], args[1]))
    except RunFolderRefused as exc:
        print(f"continuum-workflow-run {command}: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    return 0
