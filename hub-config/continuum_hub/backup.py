"""``continuum-hub backup FOLDER`` and ``continuum-hub restore FOLDER``: every database of the
hub and its state folder, copied while the hub runs and put back while it is stopped.

The databases come from the deployment's configuration (:func:`database_urls`: the JSON layer
named by ``--config`` or ``$CONTINUUM_HUB_CONFIG``, with each option's default): JupyterHub's
own, the identities, the pool leases, the usage ledger, the events, the workflow runs, the
catalogue's requests, its built-in sources' records when their ``BuiltinSource.db_url`` is set
(else they are SQLite files in the catalogue's state folder) and the Dask Gateway's clusters;
``--database NAME=URL`` adds or replaces one.  Each is copied by :mod:`continuum_hub.dumps`
(SQLite: the online backup API; PostgreSQL: ``pg_dump --format=custom``, a database that
several stores share once).  The state folder
(``--state-dir``, the hub's working directory) goes into ``state.tar.gz`` with modes and owners
kept (secrets stay 0600), its SQLite files copied through the backup API too, the databases
above and their logs left out (they have their own copy).

A backup folder (0700, every file 0600)::

    manifest.json        what is where (URLs without passwords)
    databases/NAME.sqlite | NAME.dump
    state.tar.gz

A restore writes everything back to where the *current* configuration puts it (stop the hub,
its proxy and services first); it refuses to overwrite a non-empty state folder or database
unless ``--force``.  A PostgreSQL database must exist (created empty, as the deployment does).
Afterwards run ``jupyterhub upgrade-db`` when the backup comes from an older release.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tarfile
import tempfile
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import make_url
from traitlets.config import Config

from continuum_spawners.private_file import create_private, sqlite_path

from . import dumps
from .config import CONFIG_ENV, load_json_layer

__all__ = ["BackupError", "backup", "database_urls", "main", "restore"]

MANIFEST = "manifest.json"
STATE_ARCHIVE = "state.tar.gz"
VERSION = 1
#: what SQLite keeps beside a database file
JOURNALS = ("-wal", "-shm", "-journal")
#: the managed services' databases: name, options' section, default state folder, file
SERVICES = (
    ("workflows", "WorkflowService", "workflows", "workflows.sqlite"),
    ("catalogue", "CatalogueService", "catalogue", "catalogue.sqlite"),
    ("gateway", "GatewayService", "dask-gateway", "gateway.sqlite"),
)


class BackupError(RuntimeError):
    """A backup or restore that cannot go on (the message says why)."""


def _option(c: Config, section: str, name: str, default: str = "") -> str:
    values = c[section] if section in c else {}
    return str(values[name]) if values.get(name) else default


def _absolute(url: str, state: Path) -> str:
    """``url`` with a relative SQLite path made relative to the hub's working folder."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return url
    path = Path(str(parsed.database))
    return f"sqlite:///{path if path.is_absolute() else state / path}"


def database_urls(c: Config, state: Path) -> dict[str, str]:
    """Every database of the hub configured by ``c`` (its working folder: ``state``), by name.

    The defaults are the options' own (a SQLite file in ``state`` or a service's state folder;
    the ledger and the events in the hub's PostgreSQL database when it has one).
    """
    from continuum_spawners.ledger import ledger_url

    from .workshops.store import events_url

    hub = _absolute(_option(c, "JupyterHub", "db_url", "sqlite:///jupyterhub.sqlite"), state)
    identities = _option(c, "FederatedAuthenticator", "identity_db_path")
    leases = _option(c, "AccountMapper", "lease_db", "continuum_account_leases.sqlite")
    urls = {
        "hub": hub,
        "identities": _option(c, "FederatedAuthenticator", "identity_db_url")
        or f"sqlite:///{identities or 'continuum-identities.sqlite'}",
        "leases": _option(c, "AccountMapper", "lease_db_url") or f"sqlite:///{leases}",
        "usage": _option(c, "UsageCollector", "db_url") or ledger_url(hub),
        "events": _option(c, "EventManager", "db_url") or events_url(hub),
    }
    # the managed services: their own option, else a file in their state folder
    for name, section, folder, file in SERVICES:
        own = _option(c, section, "state_dir")
        default = f"sqlite:///{Path(own) if own else state / folder}/{file}"
        urls[name] = _option(c, section, "db_url") or default
    builtin = _builtin_url(c)
    if builtin:
        urls["catalogue-builtin"] = builtin
    return {name: _absolute(url, state) for name, url in urls.items()}


def _builtin_url(c: Config) -> str:
    """The built-in catalogue sources' ``db_url`` as the hub passes it to the service (its
    ``extra_service_config``) or in a ``BuiltinSource`` section; empty when unset."""
    service = c.CatalogueService if "CatalogueService" in c else {}
    extra = service.get("extra_service_config") or {}
    return str((extra.get("BuiltinSource") or {}).get("db_url") or "") or _option(
        c, "BuiltinSource", "db_url"
    )


