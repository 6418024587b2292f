"""What a participant of a running event may start: the event's profiles, on its site.

:func:`event_request` is ``SiteSpawner.event_options_hook``: before the spawner checks a
server's options against the user's own groups, it asks here.  Options equal to one of the
profiles of a running event the user takes part in are checked as a spawn of someone the
site's and partition's access lets in (a guest, or a federated user of an event open to anyone
federated, has no VO of the site); the participant's entitlements stay as they were for
anything else.  Guests may start nothing but their event's profiles.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from continuum_spawners.options import JobRequest, OptionsError, validate_options
from continuum_spawners.sites import SiteRegistry

from .join import is_event_guest
from .manager import EventManager
from .model import Event

#: the options a profile fixes (``user_options`` of :class:`~.model.Profile`)
PROFILE_KEYS = ("site", "partition", "cores", "memory_gb", "gpus", "walltime", "environment")


def _same(options: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    """Whether ``options`` asks for exactly ``wanted`` (a missing option: the profile's).

    Only profile fields and ``site``/``partition`` may be given: anything else (data
    transfers, another server shape) is not the event's profile."""
    if set(options) - set(PROFILE_KEYS):
        return False
    return all(str(options.get(key, wanted[key])) == str(wanted[key]) for key in PROFILE_KEYS)


def matching_profile(events: list[Event], options: Mapping[str, Any]) -> dict[str, Any] | None:
    """The ``user_options`` of the first profile of ``events`` that ``options`` asks for."""
    for ev in events:
        for profile in ev.profiles:
            wanted = profile.user_options(ev.site, ev.partition)
            if _same(options, wanted):
                return wanted
    return None


def event_request(
    spawner: Any, options: Mapping[str, Any], registry: SiteRegistry
) -> JobRequest | None:
    """``SiteSpawner.event_options_hook``: the request of an event profile, or ``None`` (the
    spawner checks ``options`` as usual).

    Raises
    ------
    OptionsError
        403 for a guest asking for anything else, or outside their event's window.
    """
    name = spawner.user.name
    guest = is_event_guest(name)
    manager = EventManager.instance(config=spawner.config)
    events = manager.store.events_of(name, datetime.now(UTC))
    wanted = matching_profile(events, options)
    if wanted is None:
        if guest:
            raise OptionsError("as a guest you may start only your event's profiles", 403)
        return None
    site = registry.get(wanted["site"])
    if site is None:
        raise OptionsError(f"the event's site {wanted['site']} is gone from the registry", 403)
    groups = set(site.groups or ())
    for part in site.partitions:
        if part.name == wanted["partition"]:
            groups |= set(part.groups or ())
    unavailable = spawner.accounts.unavailable(name, [site])
    return validate_options(wanted, registry, groups, unavailable)


__all__ = ["event_request", "matching_profile"]
