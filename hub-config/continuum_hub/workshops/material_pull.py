"""Workshop material pulled into a participant's home, inside their server's job, as them.

``continuum-singleuser`` runs ``python -m continuum_hub.workshops.material_pull -- CMD…``: it
asks the hub which material the user's running events have (``GET
/hub/api/continuum/events/material`` with the server's own token), pulls each into
``~/<event folder>``, starts a watcher (this module with ``--watch``, a child that outlives the
``exec``) and replaces itself with ``CMD`` (the server).  The watcher asks again every
``interval`` seconds and pulls an event again when the instructor pushed an update (its
``version`` changed).  Polling from the job was chosen over the hub calling into each server:
compute nodes are often unreachable from the hub except through the proxy, and the server's own
token is all it needs.  Nothing here is fatal: a server without material beats no server.

The merge rule (:func:`sync_tree`; nbgitpuller's intent, without git in the participant's
folder).  ``.continuum-material.json`` in the event folder records each file as last delivered.

* a new upstream file arrives; a file nobody changed follows upstream;
* a file the participant changed stays as it is; when upstream changed it too, upstream's
  version goes beside it as ``name.upstream.ext`` (``intro.ipynb`` → ``intro.upstream.ipynb``),
  replaced by later upstream changes; a participant's own file where upstream adds one of the
  same name is treated the same way;
* a file the participant deleted comes back at the next pull (delete a notebook to get a fresh
  copy); files removed upstream stay in the home.

Git sources are fetched (``--depth 1``) into ``~/.cache/continuum-material/<event>`` and checked
out there, never in the participant's folder.  Only ``https`` URLs that :mod:`.material` accepts
are fetched, and every address the host resolves to must be public (a DNS answer can change
after the hub checked the name); redirects are not followed.  Folder material (a folder on the
hub host, seen by the job on the shared file system) is copied by the same rule.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import pwd
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .material import check_material, public_host

MANIFEST = ".continuum-material.json"
CACHE = Path(".cache") / "continuum-material"
FOLDER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")
EVENT_ID = re.compile(r"^[0-9a-f]{12}$")
#: a pull stops at this many files or bytes (material, not data sets)
MAX_FILES = 5000
MAX_BYTES = 1 << 30
GIT_TIMEOUT = 300.0
MODULE = "continuum_hub.workshops.material_pull"


class MaterialError(RuntimeError):
    """Material that cannot or may not be pulled (a message for the job's log)."""


@dataclass
class SyncReport:
    """What one pull did, by relative path."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    beside: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{len(self.added)} added, {len(self.updated)} updated, "
            f"{len(self.kept)} kept with your changes ({len(self.beside)} upstream copies beside)"
        )


def _digest(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


def upstream_files(root: Path) -> dict[str, Path]:
    """Regular files under ``root`` by relative POSIX path (no ``.git``, no links)."""
    found: dict[str, Path] = {}
    total = 0
    for folder, dirs, files in os.walk(root):
        # links to folders are not followed (os.walk default); hidden git data is not material
        dirs[:] = sorted(d for d in dirs if d != ".git")
        for name in sorted(files):
            path = Path(folder) / name
            if path.is_symlink() or not path.is_file() or name == MANIFEST:
                continue
            total += path.stat().st_size
            found[path.relative_to(root).as_posix()] = path
            if len(found) > MAX_FILES or total > MAX_BYTES:
                raise MaterialError(f"material is larger than {MAX_FILES} files or 1 GiB")
    return found


def beside_name(relative: str) -> str:
    """Where upstream's version of a file the participant changed goes."""
    head, _, name = relative.rpartition("/")
    stem, dot, suffix = name.rpartition(".")
    fresh = f"{stem}.upstream.{suffix}" if dot and stem else f"{name}.upstream"
    return f"{head}/{fresh}" if head else fresh


def _copy(source: Path, target: Path) -> None:
    """Copy atomically: a half-written notebook never appears, a link at ``target`` is replaced
    rather than followed."""
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".material-")
    os.close(handle)
    try:
        shutil.copyfile(source, temporary)
        os.chmod(temporary, 0o644 | (source.stat().st_mode & 0o111))
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def _read_manifest(dest: Path) -> dict[str, str]:
    try:
        data = json.loads((dest / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}  # none yet, or damaged: every differing file then counts as the participant's
    files = data.get("files") if isinstance(data, dict) else None
    if not isinstance(files, dict):
        return {}
    return {str(k): str(v) for k, v in files.items()}


def sync_tree(source: Path, dest: Path) -> SyncReport:
    """Bring ``source``'s files into ``dest`` by the merge rule of this module (idempotent)."""
    files = upstream_files(source)
    delivered = _read_manifest(dest)
    report = SyncReport()
    dest.mkdir(parents=True, exist_ok=True)
    manifest: dict[str, str] = {}
    for relative, path in files.items():
        upstream = _digest(path)
        manifest[relative] = upstream
        target = dest / relative
        if target.is_symlink() or not target.exists():
            _copy(path, target)
            report.added.append(relative)
            continue
        if not target.is_file():
            report.kept.append(relative)  # a folder of the participant's where upstream has a file
            continue
        current = _digest(target)
        if current == upstream:
            continue
        if delivered.get(relative) == current:
            _copy(path, target)  # untouched since the last pull: follow upstream
            report.updated.append(relative)
            continue
        report.kept.append(relative)
        if delivered.get(relative) != upstream:
            _copy(path, dest / beside_name(relative))
            report.beside.append(beside_name(relative))
    body = json.dumps({"files": manifest}, indent=1, sort_keys=True)
    handle, temporary = tempfile.mkstemp(dir=dest, prefix=".material-")
    with os.fdopen(handle, "w") as stream:
        stream.write(body)
    os.replace(temporary, dest / MANIFEST)
    return report


def check_git_url(url: str, *, allow_file: bool = False) -> None:
    """Refuse anything but an ``https`` URL :mod:`.material` accepts whose host resolves only
    to public addresses.  ``allow_file`` (tests only, never set from the command line or the
    hub) lets ``file://`` repositories through."""
    parts = urlsplit(url)
    if allow_file and parts.scheme == "file":
        return
    if parts.scheme != "https":
        raise MaterialError(f"material is pulled over https only, not {parts.scheme or url!r}")
    try:
        check_material({"git": url}, ())
    except ValueError as exc:
        raise MaterialError(str(exc)) from None
    try:
        answers = socket.getaddrinfo(parts.hostname or "", parts.port or 443, proto=6)
    except OSError as exc:
        raise MaterialError(f"cannot resolve {parts.hostname}: {exc}") from None
    for *_, address in answers:
        if not public_host(str(address[0])):
            raise MaterialError(f"{parts.hostname} resolves to a non-public address")


def git_checkout(
    url: str, ref: str, cache: Path, *, allow_file: bool = False, timeout: float = GIT_TIMEOUT
) -> Path:
    """``ref`` of ``url`` checked out in ``cache`` (made on the first pull); returns ``cache``."""
    check_git_url(url, allow_file=allow_file)
    if not re.fullmatch(r"(?!-)(?!.*\.\.)[A-Za-z0-9._/-]{1,100}", ref):
        raise MaterialError(f"not a git ref: {ref[:40]!r}")
    allowed = ["-c", "protocol.allow=never", "-c", "protocol.https.allow=always"]
    if allow_file:
        allowed += ["-c", "protocol.file.allow=always"]
    options = [*allowed, "-c", "http.followRedirects=false", "-c", "core.hooksPath=/dev/null"]
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true"}
    cache.mkdir(parents=True, exist_ok=True, mode=0o700)
    steps = []
    if not (cache / ".git").is_dir():
        steps.append(["git", "init", "--quiet", str(cache)])
    git = ["git", "-C", str(cache), *options]
    steps.append([*git, "fetch", "--quiet", "--depth", "1", "--no-tags", "--", url, ref])
    steps.append([*git, "checkout", "--quiet", "--force", "--detach", "FETCH_HEAD"])
    for argv in steps:
        try:
            subprocess.run(argv, env=env, check=True, capture_output=True, timeout=timeout)
        except subprocess.CalledProcessError as exc:
            lines = exc.stderr.decode(errors="replace").strip().splitlines() or ["?"]
            raise MaterialError(f"git failed: {lines[-1][:300]}") from None
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise MaterialError(f"git failed: {exc}") from None
    return cache


def pull_event(entry: Mapping[str, Any], home: Path, *, allow_file: bool = False) -> SyncReport:
    """Pull one event's material (an entry of the hub's answer) into ``home``."""
    event_id, folder = str(entry.get("id", "")), str(entry.get("folder", ""))
    if not EVENT_ID.match(event_id) or not FOLDER_NAME.match(folder):
        raise MaterialError(f"the hub named an odd event or folder: {event_id!r} {folder!r}")
    material = entry.get("material")
    if not isinstance(material, Mapping):
        raise MaterialError(f"event {event_id} has no material")
    if "git" in material:
        source = git_checkout(
            str(material["git"]),
            str(material.get("ref", "main")),
            home / CACHE / event_id,
            allow_file=allow_file,
        )
    elif "folder" in material:
        source = Path(str(material["folder"]))
        if not source.is_absolute() or ".." in source.parts or not source.is_dir():
            raise MaterialError(f"material folder {source} is not a folder here")
    else:
        raise MaterialError(f"event {event_id}: material of an unknown kind")
    return sync_tree(source, home / folder)


def fetch_plan(api_url: str, token: str, timeout: float = 20.0) -> dict[str, Any]:
    """The hub's answer: ``{"interval": s, "events": [{id, folder, material, version}]}``."""
    if not api_url.startswith(("http://", "https://")):
        raise MaterialError("JUPYTERHUB_API_URL is not an http(s) URL")
    request = urllib.request.Request(  # noqa: S310 - scheme checked above
        api_url.rstrip("/") + "/continuum/events/material",
        headers={"Authorization": f"token {token}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            plan = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        if exc.code == 404:  # workshops are not enabled on this hub
            return {"events": []}
        raise MaterialError(f"the hub answered {exc.code}") from None
    except (OSError, ValueError) as exc:
        raise MaterialError(f"cannot ask the hub: {exc}") from None
    return plan if isinstance(plan, dict) else {"events": []}


def _log(message: str) -> None:
    print(f"continuum-material: {message}", file=sys.stderr, flush=True)


def pull_all(plan: Mapping[str, Any], home: Path, seen: dict[str, Any]) -> None:
    """Pull every event of ``plan`` whose version differs from ``seen`` (updated in place)."""
    for entry in plan.get("events") or []:
        if not isinstance(entry, Mapping):
            continue
        key = str(entry.get("id"))
        if key in seen and seen[key] == entry.get("version"):
            continue
        try:
            report = pull_event(entry, home)
        except (MaterialError, OSError) as exc:
            _log(f"event {entry.get('id')}: {exc}")
            continue
        seen[key] = entry.get("version")
        _log(f"event {entry['id']} into ~/{entry['folder']}: {report.summary()}")


def watch(api_url: str, token: str, home: Path, seen: dict[str, Any], interval: float) -> None:
    """Pull again whenever the hub's version of an event changes, until the server is gone."""
    parent = os.getppid()
    while os.getppid() == parent:
        time.sleep(interval)  # the poll period itself, not a wait for a condition
        try:
            plan = fetch_plan(api_url, token)
        except MaterialError as exc:
            _log(str(exc))
            continue
        interval = _interval(plan.get("interval"), interval)
        pull_all(plan, home, seen)


def _interval(value: Any, default: float = 30.0) -> float:
    try:
        return min(3600.0, max(1.0, float(value)))
    except (TypeError, ValueError):
        return default


def start_watcher(plan: Mapping[str, Any], seen: Mapping[str, Any]) -> None:
    """Start the watcher (a child that outlives this process's ``exec``)."""
    interval = str(_interval(plan.get("interval")))
    watcher = [sys.executable, "-m", MODULE, "--watch", "--interval", interval]
    watcher += ["--seen", json.dumps(seen)]
    subprocess.Popen(watcher, stdin=subprocess.DEVNULL)  # fixed argv


def main(argv: list[str] | None = None) -> None:
    """``continuum-material [--watch] -- CMD…`` (see the module)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    split = argv.index("--") if "--" in argv else len(argv)
    command = argv[split + 1 :]
    parser = argparse.ArgumentParser(prog="continuum-material")
    parser.add_argument("--watch", action="store_true", help="keep pulling pushed updates")
    parser.add_argument("--seen", default="{}", help="versions pulled already (JSON)")
    parser.add_argument("--interval", type=_interval, default=30.0, help="seconds between polls")
    args = parser.parse_args(argv[:split])
    api_url = os.environ.get("JUPYTERHUB_API_URL", "")
    token = os.environ.get("JUPYTERHUB_API_TOKEN", "")
    # the account's home, whatever HOME the job inherited
    home = Path(pwd.getpwuid(os.getuid()).pw_dir)
    seen: dict[str, Any] = {}
    with contextlib.suppress(ValueError, TypeError):
        seen = dict(json.loads(args.seen))
    if args.watch:
        watch(api_url, token, home, seen, args.interval)
        return
    try:
        plan = fetch_plan(api_url, token) if api_url and token else {"events": []}
        pull_all(plan, home, seen)
        if plan.get("events"):
            start_watcher(plan, seen)
    except Exception as exc:  # a server without material beats no server
        _log(f"no material: {exc}")
    if command:
        os.execvp(command[0], command)  # noqa: S606 - the server command of the launcher


if __name__ == "__main__":
    main()
