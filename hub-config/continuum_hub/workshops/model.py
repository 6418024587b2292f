"""A workshop event: what an instructor asks for, checked before anything is stored.

An event is a time window on one site and partition with a number of seats, one fixed resource
profile or a small menu of them, optional material (a git repository and ref, or a folder on
the hub host), who may join (VOs, anyone the hub's providers authenticate, guest seats) and a
random join code.  :func:`validate_event` turns an instructor's JSON into an :class:`Event` or
raises :class:`EventError` (HTTP status and a message for people); every profile is checked with
the spawner's own :func:`~continuum_spawners.options.validate_options` against the partition's
limits, so an event can never promise what a participant's spawn would refuse.

Material is checked by :mod:`.material`.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from continuum_spawners.options import OptionsError, validate_options
from continuum_spawners.schedulers.base import RESERVATION_NAME
from continuum_spawners.sites import Site, SiteRegistry, format_walltime

from .material import check_material

#: what an event's JSON may hold (``reservation``: one the site made, where the hub may not)
FIELDS = frozenset(
    "title start end seats site partition profiles material access reservation".split()
)
#: what a participant holding the join code sees
PUBLIC_FIELDS = tuple("id title start end seats site partition profiles material owner".split())
PROFILE_FIELDS = ("name", "cores", "memory_gb", "gpus", "walltime", "environment")
ACCESS_FIELDS = frozenset({"vos", "federated", "guest_seats"})
PROFILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,39}$")
MAX_PROFILES = 5


class EventError(OptionsError):
    """An event was refused: ``status`` (400 bad input, 403 not allowed, 404, 409) and why."""


@dataclass(frozen=True)
class Profile:
    """One resource profile participants start with (validated against the partition)."""

    name: str
    cores: int
    memory_gb: int
    gpus: int
    walltime_minutes: int
    environment: str

    def user_options(self, site: str, partition: str) -> dict[str, Any]:
        """The spawner's ``user_options`` for this profile."""
        return {
            "site": site,
            "partition": partition,
            "cores": self.cores,
            "memory_gb": self.memory_gb,
            "gpus": self.gpus,
            "walltime": format_walltime(self.walltime_minutes),
            "environment": self.environment,
        }


@dataclass(frozen=True)
class Event:
    """A validated event; ``reservation`` names its Slurm reservation once it has one."""

    id: str
    owner: str
    title: str
    start: datetime
    end: datetime
    seats: int
    site: str
    partition: str
    profiles: tuple[Profile, ...]
    material: dict[str, str] | None
    vos: tuple[str, ...]
    federated: bool
    guest_seats: int
    join_code: str
    #: the reservation named by the instructor (the site made it), else ""
    external_reservation: str = ""
    #: none, created, external, failed, deleted
    reservation_state: str = "none"
    reservation_error: str = ""
    reservation_users: tuple[str, ...] = ()
    participants: tuple[str, ...] = ()
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def reservation(self) -> str:
        """The name of the event's Slurm reservation (the site's own, or the hub's)."""
        return self.external_reservation or f"continuum-{self.id}"

    @property
    def cores(self) -> int:
        """Cores the reservation holds: every seat with the largest profile."""
        return self.seats * max(p.cores for p in self.profiles)

    def running(self, now: datetime) -> bool:
        return self.start <= now < self.end

    def as_json(self) -> dict[str, Any]:
        """The instructor's view: everything, the join code included."""
        data = asdict(self)
        for key in ("start", "end", "created_at"):
            data[key] = data[key].isoformat()
        data["access"] = {
            "vos": list(self.vos),
            "federated": self.federated,
            "guest_seats": self.guest_seats,
        }
        for key in ("vos", "federated", "guest_seats", "external_reservation"):
            del data[key]
        data["reservation"] = {
            "name": self.reservation,
            "state": self.reservation_state,
            "error": self.reservation_error,
            "users": list(self.reservation_users),
            "cores": self.cores,
            "external": bool(self.external_reservation),
        }
        data["profiles"] = [
            {**asdict(p), "walltime": format_walltime(p.walltime_minutes)} for p in self.profiles
        ]
        data["participants"] = list(self.participants)
        return data

    def public_json(self) -> dict[str, Any]:
        """What a participant holding the join code sees (no code, no participants)."""
        full = self.as_json()
        return {key: full[key] for key in PUBLIC_FIELDS}


