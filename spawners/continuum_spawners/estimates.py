"""Queue-wait estimates of a spawner: when would a request start, and where soonest.

:class:`EstimatesMixin` is part of :class:`~continuum_spawners.spawner.SiteSpawner`: it asks the
site's scheduler (``sbatch --test-only`` as the user's account) for one request, ranks every
fitting partition of the user's sites for a ``soonest`` request, and answers the hub's
``GET /hub/api/continuum/estimate``.  It uses the spawner's registry, account resolver and
transports, and the sites' adapters (:func:`~continuum_spawners.schedulers.adapter_for`).

Its pieces that need no spawner — :func:`estimate_start` (one request, as one account) and
:func:`by_start` (the ranking) — serve the workflow service's ``soonest`` runs and moves too.
A request naming the sites that hold its data follows :mod:`~continuum_spawners.locality`
(never a site without a replica unless a transfer is asked for; among those, soonest), and every
estimate says why in one line (``reason``: ``beta: data present, starts now``).
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from .budgets import Request, preview
from .jobs import ESTIMATE_SCRIPT, LATEST, build_job_spec, estimate_model
from .locality import NoReplicaError, choose, holds_data, reason
from .options import SOONEST, JobRequest, OptionsError, candidates
from .schedulers import adapter_for
from .schedulers.base import Estimate
from .sites import Site


async def estimate_start(
    site: Site, request: JobRequest, account: str, workdir: str, job_name: str, transport: Any
) -> Estimate:
    """When ``request`` would start on ``site`` now: ``sbatch --test-only`` as ``account``
    through ``transport``; an unreachable site gives an estimate without a start, no error."""
    spec = build_job_spec(site, request, workdir, job_name, [])
    adapter = adapter_for(site)
    try:
        result = await transport.run(
            adapter.estimate_argv(spec), user=account, stdin=ESTIMATE_SCRIPT
        )
    except Exception as exc:  # an unreachable site has no estimate, it is no error
        return Estimate(None, f"site {site.name} did not answer: {exc}")
    return adapter.parse_estimate(result.returncode, result.stdout, result.stderr)


def _rank(pair: tuple[JobRequest, Estimate]) -> tuple[bool, datetime, bool]:
    option, estimate = pair
    part = option.partition_entry
    # among equal starts a CPU-only job leaves GPU partitions to GPU jobs
    spares_gpus = option.gpus == 0 and part is not None and part.max_gpus > 0
    return (estimate.start is None, estimate.start or LATEST, spares_gpus)


def by_start(ranked: list[tuple[JobRequest, Estimate]]) -> list[tuple[JobRequest, Estimate]]:
    """Requests with their estimates, earliest start first (those without one last); ties
    keep their order (the registry's)."""
    return sorted(ranked, key=_rank)


class EstimatesMixin:
    """Estimates for :class:`~continuum_spawners.spawner.SiteSpawner` (see the module)."""

    # provided by SiteSpawner
    user: Any
    registry: Any
    job_name: str
    user_groups: list[str]
    unix_account: Any
    transport: Any
    unavailable_sites: Any
    check_options: Any

    async def estimate(self, request: JobRequest) -> Estimate:
        """When ``request`` would start now (``sbatch --test-only`` as the user)."""
        site = request.site_entry or self.registry.get(request.site)
        if site is None:
            raise OptionsError(f"unknown site {request.site!r}")
        account = self.unix_account(site)
        return await estimate_start(
            site, request, account.pw_name, account.pw_dir, self.job_name, self.transport(site)
        )

    async def soonest(self, request: JobRequest) -> list[tuple[JobRequest, Estimate]]:
        """Candidates of a ``soonest`` request with their estimates, the one to take first
        (earliest start among the sites the data rule admits, see
        :func:`~continuum_spawners.locality.choose`)."""
        unavailable = self.unavailable_sites()
        options = candidates(request, self.registry, self.user_groups, unavailable)
        estimates = await asyncio.gather(*(self.estimate(option) for option in options))
        ranked = by_start(list(zip(options, estimates, strict=True)))
        try:
            return choose(ranked, request.data_sites, request.transfer)
        except NoReplicaError as exc:
            raise OptionsError(str(exc)) from None

    async def estimate_options(self, options: dict[str, Any]) -> dict[str, Any]:
        """Estimate for user options (``GET /hub/api/continuum/estimate``), with the reason
        for the choice."""
        request = self.check_options(options)
        if request.site != SOONEST:
            model = explained(request, await self.estimate(request))
            return {**model, **self.budget_preview(request)}
        pairs = await self.soonest(request)
        ranked = [explained(option, estimate) for option, estimate in pairs]
        return {**ranked[0], "candidates": ranked, **self.budget_preview(pairs[0][0])}

    def budget_preview(self, request: JobRequest) -> dict[str, Any]:
        """The user's budgets for ``request`` (``budgets``, with 80 % warnings) and the refusal
        it would meet (``budget_refusal``, else ``None``): the form shows both before submit."""
        site = request.site_entry or self.registry.get(request.site)
        wanted = budget_request(site, request)
        return preview(self.registry, self.user.name, self.user_groups, wanted)


def budget_request(site: Site, request: JobRequest) -> Request:
    """What a server of ``request`` at ``site`` asks of the budgets."""
    return Request(site, request.cores, request.gpus, request.memory_gb, request.walltime_minutes)


def explained(request: JobRequest, estimate: Estimate) -> dict[str, Any]:
    """:func:`~continuum_spawners.jobs.estimate_model` with whether the site holds the
    request's data and the one-line reason (:func:`~continuum_spawners.locality.reason`)."""
    return {
        **estimate_model(request, estimate, request.site_entry),
        "data_present": holds_data(request.site, request.data_sites)
        if request.data_sites
        else None,
        "reason": reason(request.site, estimate, request.data_sites, request.transfer),
    }
