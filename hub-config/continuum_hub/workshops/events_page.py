"""The instructors' events page ``/hub/continuum/events``: their events, and a form to make one.

A JupyterHub page (template ``continuum-events.html``, extending ``page.html``) for instructors
and hub admins (anyone else: 403 with the reason).  It lists the caller's events (admins: all)
with their join link and a link to each event's instructor view, and offers a form whose script
posts to the events' REST API (``POST /hub/api/continuum/events``, the page's XSRF token): the
API's refusal is shown beside the form, the join link after creation and, for events with guest
seats, that many guest codes (``POST …/{id}/guest-codes``), shown this once.  A *Push material
update* button per event with material calls ``POST …/{id}/material/push``.

Nothing is checked here that the API does not check again: the page only offers the sites and
partitions the instructor's groups allow (admins: all), the VOs they instruct and the
partitions' limits as the inputs' bounds, so that most refusals never happen.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jupyterhub import handlers as hub_handlers
from jupyterhub.handlers import BaseHandler
from jupyterhub.utils import url_path_join
from tornado import web
from traitlets.config import Config

from continuum_spawners.sites import SiteRegistry, format_walltime

from ..sharing.page import TEMPLATES as SHARING_TEMPLATES
from ..sharing.page import add_template_path, install_routes
from .manager import EventManager
from .model import MAX_PROFILES, Event

PAGE_ROUTE = r"/continuum/events"
TEMPLATE = "continuum-events.html"
TEMPLATES = Path(__file__).parent / "templates"
#: the refusal a signed-in user who may not create events reads
NOT_INSTRUCTOR = (
    "Only instructors and hub administrators may create events. An instructor holds the "
    "entitlement …:group:<vo>:role={role} of their VO; ask your VO's managers for it."
)


def targets(registry: SiteRegistry, groups: Iterable[str], admin: bool) -> list[dict[str, Any]]:
    """The site/partition choices of the form: those ``groups`` may use (admins: all), each
    with its limits, environments and whether the hub makes the reservation there."""
    sites = list(registry) if admin else registry.for_groups(groups)
    choices = []
    for site in sites:
        for part in site.partitions:
            choices.append(
                {
                    "value": f"{site.name}/{part.name}",
                    "label": f"{site.label} · {part.label}",
                    "site": site.name,
                    "partition": part.name,
                    "max_cores": part.max_cores,
                    "max_memory_gb": part.max_memory_gb,
                    "max_gpus": part.max_gpus,
                    "max_walltime": format_walltime(part.max_walltime_minutes),
                    "environments": [
                        {"name": env.name, "label": env.label} for env in site.environments
                    ],
                    "reservations": site.reservations,
                }
            )
    return choices


def event_row(ev: Event, base_url: str, now: datetime | None = None) -> dict[str, Any]:
    """One of the caller's events as the page lists it (links below the hub's ``base_url``;
    ``now``: the clock, the current time unless given)."""
    return {
        "id": ev.id,
        "title": ev.title,
        "start": ev.start.strftime("%Y-%m-%d %H:%M"),
        "end": ev.end.strftime("%Y-%m-%d %H:%M"),
        "target": f"{ev.site}/{ev.partition}",
        "seats": ev.seats,
        "taken": len(ev.participants),
        "guest_seats": ev.guest_seats,
        "owner": ev.owner,
        "reservation": f"{ev.reservation} ({ev.reservation_state})",
        "has_material": ev.material is not None,
        "ended": ev.end <= (now or datetime.now(UTC)),
        "join_url": url_path_join(base_url, "continuum/join", ev.join_code),
        "instructor_url": url_path_join(base_url, "continuum/events", ev.id, "instructor"),
    }


def page_model(
    manager: EventManager, user: Any, base_url: str, now: datetime | None = None
) -> dict[str, Any]:
    """What the page shows to ``user`` (an instructor or a hub admin) at ``now`` (default:
    the current time)."""
    groups = {g.name for g in user.groups}
    events = manager.store.list(None if user.admin else user.name)
    return {
        "events": [event_row(ev, base_url, now) for ev in events],
        "targets": targets(manager.registry(), groups, bool(user.admin)),
        # admins may open events to any VO: a free text field instead of check boxes
        "vos": None if user.admin else sorted(manager.instructs(groups)),
        "material_roots": list(manager.material_roots),
        "max_seats": manager.max_seats,
        "max_days": manager.max_days,
        "max_profiles": MAX_PROFILES,
    }


class EventsPageHandler(BaseHandler):
    """``GET /hub/continuum/events``: the caller's events and the form (see the module)."""

    @web.authenticated
    async def get(self) -> None:
        user = self.current_user
        if getattr(user, "kind", "user") != "user":
            raise web.HTTPError(403, "Events belong to hub users, not to services.")
        manager = EventManager.instance(config=self.settings["config"])
        manager.start()
        if not manager.may_create(user):
            self.log.warning("Events page refused to %s: not an instructor", user.name)
            raise web.HTTPError(
                403, NOT_INSTRUCTOR.format(role=manager.instructor_role), reason="Not an instructor"
            )
        base = self.hub.base_url
        model = page_model(manager, user, base)
        self.set_header("Cache-Control", "no-store")
        html = await self.render_template(
            TEMPLATE,
            api_url=url_path_join(base, "api/continuum/events"),
            join_base=url_path_join(base, "continuum/join"),
            instructor_base=url_path_join(base, "continuum/events"),
            **model,
        )
        self.finish(html)


def events_link(user: Any) -> str:
    """``JupyterHub.template_vars["continuum_events_link"]``: the events page's path below the
    hub's base URL for instructors and admins (the navigation bar's *Events*), else ``""``."""
    if user is None or getattr(user, "kind", "user") != "user":
        return ""
    if not EventManager.initialized():  # made when the hub's loop starts (add_workshops)
        return ""
    return PAGE_ROUTE.lstrip("/") if EventManager.instance().may_create(user) else ""


def add_events_page(c: Config) -> None:
    """Serve the events page: its route (idempotent), its template folders, and the *Events*
    link in the navigation bar (``page.html`` here extends JupyterHub's; a deployment's own
    ``page.html`` earlier in ``JupyterHub.template_paths`` wins and shows no link)."""
    install_routes(hub_handlers.default_handlers, [(PAGE_ROUTE, EventsPageHandler)])
    add_template_path(c, TEMPLATES)
    add_template_path(c, SHARING_TEMPLATES)  # continuum-api-call.html
    c.JupyterHub.template_vars.update({"continuum_events_link": events_link})
