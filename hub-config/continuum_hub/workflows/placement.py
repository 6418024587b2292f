"""Where a run goes when it may go anywhere: the soonest start by the sites' own estimates.

A run asked for ``site: "soonest"`` (the spawn form's :data:`~continuum_spawners.options.
SOONEST`) is placed at submit, and a lost run with ``allow_move`` is moved to another site,
by one function, :func:`soonest`: every partition of the owner's sites (where they have an
account) that fits the run's resources — :func:`~continuum_spawners.options.candidates`, the
spawn form's rules — is asked when the run would start (``sbatch --test-only`` as the owner's
account, through the executor's ``estimate``, i.e. :func:`~continuum_spawners.estimates.
estimate_start`) and the earliest wins (:func:`~continuum_spawners.estimates.by_start`, the
spawner's ranking; without any estimate, the registry's order).  A run whose resources name
the sites holding its data (``data_sites``, optionally ``transfer``) follows the data rule of
:mod:`continuum_spawners.locality`: never a site without a replica unless a transfer is asked
for; among those, soonest (a move finds no other site when no other one holds the data).  The
choice says where and why (``beta: starts now``, ``beta: data present, starts now``), for the
run's reason and its attempt.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from continuum_spawners.accounts import NoAccountError
from continuum_spawners.estimates import by_start
from continuum_spawners.locality import NoReplicaError, choose, reason, when
from continuum_spawners.options import (
    SOONEST,
    JobRequest,
    OptionsError,
    candidates,
    validate_options,
)
from continuum_spawners.schedulers.base import Estimate

from ..workshops.usable import usable_registry
from .validation import RequestError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Placement:
    """A concrete request for a run, the account there, and why it was chosen."""

    request: JobRequest
    account: str
    reason: str


__all__ = ["Placement", "soonest", "when"]


async def soonest(
    manager: Any, owner: str, resources: dict[str, Any], exclude: Collection[str] = ()
) -> Placement | None:
    """The soonest placement of ``resources`` among ``owner``'s sites but ``exclude``; ``None``
    when no other site fits.

    ``manager`` is the :class:`~.manager.RunManager` (its hub client, registry, account
    resolver and executor).  Its executor's ``estimate(site, account, request)`` answers
    each candidate; an executor without one leaves the registry's order.

    Raises
    ------
    RequestError
        The resources fit none of the owner's sites (the spawn form's message), or none of
        those holds the data named in ``data_sites`` and no transfer is asked for.
    """
    user = await manager.hub.user(owner)
    # the owner's sites as the spawn form's rules see them: a running event's site too
    registry = usable_registry(manager.registry(), user.groups)
    unavailable = manager.resolver.unavailable(owner, registry.for_groups(user.groups))
    wanted = {k: v for k, v in resources.items() if k not in ("site", "partition")}
    try:
        request = validate_options({**wanted, "site": SOONEST}, registry, user.groups, unavailable)
    except OptionsError as exc:
        raise RequestError(f"resources: {exc}", exc.status) from None
    options, accounts = [], []
    for option in candidates(request, registry, user.groups, unavailable):
        if option.site in exclude or option.site_entry is None:
            continue
        # asking is no reason to allocate an account (the chosen site's is, below)
        account = manager.resolver.account_for(owner, option.site_entry, allocate=False)
        if account is not None:
            options.append(option)
            accounts.append(account)
    if not options:
        return None
    estimate = getattr(manager.executor, "estimate", None)
    if estimate is None:
        estimates = [Estimate(None, "the executor gives no estimates")] * len(options)
    else:
        estimates = await asyncio.gather(
            *(
                estimate(option.site_entry, account, option)
                for option, account in zip(options, accounts, strict=True)
            )
        )
    ranked = by_start(list(zip(options, estimates, strict=True)))
    try:
        ranked = choose(ranked, request.data_sites, request.transfer)
    except NoReplicaError as exc:
        if exclude:  # a move: no other site holds the data
            return None
        raise RequestError(f"resources: {exc}") from None
    choice, found = ranked[0]
    try:
        account = manager.resolver.require(owner, choice.site_entry)
    except NoAccountError as exc:
        raise RequestError(f"resources: {exc}", 403) from None
    log.info("Soonest for %s: %s/%s (%s)", owner, choice.site, choice.partition, when(found))
    why = reason(choice.site, found, request.data_sites, request.transfer)
    return Placement(choice, account, why)