def _kind(url: str) -> str:
    """``sqlite`` or ``postgresql``: how a database is copied."""
    return "sqlite" if make_url(url).get_backend_name() == "sqlite" else "postgresql"


def _private_folder(path: Path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.chmod(0o700)


def _database_files(urls: Iterable[str]) -> set[Path]:
    """The SQLite files of ``urls`` with their journals: left out of the state archive."""
    files = set()
    for url in urls:
        path = sqlite_path(url)
        if path is not None:
            files |= {path, *(Path(f"{path}{suffix}") for suffix in JOURNALS)}
    return files


def _journal(path: Path) -> bool:
    """Whether ``path`` is a SQLite database's log or shared memory (its copy holds them)."""
    for suffix in JOURNALS:
        if path.name.endswith(suffix):
            return dumps.is_sqlite_file(path.with_name(path.name.removesuffix(suffix)))
    return False


def _archive_state(state: Path, archive: Path, skip: set[Path]) -> int:
    """``state`` into ``archive`` (0600); its other SQLite files through the backup API;
    sockets, pipes and devices left out.  The number of files archived."""
    count = 0
    create_private(archive)
    with tarfile.open(archive, "w:gz") as tar, tempfile.TemporaryDirectory() as scratch:
        for path in sorted(state.rglob("*")):
            if path in skip or _journal(path):
                continue
            info = tar.gettarinfo(str(path), arcname=str(path.relative_to(state)))
            if info is None or not (info.isfile() or info.isdir() or info.issym()):
                continue
            if info.isfile() and dumps.is_sqlite_file(path):
                copy = Path(scratch) / f"{count}.sqlite"
                dumps.dump_sqlite(path, copy)
                info.size = copy.stat().st_size
                with open(copy, "rb") as handle:
                    tar.addfile(info, handle)
            elif info.isfile():
                with open(path, "rb") as handle:
                    tar.addfile(info, handle)
            else:
                tar.addfile(info)
            count += 1
    return count


def _safe_members(tar: tarfile.TarFile, state: Path) -> list[tarfile.TarInfo]:
    """The archive's members, refused if any would land outside ``state`` or is not a plain
    file, folder or link inside it (what tarfile's ``"tar"`` filter checks)."""
    members = tar.getmembers()
    for member in members:
        target = (state / member.name).resolve()
        inside = target.is_relative_to(state.resolve()) and not Path(member.name).is_absolute()
        if member.issym():
            link = (target.parent / member.linkname).resolve()
            inside = inside and link.is_relative_to(state.resolve())
        if not inside or not (member.isfile() or member.isdir() or member.issym()):
            raise BackupError(f"{STATE_ARCHIVE}: refusing member {member.name!r}")
    return members


def backup(folder: Path, urls: dict[str, str], state: Path, bin_dir: str | None = None) -> dict:
    """Copy every database of ``urls`` and the state folder into the new ``folder``; the
    manifest written there."""
    folder, state = folder.absolute(), state.absolute()
    if not state.is_dir():
        raise BackupError(f"no state folder {state} (--state-dir: the hub's working folder)")
    if folder.is_relative_to(state):
        raise BackupError(f"{folder} is inside the state folder {state}: choose another place")
    if folder.exists() and any(folder.iterdir()):
        raise BackupError(f"{folder} is not empty: back up into a new folder")
    _private_folder(folder / "databases")
    folder.chmod(0o700)
    entries: dict[str, dict] = {}
    done: dict[str, str] = {}  # database → its file: a shared database is dumped once
    for name, url in urls.items():
        key = dumps.database_key(url)
        path = sqlite_path(url)
        entry = {"url": make_url(url).render_as_string(hide_password=True)}
        if key in done:
            entries[name] = {**entry, "file": done[key], "kind": _kind(url)}
            continue
        if path is not None:
            if not path.exists():
                continue  # that part never ran here: nothing to keep
            file = f"databases/{name}.sqlite"
            dumps.dump_sqlite(path, folder / file)
        else:
            file = f"databases/{name}.dump"
            dumps.dump_postgres(url, folder / file, bin_dir)
        done[key] = file
        entries[name] = {**entry, "file": file, "kind": _kind(url)}
    files = _archive_state(state, folder / STATE_ARCHIVE, _database_files(urls.values()))
    manifest = {
        "version": VERSION,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "state_dir": str(state),
        "state_owner": [state.stat().st_uid, state.stat().st_gid],
        "state_files": files,
        "databases": entries,
    }
    create_private(folder / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def _refusals(manifest: dict, urls: dict[str, str], state: Path, bin_dir: str | None) -> list:
    found = []
    if state.exists() and any(state.iterdir()):
        found.append(f"the state folder {state} is not empty")
    checked = set()
    for name in manifest["databases"]:
        url = urls.get(name)
        if url is None or dumps.database_key(url) in checked:
            continue
        checked.add(dumps.database_key(url))
        path = sqlite_path(url)
        if path is not None and path.exists() and path.stat().st_size:
            found.append(f"database {name} ({path}) exists")
        elif path is None and not dumps.is_empty(url, bin_dir):
            found.append(f"database {name} ({make_url(url).database}) has tables")
    return found


def _own(path: Path, manifest: dict) -> None:
    """Give ``path`` the state folder's owner of the backup when restoring as root (the hub's
    account must own its files; the archive's members keep their own owners)."""
    if os.geteuid() == 0 and manifest.get("state_owner"):
        uid, gid = manifest["state_owner"]
        os.chown(path, uid, gid)


def restore(
    folder: Path, urls: dict[str, str], state: Path, force: bool, bin_dir: str | None = None
) -> dict:
    """Put the backup in ``folder`` back: the state folder, then every database where ``urls``
    (the current configuration) puts it.  The hub and its services must be stopped."""
    folder, state = folder.absolute(), state.absolute()
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise BackupError(f"{folder} holds no backup ({MANIFEST}: {exc})") from None
    if manifest.get("version") != VERSION:
        raise BackupError(f"backup format {manifest.get('version')!r} is not {VERSION}")
    unknown = sorted(set(manifest["databases"]) - set(urls))
    if unknown:
        raise BackupError(f"no database configured for {', '.join(unknown)}: use --database")
    refusals = [] if force else _refusals(manifest, urls, state, bin_dir)
    if refusals:
        raise BackupError("; ".join(refusals) + ": nothing restored (--force overwrites)")
    _private_folder(state)
    _own(state, manifest)
    with tarfile.open(folder / STATE_ARCHIVE, "r:gz") as tar:
        # modes and (as root) owners kept; only checked members (Debian 12's Python 3.11.2
        # predates tarfile's extraction filters)
        tar.extractall(state, members=_safe_members(tar, state))  # noqa: S202
    restored: set[str] = set()
    for name, entry in manifest["databases"].items():
        url = urls[name]
        key = dumps.database_key(url)
        if key in restored:
            continue
        restored.add(key)
        path = sqlite_path(url)
        if (path is None) != (entry["kind"] == "postgresql"):
            raise BackupError(f"database {name}: the backup is {entry['kind']}, the target not")
        if path is not None:
            dumps.restore_sqlite(folder / entry["file"], path)
            _own(path, manifest)
        else:
            dumps.restore_postgres(folder / entry["file"], url, bin_dir)
    return manifest


def _parser(command: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"continuum-hub {command}",
        description=__doc__.split("\n\n")[0].replace("\n", " "),
    )
    parser.add_argument("folder", type=Path, help="the backup folder")
    parser.add_argument(
        "--config",
        default=os.environ.get(CONFIG_ENV, ""),
        help=f"the deployment's JSON layer (default: ${CONFIG_ENV})",
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        default=Path.cwd(),
        help="the hub's working directory (default: the current folder)",
    )
    parser.add_argument(
        "--database",
        action="append",
        default=[],
        metavar="NAME=URL",
        help="add or replace a database (SQLAlchemy URL); repeatable",
    )
    parser.add_argument("--pg-bin", default=None, help="folder of pg_dump, pg_restore, psql")
    if command == "restore":
        parser.add_argument(
            "--force", action="store_true", help="overwrite a non-empty state or database"
        )
    return parser


def main(command: str, argv: list[str]) -> int:
    """``continuum-hub backup|restore`` with ``argv``; the exit status."""
    args = _parser(command).parse_args(argv)
    c = Config()
    load_json_layer(c, {CONFIG_ENV: args.config} if args.config else {})
    state = args.state_dir.absolute()
    urls = database_urls(c, state)
    for item in args.database:
        name, _, url = item.partition("=")
        if not name or not url:
            print(f"--database {item!r}: expected NAME=URL", file=sys.stderr)
            return 2
        urls[name] = _absolute(url, state)
    try:
        if command == "backup":
            manifest = backup(args.folder, urls, state, args.pg_bin)
        else:
            manifest = restore(args.folder, urls, state, args.force, args.pg_bin)
    except (BackupError, dumps.DumpError, OSError, tarfile.TarError) as exc:
        print(f"continuum-hub {command}: {exc}", file=sys.stderr)
        return 1
    names = ", ".join(sorted(manifest["databases"])) or "none"
    done = "backed up" if command == "backup" else "restored"
    print(f"{done}: databases {names}; state folder {state} ({manifest['state_files']} entries)")
    return 0
