"""Which sites' schedulers answer, as the gateway's own probe sees them.

The gateway runs in a process of its own, so the hub's per-site probe
(``continuum_hub.hub_metrics.SiteProbe``) and its board are not visible here.
:class:`SiteAvailability` probes every site of the registry the same way (the adapter's
cheapest command, Slurm's ``scontrol ping``, through the site's transport:
:func:`~continuum_spawners.schedulers.transport_for`) and records each answer in this
process's :data:`continuum_spawners.site_health.BOARD`, where the cluster options read it: a
site that does not answer is shown unavailable and a cluster request there is refused with the
reason (:func:`~continuum_hub.gateway.options.cluster_options`).  It sets no metric: the hub's
probe already exports ``continuum_site_up``, and a second series per site would double every
alert.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable

from traitlets import Float
from traitlets.config import LoggingConfigurable

from continuum_spawners import site_health
from continuum_spawners.schedulers import adapter_for, transport_for
from continuum_spawners.sites import Site

__all__ = ["SiteAvailability"]


class SiteAvailability(LoggingConfigurable):
    """The gateway's per-site probe (see the module's docstring)."""

    interval = Float(
        15.0,
        config=True,
        help="""Seconds between two probes of every site (0: no probe, every site is taken as
        available).  A site that stops answering is shown unavailable within about this long
        plus ``timeout``.  Default 15.""",
    )
    timeout = Float(
        10.0,
        config=True,
        help="Seconds after which one probe (connection included) counts as no answer. Default 10.",
    )

    _task: asyncio.Task[None] | None = None

    async def check(self, site: Site) -> bool | None:
        """Probe ``site`` once and record the answer; ``None`` for a scheduler without a
        probe (nothing recorded: taken as available)."""
        adapter = adapter_for(site)
        try:
            adapter.probe_argv()
        except NotImplementedError:
            return None
        last = site_health.BOARD.get(site.name)
        # an answer counts for a few rounds: a stopped probe leaves no site marked down
        valid_for = 3 * self.interval + self.timeout
        try:
            transport = transport_for(site, timeout=self.timeout)
        except ValueError as exc:  # an entry without what its transport needs: not reachable
            up, reason = False, str(exc)
            site_health.BOARD.record(site.name, up, reason, valid_for)
        else:
            up, reason = await site_health.probe_once(site.name, adapter, transport, valid_for)
        if last is None or last.up != up:  # changes only: a site down for hours logs once
            self.log.log(
                logging.INFO if up else logging.WARNING,
                "Site %s %s",
                site.name,
                "answers" if up else f"does not answer: {reason[:200]}",
            )
        return up

    async def _run(self, sites: Callable[[], Iterable[Site]]) -> None:
        await site_health.probe_rounds(
            lambda: asyncio.gather(*(self.check(site) for site in sites())), self.interval
        )

    def start(self, sites: Callable[[], Iterable[Site]]) -> None:
        """Probe ``sites()`` (asked again each round: the registry may change) every
        :attr:`interval` seconds until :meth:`stop`."""
        if self.interval > 0 and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(sites))

    async def stop(self) -> None:
        """End the probe."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def down(self, sites: Iterable[Site]) -> dict[str, str]:
        """Site name → what users read, for the ``sites`` whose last answer says they are
        down (:func:`~continuum_spawners.site_health.down_message`)."""
        return site_health.BOARD.down({site.name: site.label for site in sites})