def new_event_id() -> str:
    return secrets.token_hex(6)


def new_join_code() -> str:
    """128 random bits, URL-safe: not guessable, however many events exist."""
    return secrets.token_urlsafe(16)


def _timestamp(name: str, value: Any) -> datetime:
    if not isinstance(value, str) or len(value) > 40:
        raise EventError(f"{name} must be an ISO 8601 date and time, e.g. 2026-12-05T09:00Z")
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise EventError(f"{name} {value!r} is not an ISO 8601 date and time") from None
    if when.tzinfo is None:
        raise EventError(f"{name} needs a time zone (…Z or +01:00): {value!r}")
    return when.astimezone(UTC)


def _integer(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise EventError(f"{name} must be a whole number")
    if not low <= value <= high:
        raise EventError(f"{name} must be between {low} and {high}, not {value}")
    return value


def check_window(
    start: datetime, end: datetime, now: datetime, max_days: float, grace: timedelta
) -> None:
    """Refuse a window that ended, starts in the past (beyond ``grace``) or is too long."""
    if end <= start:
        raise EventError("the event must end after it starts")
    if end <= now or start < now - grace:
        raise EventError("the event's window is in the past")
    if end - start > timedelta(days=max_days):
        raise EventError(f"an event may last at most {max_days:g} days")


def check_profiles(
    body: Mapping[str, Any], registry: SiteRegistry, groups: Iterable[str]
) -> tuple[Site, str, tuple[Profile, ...]]:
    """The event's site, partition and profiles, each checked like a spawn of ``groups``."""
    raw = body.get("profiles")
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_PROFILES:
        raise EventError(f"profiles must be a list of 1 to {MAX_PROFILES} resource profiles")
    profiles: list[Profile] = []
    site: Site | None = None
    for index, entry in enumerate(raw):
        if not isinstance(entry, Mapping) or not set(entry) <= set(PROFILE_FIELDS):
            raise EventError(f"profile {index + 1}: allowed fields are {', '.join(PROFILE_FIELDS)}")
        name = entry.get("name", f"profile {index + 1}")
        if not isinstance(name, str) or not PROFILE_NAME.match(name):
            raise EventError(f"profile {index + 1}: name must be up to 40 letters and digits")
        options = {k: v for k, v in entry.items() if k != "name"}
        options.update(site=body.get("site"), partition=body.get("partition"))
        if options["site"] is None or options["partition"] is None:
            raise EventError("an event needs a site and a partition")
        try:
            request = validate_options(options, registry, groups)
        except OptionsError as exc:
            raise EventError(f"profile {name!r}: {exc}", exc.status) from None
        site = request.site_entry
        profiles.append(
            Profile(
                name,
                request.cores,
                request.memory_gb,
                request.gpus,
                request.walltime_minutes,
                request.environment,
            )
        )
    if len({p.name for p in profiles}) != len(profiles):
        raise EventError("profile names must differ")
    assert site is not None
    return site, str(body["partition"]), tuple(profiles)


@dataclass(frozen=True)
class Limits:
    """The bounds an event is checked against (the manager's traitlets options)."""

    max_days: float = 14.0
    max_seats: int = 200
    folder_roots: tuple[str, ...] = ()
    #: how far in the past a start may be (a request made at "now" arrives a little later)
    grace: timedelta = timedelta(minutes=5)


def validate_event(
    body: Any,
    *,
    owner: str,
    registry: SiteRegistry,
    groups: Iterable[str],
    limits: Limits,
    now: datetime | None = None,
    instructs: Iterable[str] | None = None,
) -> Event:
    """Build a new :class:`Event` from an instructor's JSON, or raise :class:`EventError`.

    Parameters
    ----------
    groups
        The groups the profiles are checked for (the instructor's; for hub admins every group
        of the registry).
    instructs
        The VOs ``owner`` may open an event to (``None``: any, for hub admins).
    """
    if not isinstance(body, Mapping):
        raise EventError("an event must be a JSON object")
    unknown = sorted(str(key)[:40] for key in body if key not in FIELDS)
    if unknown:
        raise EventError(
            f"unknown field(s): {', '.join(unknown)}; allowed: {', '.join(sorted(FIELDS))}"
        )
    now = now or datetime.now(UTC)
    title = body.get("title")
    if not isinstance(title, str) or not 1 <= len(title.strip()) <= 200 or not title.isprintable():
        raise EventError("title must be 1 to 200 printable characters")
    start = _timestamp("start", body.get("start"))
    end = _timestamp("end", body.get("end"))
    check_window(start, end, now, limits.max_days, limits.grace)
    seats = _integer("seats", body.get("seats"), 1, limits.max_seats)
    site, partition, profiles = check_profiles(body, registry, groups)
    longest = max(p.walltime_minutes for p in profiles)
    if timedelta(minutes=longest) > end - start:
        # Slurm would not start a job in the reservation that outlasts it
        raise EventError(f"a profile's walltime ({format_walltime(longest)}) outlasts the event")
    access = body.get("access", {})
    if not isinstance(access, Mapping) or not set(access) <= ACCESS_FIELDS:
        raise EventError(f"access may hold {', '.join(sorted(ACCESS_FIELDS))}")
    vos = access.get("vos", [])
    if not isinstance(vos, list) or not all(isinstance(v, str) and v for v in vos):
        raise EventError("access vos must be a list of VO names")
    allowed = None if instructs is None else set(instructs)
    if allowed is not None and not set(vos) <= allowed:
        refused = ", ".join(sorted(set(vos) - allowed))
        raise EventError(f"you are not an instructor of {refused}", 403)
    federated = access.get("federated", False)
    if not isinstance(federated, bool):
        raise EventError("access federated must be true or false")
    guests = _integer("access guest_seats", access.get("guest_seats", 0), 0, seats)
    reservation = body.get("reservation", "")
    if reservation and (
        not isinstance(reservation, str) or not RESERVATION_NAME.match(reservation)
    ):
        raise EventError("reservation must be a Slurm reservation name")
    if not reservation and not site.reservations:
        raise EventError(
            f"the hub may not create reservations at site {site.name}: name the reservation "
            "the site made for this event"
        )
    try:
        material = check_material(body.get("material"), limits.folder_roots)
    except ValueError as exc:
        raise EventError(str(exc)) from None
    return Event(
        id=new_event_id(),
        owner=owner,
        title=title.strip(),
        start=start,
        end=end,
        seats=seats,
        site=site.name,
        partition=partition,
        profiles=profiles,
        material=material,
        vos=tuple(dict.fromkeys(vos)),
        federated=federated,
        guest_seats=guests,
        join_code=new_join_code(),
        external_reservation=reservation or "",
        reservation_state="external" if reservation else "none",
    )


def updated_event(event: Event, body: Any, **kwargs: Any) -> Event:
    """``event`` with the fields of ``body`` changed (PATCH), checked as a new one would be;
    its id, owner, join code and reservation state are kept."""
    if not isinstance(body, Mapping):
        raise EventError("an event must be a JSON object")
    current = event.as_json()
    merged = {key: current[key] for key in FIELDS - {"reservation", "profiles"}}
    merged["profiles"] = [{k: p[k] for k in PROFILE_FIELDS} for p in current["profiles"]]
    if event.external_reservation:
        merged["reservation"] = event.external_reservation
    merged.update(body)
    fresh = validate_event(merged, owner=event.owner, **kwargs)
    return replace(
        fresh,
        id=event.id,
        join_code=event.join_code,
        created_at=event.created_at,
        reservation_state=event.reservation_state,
        reservation_error=event.reservation_error,
        reservation_users=event.reservation_users,
        participants=event.participants,
    )
