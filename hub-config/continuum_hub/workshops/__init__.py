"""Workshops: events with reserved Slurm capacity (issue 13, items 1 and 2 so far).

:mod:`.model` (an event and its checks), :mod:`.store` (its tables), :mod:`.reservations` (its
Slurm reservation through the site-access path), :mod:`.manager` (instructors, limits, the
periodic task, the spawner's hook), :mod:`.api` (REST under ``/hub/api/continuum/events``) and
:mod:`.events_page` (the instructors' page ``/hub/continuum/events`` and its navigation link).
:func:`add_workshops` puts them into a hub's configuration.

Joining through a link, guest seats, material pulling, the instructor's view and the waiting
room (items 3–6) build on these: the join code and ``access`` are stored already.

Material (item 4): :mod:`.material_api` (what servers pull, the instructor's push) and
:mod:`.material_pull` (the pull in the participant's job); the waiting room of a full event
(item 6): :mod:`.waiting`.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

# every server job imports this package (material_pull runs before the server): asyncio and
# traitlets cost it about a second on a busy node, so they load only where they are used
if TYPE_CHECKING:
    from traitlets.config import Config

__all__ = ["add_workshops"]


def add_workshops(c: Config) -> None:
    """Install the events' REST routes, let participants' servers start in their event's
    reservation (unless the deployment set ``SiteSpawner.reservation_hook`` itself) and start
    the periodic reservation task once the hub's event loop runs."""
    import asyncio

    from .api import install_event_handlers
    from .manager import EventManager, reservation_hook

    install_event_handlers()
    from .instructor_api import add_instructor_view

    add_instructor_view(c)  # /hub/continuum/events/<id>/instructor and its REST calls
    from .events_page import add_events_page

    add_events_page(c)  # /hub/continuum/events: an instructor's events and the form
    if "reservation_hook" not in c.SiteSpawner:
        c.SiteSpawner.reservation_hook = reservation_hook
    from .ending import add_joining
    from .profiles import event_request

    add_joining(c)  # guest codes' API, join pages' templates, guests' pool accounts
    from .material_api import install_material_handlers
    from .waiting import install_waiting_page

    install_material_handlers()  # what participants' servers pull, the instructor's push
    install_waiting_page()
    if "event_options_hook" not in c.SiteSpawner:
        c.SiteSpawner.event_options_hook = event_request
    with contextlib.suppress(RuntimeError):  # no running loop: e.g. --generate-config
        loop = asyncio.get_running_loop()
        # the hub loads its configuration inside its running loop; start after that
        loop.call_soon(lambda: EventManager.instance(config=c).start())
