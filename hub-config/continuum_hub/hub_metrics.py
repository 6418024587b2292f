"""The hub process's Continuum metrics switch and its per-site scheduler probe.

The status monitor (:mod:`continuum_spawners.schedulers.monitor`) only asks a site about the
jobs it watches, so a site where nobody runs anything is never asked and its outage goes
unnoticed until the next spawn fails.  :class:`SiteProbe` runs the site's adapter's cheapest
command (Slurm: ``scontrol ping``, one RPC) through the site's own transport, as the hub's
account, and sets ``continuum_site_up{site}`` to 1 or 0; the *site unreachable* alert reads it.

:class:`ContinuumMetrics` (section ``c.ContinuumMetrics``) decides two things for the hub
process, applied by :func:`add_continuum_metrics` from ``jupyterhub_config.py``:

* ``enabled``: with ``False`` the Continuum collectors (:data:`continuum_hub.metrics.ALL`) are
  taken out of ``prometheus_client``'s default registry, so ``/hub/metrics`` serves JupyterHub's
  own metrics only and a scrape costs what it costs in plain JupyterHub, and the probe does not
  run.  ``bench/metrics_overhead.py`` runs one hub each way to measure what the metrics cost.
* ``site_probe_interval``: every site of the registry is probed that often
  (:func:`probe_sites`) and ``continuum_site_up{site}`` says whether it answered, so *site
  unreachable* fires for a site where nobody has a job.

The probe is an asyncio task of the hub's event loop, started while JupyterHub loads its
configuration (inside its running loop); it lives as long as the hub.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from pathlib import Path

from prometheus_client import REGISTRY, CollectorRegistry
from traitlets import Bool, Float
from traitlets.config import Config, LoggingConfigurable

from continuum_spawners import site_health
from continuum_spawners.metrics import SITE_UP
from continuum_spawners.schedulers import adapter_for, transport_for
from continuum_spawners.schedulers.base import SchedulerAdapter
from continuum_spawners.schedulers.transport import Transport
from continuum_spawners.sites import SiteRegistry

from .metrics import ALL

__all__ = [
    "ContinuumMetrics",
    "SiteProbe",
    "add_continuum_metrics",
    "probe_sites",
    "set_continuum_collectors",
]

log = logging.getLogger(__name__)
# the probe task of this process (kept here: the event loop holds tasks only weakly)
_running: dict[str, asyncio.Task[None]] = {}


class SiteProbe:
    """The periodic check of one site's scheduler.

    Parameters
    ----------
    name
        The site's name (the ``site`` label).
    adapter
        Builds the probe command and reads its answer.
    transport
        Runs it (as the hub's own account).
    valid_for
        Seconds each answer counts for the spawner (:mod:`continuum_spawners.site_health`):
        a few probe intervals, so that a stopped probe leaves no site marked down.
    """

    def __init__(
        self, name: str, adapter: SchedulerAdapter, transport: Transport, valid_for: float = 90.0
    ) -> None:
        self.name = name
        self.adapter = adapter
        self.transport = transport
        self.valid_for = valid_for
        self.up: bool | None = None  # None: not probed yet
        self.probes = 0  # commands run so far (for benchmarks and tests)

    async def check(self) -> bool:
        """Probe once, update ``continuum_site_up`` and return whether the site answered."""
        self.probes += 1
        # the spawn form, "soonest" and spawns read the board instead of asking the site again
        up, reason = await site_health.probe_once(
            self.name, self.adapter, self.transport, self.valid_for
        )
        SITE_UP.labels(site=self.name).set(1 if up else 0)
        if up != self.up:  # log changes only: a site down for hours logs once
            level = logging.INFO if up else logging.WARNING
            what = "answers" if up else f"does not answer ({(reason or 'no reason')[:200]})"
            log.log(level, "Scheduler of site %s %s", self.name, what)
        self.up = up
        return up


async def probe_sites(probes: Iterable[SiteProbe], interval: float) -> None:
    """Probe every site now and then every ``interval`` seconds, concurrently, until cancelled
    (:func:`continuum_spawners.site_health.probe_rounds`)."""
    probes = list(probes)
    await site_health.probe_rounds(
        lambda: asyncio.gather(*(probe.check() for probe in probes)), interval
    )


def set_continuum_collectors(enabled: bool, registry: CollectorRegistry = REGISTRY) -> int:
    """Register (``enabled``) or unregister every Continuum collector in ``registry``; the
    number changed (0 when already so)."""
    changed = 0
    for metric in ALL:
        # registered already / not registered: nothing to change
        with contextlib.suppress(KeyError, ValueError):
            if enabled:
                registry.register(metric)
            else:
                registry.unregister(metric)
            changed += 1
    return changed


class ContinuumMetrics(LoggingConfigurable):
    """Whether the hub exports Continuum's metrics, and how often it probes each site."""

    enabled = Bool(
        True,
        config=True,
        help="""Export Continuum's metrics from the hub process (``/hub/metrics``) and run the
        per-site probe.  False: ``/hub/metrics`` has JupyterHub's own metrics only (the
        services' ``/metrics`` are not affected); for measuring what the metrics cost.""",
    )
    site_probe_interval = Float(
        30.0,
        min=0.0,
        config=True,
        help="""Seconds between two probes of every site's scheduler (Slurm: one
        ``scontrol ping`` as the hub's account), which set ``continuum_site_up{site}``.
        0 disables the probe.""",
    )
    site_probe_timeout = Float(
        10.0,
        min=0.1,
        config=True,
        help="Seconds after which a probe command (over SSH: the connection included) is "
        "killed and the site counted down.",
    )

    def probes(self, registry: SiteRegistry) -> list[SiteProbe]:
        """One probe per site of ``registry``, built through the site-access path."""
        # an answer counts for three intervals and a probe's timeout: one missed round (a
        # slow probe) does not clear a site's state
        valid_for = 3 * self.site_probe_interval + self.site_probe_timeout
        return [
            SiteProbe(
                site.name,
                adapter_for(site),
                transport_for(site, self.site_probe_timeout),
                valid_for,
            )
            for site in registry
        ]

    def apply(self, registry_path: str | None) -> asyncio.Task[None] | None:
        """Switch the collectors on or off and, when on, start the probe of the sites in
        ``registry_path`` in the running event loop; the probe's task (``None`` when none)."""
        set_continuum_collectors(self.enabled)
        if not (self.enabled and self.site_probe_interval and registry_path):
            return None
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # config loaded outside the hub (e.g. a config check)
            return None
        probes = self.probes(SiteRegistry.from_file(Path(registry_path)))
        if not probes:
            return None
        old = _running.pop("probe", None)
        if old is not None:  # the config loaded again in the same process
            old.cancel()
        task = loop.create_task(probe_sites(probes, self.site_probe_interval))
        _running["probe"] = task
        self.log.info(
            "Probing %d site(s) every %g s: %s",
            len(probes),
            self.site_probe_interval,
            ", ".join(p.name for p in probes),
        )
        return task


def add_continuum_metrics(c: Config) -> asyncio.Task[None] | None:
    """:meth:`ContinuumMetrics.apply` with the ``ContinuumMetrics`` section of ``c`` and the
    spawner's registry (``SiteSpawner.registry_path``)."""
    section = c.SiteSpawner
    path = section.registry_path if "registry_path" in section else None
    return ContinuumMetrics(config=c).apply(path)
