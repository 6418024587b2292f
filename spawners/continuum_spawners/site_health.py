"""Which sites' schedulers answer, as the hub's per-site probe last saw them.

The hub probes every site's scheduler now and then (``continuum_hub.hub_metrics.SiteProbe``:
Slurm's ``scontrol ping``, one RPC, as the hub's account) and records each answer here, in
the hub process's :data:`BOARD`.  The spawner reads the board instead of asking the site
again, so that a site whose controller does not answer

* is shown unavailable in the spawn form, with the reason and since when,
* is skipped by ``soonest`` (it is left out of the candidates, like a site without an account),
* and refuses a spawn at once with 503 and the reason, instead of letting ``sbatch`` hang
  until its own retries give up.

An answer counts only while it is fresh (``valid_for`` seconds, given by the probe: a few of
its intervals): when the probe stops (metrics switched off, the hub reloading its
configuration) no site stays marked down on an old answer.  No probe, no record: every site
is taken as available, as before the probe existed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from .options import SOONEST

if TYPE_CHECKING:
    from .schedulers.base import SchedulerAdapter
    from .schedulers.transport import Transport

__all__ = [
    "BOARD",
    "SiteHealth",
    "SiteHealthBoard",
    "down_message",
    "probe_once",
    "probe_rounds",
    "refusal_status",
]

# the status of a refusal because the site cannot take a job now (retry later)
UNAVAILABLE = 503


@dataclass(frozen=True)
class SiteHealth:
    """The last probe answer of one site.

    Attributes
    ----------
    site
        The site's name.
    up
        Whether its scheduler answered.
    since
        When it went into this state (UTC): the first probe that saw it so.
    reason
        The first line of what the failed probe said (empty when up).
    checked
        When the last probe answered (the board's monotonic clock).
    valid_for
        Seconds after ``checked`` that this answer still counts.
    """

    site: str
    up: bool
    since: datetime
    reason: str
    checked: float
    valid_for: float


def down_message(health: SiteHealth, label: str | None = None) -> str:
    """What a user reads about a site that does not answer: which site, since when, why."""
    since = health.since.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    why = f" ({health.reason})" if health.reason else ""
    return (
        f"Site {label or health.site} is unavailable: its scheduler has not answered since "
        f"{since}{why}. Choose another site, or try again later."
    )


class SiteHealthBoard:
    """The probe's last answer per site, in one hub process.

    Parameters
    ----------
    clock
        Monotonic seconds (freshness of the answers).
    now
        The wall-clock time in UTC (``since``, shown to users).
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._clock = clock
        self._now = now
        self._sites: dict[str, SiteHealth] = {}

    def record(self, site: str, up: bool, reason: str = "", valid_for: float = 90.0) -> SiteHealth:
        """Note one probe answer of ``site``; ``since`` moves only when the state changes, so
        a site down for hours keeps the time it went down."""
        last = self._sites.get(site)
        since = last.since if last is not None and last.up == up else self._now()
        health = SiteHealth(
            site=site,
            up=up,
            since=since,
            reason="" if up else " ".join(reason.split())[:200],
            checked=self._clock(),
            valid_for=valid_for,
        )
        self._sites[site] = health
        return health

    def get(self, site: str) -> SiteHealth | None:
        """The last answer of ``site`` while it still counts, else ``None`` (unknown)."""
        health = self._sites.get(site)
        if health is None or self._clock() - health.checked > health.valid_for:
            return None
        return health

    def down(self, labels: Mapping[str, str] | Iterable[str]) -> dict[str, str]:
        """The sites among ``labels`` (name → label shown to users, or just names) whose last
        fresh answer says they are down: name → :func:`down_message`."""
        named = labels if isinstance(labels, Mapping) else {name: name for name in labels}
        found: dict[str, str] = {}
        for name, label in named.items():
            health = self.get(name)
            if health is not None and not health.up:
                found[name] = down_message(health, label)
        return found

    def forget(self, site: str | None = None) -> None:
        """Drop the answer of ``site`` (all sites with ``None``)."""
        if site is None:
            self._sites.clear()
        else:
            self._sites.pop(site, None)


def refusal_status(
    wanted: object, down: Mapping[str, str], allowed: Iterable[str], no_account: Iterable[str]
) -> int | None:
    """503 when a request must be refused only because sites do not answer, else ``None``.

    ``wanted`` is the request's ``site`` option: a site that is down and that the user may use
    (``allowed``) and has an account at (not in ``no_account``); or no site / ``soonest`` when
    every allowed site with an account is down.  A site the user may not use, or has no
    account at, is left to the normal 403.
    """
    allowed, no_account = set(allowed), set(no_account)
    if isinstance(wanted, str) and wanted in down and wanted in allowed - no_account:
        return UNAVAILABLE
    if wanted is None or wanted == SOONEST:
        usable = allowed - no_account
        if usable and usable <= set(down):
            return UNAVAILABLE
    return None


# the hub process's board: written by the probe, read by every spawner of the hub
BOARD = SiteHealthBoard()


async def probe_once(
    name: str, adapter: SchedulerAdapter, transport: Transport, valid_for: float
) -> tuple[bool, str]:
    """Probe site ``name`` once (the adapter's cheapest command through ``transport``), record
    the answer on :data:`BOARD` for ``valid_for`` seconds; whether it answered, and the first
    line of what it said (or why it could not be reached).  Never raises: an unreachable site
    is an answer, not the end of a probe loop."""
    try:
        result = await transport.run(adapter.probe_argv())
        up = adapter.parse_probe(result.returncode, result.stdout, result.stderr)
        text = (result.stderr or result.stdout).strip()
    except Exception as exc:  # an unreachable site must not end the probe loop
        up, text = False, str(exc)
    reason = text.splitlines()[0] if text else ""
    BOARD.record(name, up, reason, valid_for)
    return up, reason


async def probe_rounds(one_round: Callable[[], Awaitable[object]], interval: float) -> None:
    """Run ``one_round`` now and then every ``interval`` seconds until cancelled; a round that
    takes longer than the interval (a transport's timeout) delays only the next one, never
    stacks up commands on a site."""
    loop = asyncio.get_running_loop()
    while True:
        started = loop.time()
        await one_round()
        await asyncio.sleep(max(0.0, interval - (loop.time() - started)))
