"""An event's reserved capacity: a scheduler reservation made, widened and removed by the hub.

Everything goes through the site-access path (:func:`~continuum_spawners.schedulers.adapter_for`
builds the commands, :func:`~continuum_spawners.schedulers.transport_for` runs them as the hub's
own account, which the site must allow to manage reservations: a Slurm operator, or root on the
demo's local clusters).  The reservation holds ``seats × cores of the largest profile`` on the
event's partition for its window, for the POSIX accounts its participants' servers run as: at
first only the hub's own account (a reservation needs one), then each participant's account as
their server is submitted (:meth:`Reservations.admit`), whatever the site's account mapping
(pattern, map, pool) gave them.

Slurm removes a reservation at its end time by itself; :meth:`Reservations.release` removes it
when the event is deleted, and :meth:`Reservations.reconcile` (the manager's periodic task)
makes the reservations of events about to start and forgets those of ended ones.  An event at a
site with ``reservations: false`` names a reservation the site made; the hub never changes it.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from continuum_spawners.schedulers import adapter_for, transport_for
from continuum_spawners.schedulers.base import ReservationInfo, ReservationSpec
from continuum_spawners.schedulers.transport import TransportError, current_user
from continuum_spawners.sites import Site, SiteRegistry

from .model import Event
from .store import EventStore


class Reservations:
    """Makes and removes events' reservations and keeps their state in the store.

    Parameters
    ----------
    registry
        Returns the current site registry.
    lead
        How long before an event's start its reservation is made.
    timeout
        Seconds after which a scheduler command is killed.
    """

    def __init__(
        self,
        store: EventStore,
        registry: Callable[[], SiteRegistry],
        log: logging.Logger,
        lead: timedelta = timedelta(hours=1),
        timeout: float = 30.0,
    ) -> None:
        self.store = store
        self.registry = registry
        self.log = log
        self.lead = lead
        self.timeout = timeout
        # one change of an event's reservation at a time: participants starting together each
        # write the whole Users= list, and the last write would drop the others' accounts
        self._locks: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    def _site(self, ev: Event) -> Site:
        site = self.registry().get(ev.site)
        if site is None:
            raise RuntimeError(f"site {ev.site} is no longer in the registry")
        return site

    async def _run(self, site: Site, argv: list[str]) -> tuple[int, str, str]:
        try:
            result = await transport_for(site, self.timeout).run(argv)
        except TransportError as exc:
            return 255, "", str(exc)
        return result.returncode, result.stdout, result.stderr

    def _saved(self, ev: Event, **changes: object) -> Event:
        ev = replace(ev, **changes)  # type: ignore[arg-type]
        self.store.save(ev)
        return ev

    async def ensure(self, ev: Event, now: datetime | None = None) -> Event:
        """Make ``ev``'s reservation if it is due (its start within the lead time) and not made
        yet; a refusal is kept in ``reservation_error`` and tried again later."""
        async with self._locks[ev.id]:
            return await self._ensure(self.store.get(ev.id) or ev, now)

    async def _ensure(self, ev: Event, now: datetime | None) -> Event:
        now = now or datetime.now(UTC)
        if ev.external_reservation or ev.reservation_state == "created":
            return ev
        if ev.end <= now or ev.start - self.lead > now:
            return ev
        site = self._site(ev)
        users = ev.reservation_users or (current_user(),)
        spec = ReservationSpec(ev.reservation, ev.partition, ev.start, ev.end, ev.cores, users)
        adapter = adapter_for(site)
        code, out, err = await self._run(site, adapter.create_reservation_argv(spec, now))
        if code != 0:
            message = (err.strip() or out.strip())[:300] or f"exit status {code}"
            self.log.warning("Reservation %s on %s refused: %s", spec.name, site.name, message)
            return self._saved(ev, reservation_state="failed", reservation_error=message)
        self.log.info(
            "Reservation %s on %s/%s: %d cores, %s to %s, for %s",
            spec.name,
            site.name,
            ev.partition,
            spec.cores,
            ev.start.isoformat(),
            ev.end.isoformat(),
            ",".join(users),
        )
        return self._saved(
            ev, reservation_state="created", reservation_error="", reservation_users=tuple(users)
        )

    async def admit(self, ev: Event, account: str) -> Event:
        """Let ``account`` (a participant's, at the event's site) into ``ev``'s reservation."""
        async with self._locks[ev.id]:  # the users as stored now, not as ``ev`` had them
            return await self._admit(self.store.get(ev.id) or ev, account)

    async def _admit(self, ev: Event, account: str) -> Event:
        if ev.external_reservation or account in ev.reservation_users:
            return ev
        users = (*ev.reservation_users, account)
        if ev.reservation_state != "created":
            return self._saved(ev, reservation_users=users)
        site = self._site(ev)
        argv = adapter_for(site).update_reservation_argv(ev.reservation, users)
        code, out, err = await self._run(site, argv)
        if code != 0:
            message = (err.strip() or out.strip())[:300]
            self.log.warning(
                "Reservation %s: %s not admitted: %s", ev.reservation, account, message
            )
            return ev
        return self._saved(ev, reservation_users=users)

    async def release(self, ev: Event) -> Event:
        """Remove the reservation the hub made for ``ev`` (gone already counts as removed)."""
        if ev.external_reservation or ev.reservation_state != "created":
            return ev
        site = self._site(ev)
        code, out, err = await self._run(
            site, adapter_for(site).delete_reservation_argv(ev.reservation)
        )
        if code != 0 and "not found" not in f"{out} {err}".lower():
            message = (err.strip() or out.strip())[:300]
            self.log.warning(
                "Reservation %s on %s not removed: %s", ev.reservation, site.name, message
            )
            return self._saved(ev, reservation_error=message)
        self.log.info("Reservation %s on %s removed", ev.reservation, site.name)
        return self._saved(ev, reservation_state="deleted", reservation_error="")

    async def show(self, ev: Event) -> ReservationInfo | None:
        """The reservation as the site shows it now (``None``: the site has none)."""
        site = self._site(ev)
        adapter = adapter_for(site)
        code, out, err = await self._run(site, adapter.show_reservation_argv(ev.reservation))
        return adapter.parse_reservation(code, out, err)

    async def reconcile(self, now: datetime | None = None) -> None:
        """Make the reservations now due; forget those of ended events (the scheduler removed
        them at their end time)."""
        now = now or datetime.now(UTC)
        for ev in self.store.current(now, now + self.lead):
            try:
                await self.ensure(ev, now)
            except Exception:
                self.log.exception("Reservation of event %s", ev.id)
        for ev in self.store.ended_with_reservation(now):
            try:
                await self.release(ev)
            except Exception:
                self.log.exception("Releasing the reservation of event %s", ev.id)
