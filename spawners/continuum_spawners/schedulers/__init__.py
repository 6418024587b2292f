"""Site access: the one way from a registry entry to a site's batch system.

Everything that runs work on a site — :class:`~continuum_spawners.spawner.SiteSpawner`, the Dask
Gateway's backend, and any later service (batch runs, reservations, accounting) — goes from a
:class:`~continuum_spawners.sites.Site` to its scheduler through these functions, and never
builds an adapter, a transport or a monitor itself:

:func:`adapter_for`
    the site's :class:`~.base.SchedulerAdapter` (argument lists and output parsers), by its
    ``scheduler`` kind (:data:`ADAPTERS`);
:func:`transport_for`
    how its commands run, by its ``connection.transport`` (:data:`TRANSPORTS`):
    :class:`~.transport.LocalTransport` (``sudo -n -u ACCOUNT`` on this machine),
    :class:`~.ssh.SSHTransport` (on the site's login node) or
    :class:`~.slurmrest.SlurmRestTransport` (the site's slurmrestd, ``auth/jwt``);
:func:`monitor_for`
    the site's :class:`~.monitor.SiteMonitor`, one per process: a single batched status query
    per interval for all the jobs of the site, whoever asks.

Modules: :mod:`.base` (the adapter interface, job specs and states), :mod:`.slurm` (Slurm;
its accounting, ``sacct``, in :mod:`.sacct`), :mod:`.transport` (the transport interface, local
runs), :mod:`.ssh` (runs over SSH, built on :mod:`.transport`), :mod:`.slurmrest` (the same
commands as slurmrestd requests; the translation in :mod:`.rest_commands`), :mod:`.monitor`
(batched status).  Adding a scheduler kind is one adapter
module plus one entry in :data:`ADAPTERS`: the registry's schema accepts exactly those kinds.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from .base import SchedulerAdapter
from .monitor import SiteMonitor
from .slurm import SlurmAdapter
from .slurmrest import SlurmRestTransport
from .ssh import SSHTransport
from .transport import LocalTransport, Transport

if TYPE_CHECKING:
    from ..sites import Site

__all__ = [
    "ADAPTERS",
    "DEFAULT_TIMEOUT",
    "TRANSPORTS",
    "adapter_for",
    "clear_monitors",
    "monitor_for",
    "transport_for",
]

#: scheduler kind (a site's ``scheduler`` in the registry) → its adapter
ADAPTERS: dict[str, type[SchedulerAdapter]] = {"slurm": SlurmAdapter}

#: seconds after which a command is killed, where the caller names no timeout
DEFAULT_TIMEOUT = 30.0


def _local(site: Site, timeout: float) -> Transport:
    return LocalTransport(site.env, timeout=timeout)


def _ssh(site: Site, timeout: float) -> Transport:
    if site.ssh is None:
        raise ValueError(f"site {site.name}: transport ssh without a host to reach")
    return SSHTransport(site.ssh, site.env, timeout=timeout)


def _slurmrestd(site: Site, timeout: float) -> Transport:
    if site.rest is None:
        raise ValueError(f"site {site.name}: transport slurmrestd without a URL to reach")
    return SlurmRestTransport(site.rest, timeout=timeout)


#: transport kind (a site's ``connection.transport``) → what makes its transport
TRANSPORTS: dict[str, Callable[[Site, float], Transport]] = {
    "local": _local,
    "ssh": _ssh,
    "slurmrestd": _slurmrestd,
}

# one monitor per site and connection, for the whole process (see monitor_for)
_monitors: dict[tuple[object, ...], SiteMonitor] = {}


def adapter_for(site: Site) -> SchedulerAdapter:
    """The scheduler adapter of ``site``.

    Raises
    ------
    ValueError
        For a scheduler kind without an adapter, naming the site and the kinds there are.
    """
    adapter = ADAPTERS.get(site.scheduler)
    if adapter is None:
        raise ValueError(
            f"site {site.name}: no scheduler adapter for {site.scheduler!r} "
            f"(known kinds: {', '.join(sorted(ADAPTERS))})"
        )
    return adapter()


def transport_for(site: Site, timeout: float = DEFAULT_TIMEOUT) -> Transport:
    """How ``site``'s commands run: locally through ``sudo``, over SSH on its login node, or
    through its slurmrestd.

    Parameters
    ----------
    timeout
        Seconds after which a command (over SSH: the connection included) is killed.

    Raises
    ------
    ValueError
        For a transport kind this hub does not know, naming the site and the kinds there are.
    """
    factory = TRANSPORTS.get(site.transport)
    if factory is None:
        raise ValueError(
            f"site {site.name}: no transport {site.transport!r} "
            f"(known kinds: {', '.join(sorted(TRANSPORTS))})"
        )
    return factory(site, timeout)


def monitor_for(site: Site, timeout: float = DEFAULT_TIMEOUT) -> SiteMonitor:
    """The status monitor of ``site``, shared by everyone in this process.

    Monitors are kept by the site's name, scheduler and connection: every caller asking for the
    same site gets the same monitor (so one ``squeue`` serves the spawner's polls and, where it
    runs in the same process, the gateway's checks), and a site whose connection changed in the
    registry gets a new one.  ``timeout`` applies to the status commands of a monitor made by
    this call (the first caller's; in the hub, ``SiteSpawner.command_timeout``).
    """
    key = (
        site.name,
        site.scheduler,
        site.transport,
        site.ssh,
        site.rest,
        tuple(sorted(site.env.items())),
    )
    monitor = _monitors.get(key)
    if monitor is None:
        monitor = SiteMonitor(site.name, adapter_for(site), transport_for(site, timeout))
        _monitors[key] = monitor
    return monitor


def clear_monitors() -> None:
    """Forget every shared monitor, as a fresh process starts (tests that fake a site's
    scheduler start from here)."""
    _monitors.clear()
