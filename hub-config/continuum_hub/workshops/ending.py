"""The end of workshop events: guests deleted, their leases released, their homes archived or
emptied, the events' hub groups removed.

:func:`end_of_events` looks at every event with guests or a group (``workshop-<id>``) that has
ended or was deleted; :func:`start_end_task` runs it every ``JoinSettings.end_interval``
seconds in the hub.  What happens to a home is ``JoinSettings.guest_homes``.
"""

from __future__ import annotations

import asyncio
import contextlib
import pwd
import shutil
import tarfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jupyterhub import orm
from jupyterhub.utils import maybe_future
from sqlalchemy import select
from traitlets.config import Config

from continuum_spawners.account_map import AccountMapper
from continuum_spawners.accounts import shared_resolver

from .guests import GuestStore, WorkshopAccountMapper, guests
from .join import GROUP_PREFIX, TEMPLATES, JoinSettings, guest_store, install_guest_code_api
from .manager import EventManager


@dataclass(frozen=True)
class GuestEnd:
    """What :func:`end_guests` did for one guest."""

    username: str
    account: str | None
    home: str


def clear_home(account: str, archive_to: Path | None) -> str:
    """Archive (a ``.tar.gz`` under ``archive_to``) and empty ``account``'s home; the home itself
    stays, for the pool account's next holder.  Returns ``archived``, ``removed`` or ``none``."""
    try:
        home = Path(pwd.getpwnam(account).pw_dir)
    except KeyError:
        return "none"
    if not home.is_dir() or home == Path("/"):
        return "none"
    done = "removed"
    if archive_to is not None:
        archive_to.mkdir(mode=0o700, parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        target = archive_to / f"{account}-{stamp}.tar.gz"
        with tarfile.open(target, "w:gz") as tar:
            tar.add(home, arcname=account)
        target.chmod(0o600)
        done = "archived"
    for entry in home.iterdir():
        # never follow links out of the home
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    return done


async def end_guests(
    event_id: str,
    store: GuestStore,
    mapper: AccountMapper,
    delete_user: Callable[[str], Awaitable[None]],
    archive_to: Path | None,
    remove_homes: bool,
) -> list[GuestEnd]:
    """At an event's end: for each guest delete the hub user (servers stopped first by
    ``delete_user``), release the pool lease and archive or empty the home (``remove_homes``
    false: keep it as it is); then forget the event's guests and codes."""
    ended: list[GuestEnd] = []
    with store.engine.connect() as db:
        rows = list(db.execute(select(guests).where(guests.c.event_id == event_id)))
    for row in rows:
        await delete_user(row.username)
        account = mapper.release(row.site, row.username)
        home = "kept"
        if account is not None and (remove_homes or archive_to is not None):
            home = clear_home(account, archive_to / event_id if archive_to else None)
        store.forget(event_id, row.username)
        ended.append(GuestEnd(row.username, account, home))
    store.forget(event_id)
    return ended


def archive_dir(settings: JoinSettings) -> Path | None:
    """Where guest homes are archived (``None``: not archived)."""
    if settings.guest_homes != "archive":
        return None
    return Path(settings.guest_archive_dir).absolute()


def guest_events(store: GuestStore) -> set[str]:
    """Events that have guests."""
    with store.engine.connect() as db:
        return {row.event_id for row in db.execute(select(guests.c.event_id).distinct())}


async def delete_hub_user(app: Any, name: str) -> None:
    """Stop ``name``'s servers and delete the hub user (as ``DELETE /hub/api/users`` does)."""
    try:
        user = app.users[name]
    except KeyError:
        return
    for server_name, spawner in list(user.spawners.items()):
        if spawner.active:
            if spawner.ready:
                await app.proxy.delete_user(user, server_name)
            await user.stop(server_name)
    await maybe_future(app.authenticator.delete_user(user))
    await user.delete_spawners()
    app.users.delete(user)


async def end_of_events(config: Any, app: Any) -> list[str]:
    """Guests and groups of ended (or deleted) events: gone.  Returns the guests deleted."""
    manager = EventManager.instance(config=config)
    store = guest_store(manager)
    settings = JoinSettings.instance(config=config)
    archive = archive_dir(settings)
    mapper = shared_resolver(WorkshopAccountMapper, config)
    now = datetime.now(UTC)
    live = {ev.id for ev in manager.store.current(now)}
    deleted: list[str] = []
    for event_id in guest_events(store) - live:
        ended = await end_guests(
            event_id,
            store,
            mapper,  # type: ignore[arg-type]
            lambda name: delete_hub_user(app, name),
            archive,
            settings.guest_homes != "keep",
        )
        deleted += [g.username for g in ended]
        for g in ended:
            manager.log.info("Guest %s of event %s deleted (home %s)", g.username, event_id, g.home)
    for group in app.db.query(orm.Group).filter(orm.Group.name.startswith(GROUP_PREFIX)):
        if group.name.removeprefix(GROUP_PREFIX) not in live:
            app.db.delete(group)
    app.db.commit()
    return deleted


async def _end_loop(config: Any, interval: float) -> None:
    from jupyterhub.app import JupyterHub

    while True:
        try:
            await end_of_events(config, JupyterHub.instance())
        except Exception:
            EventManager.instance(config=config).log.exception("Ending the events' guests")
        await asyncio.sleep(interval)


_TASKS: list[asyncio.Task[None]] = []


def start_end_task(config: Any) -> None:
    """Run :func:`end_of_events` every ``JoinSettings.end_interval`` seconds (once)."""
    if not _TASKS or _TASKS[-1].done():
        interval = JoinSettings.instance(config=config).end_interval
        _TASKS.append(asyncio.get_running_loop().create_task(_end_loop(config, interval)))


def add_joining(c: Config) -> None:
    """Joining and guest seats in a hub's configuration: the guest codes' REST route, the join
    pages' template folder, guests' pool accounts (``SiteSpawner.account_resolver_class``, unless
    the deployment set it) and the end-of-event task once the hub's event loop runs.  The join
    pages themselves come from the authenticator's ``get_handlers``."""
    from ..sharing.page import add_template_path

    install_guest_code_api()
    add_template_path(c, TEMPLATES)
    if "account_resolver_class" not in c.SiteSpawner:
        c.SiteSpawner.account_resolver_class = WorkshopAccountMapper
    with contextlib.suppress(RuntimeError):  # no running loop: e.g. --generate-config
        loop = asyncio.get_running_loop()
        loop.call_soon(lambda: start_end_task(c))


__all__ = ["add_joining", "clear_home", "end_guests", "end_of_events", "start_end_task"]
