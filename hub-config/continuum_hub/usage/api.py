"""The usage REST API of the hub: ``/hub/api/continuum/usage`` and the admins' budget overrides.

``GET /hub/api/continuum/usage`` — the jobs of the ledger (:mod:`continuum_spawners.ledger`)
and their sums: totals, by day, by site, by kind and by VO, the user's budgets and the sites
whose usage is delayed.  A user sees their own; admins (scope ``admin:users``) any
(``?user=NAME``, ``?user=*`` for everyone); anyone else's is 403.  Filters ``vo``, ``site``,
``kind``; ``from`` and ``to`` are ISO dates or times (UTC unless they say otherwise; default:
this month so far), at most :data:`MAX_DAYS` apart (400 otherwise).  ``format=csv`` answers
the jobs as CSV.

``PUT /hub/api/continuum/usage/budgets/{user}`` (admins only) — a user's budget override:
``{"core_hours": …, "gpu_hours": …, "co2e_kg": …}`` (any of them) or ``null`` to remove it.

The handlers are thin: :func:`usage_report` builds the answer from a ledger and is tested alone.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from jupyterhub import apihandlers
from jupyterhub.apihandlers import APIHandler
from tornado import web

from continuum_spawners import ledger as ledgers
from continuum_spawners.ledger import JobLedger, Totals, UsageJob
from continuum_spawners.sites import SiteRegistry

USAGE_ROUTE = r"/api/continuum/usage"
OVERRIDE_ROUTE = r"/api/continuum/usage/budgets/([^/]+)"
ROUTES = (USAGE_ROUTE, OVERRIDE_ROUTE)
#: the longest range one query may cover
MAX_DAYS = 366
#: most jobs listed in an answer (the sums cover up to the ledger's own limit)
MAX_LISTED = 500
#: budget resources an override may set, and their bound
RESOURCES = ("core_hours", "gpu_hours", "co2e_kg")
MAX_LIMIT = 1e9
#: tornado settings the hub configuration sets (see :func:`continuum_hub.usage.add_usage`)
SETTINGS = "continuum_usage"


def parse_range(start: str | None, end: str | None, now: datetime) -> tuple[datetime, datetime]:
    """``[from, to)`` from the query's ISO dates or times; ``ValueError`` says what is wrong."""

    def parse(text: str, name: str) -> datetime:
        try:
            value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"{name} is not an ISO 8601 date or time: {text[:40]!r}") from None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    since = parse(start, "from") if start else ledgers.month_start(now)
    until = parse(end, "to") if end else now
    if until <= since:
        raise ValueError("to must be after from")
    if until - since > timedelta(days=MAX_DAYS):
        raise ValueError(f"the range may cover at most {MAX_DAYS} days")
    return since, until


def _sums(jobs: Iterable[UsageJob]) -> dict[str, Any]:
    totals = Totals.of(jobs)
    return {
        "jobs": totals.jobs,
        "core_hours": totals.core_hours,
        "gpu_hours": totals.gpu_hours,
        "energy_kwh": totals.energy_kwh,
        "co2e_kg": totals.co2e_kg,
    }


def _grouped(jobs: list[UsageJob], key: str, of: Any) -> list[dict[str, Any]]:
    groups: dict[Any, list[UsageJob]] = {}
    for job in jobs:
        groups.setdefault(of(job), []).append(job)
    return [{key: name, **_sums(members)} for name, members in sorted(groups.items(), key=str)]


def delayed(ledger: JobLedger, sites: Iterable[str]) -> list[dict[str, Any]]:
    """The sites among ``sites`` whose last accounting call failed, with since when."""
    answer = []
    for site in sorted(set(sites)):
        point = ledger.checkpoint(site)
        if point is None or not point.last_error:
            continue
        since = point.last_success_at or point.last_attempt_at
        answer.append(
            {
                "site": site,
                "since": since.isoformat() if since else None,
                "message": f"usage delayed: {point.last_error}",
            }
        )
    return answer


def usage_report(
    ledger: JobLedger,
    user: str | None,
    since: datetime,
    until: datetime,
    filters: dict[str, str],
    budgets: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The JSON answer of ``GET /hub/api/continuum/usage`` (``user`` ``None``: everyone)."""
    jobs = ledger.jobs(user=user, since=since, until=until, limit=ledgers.MAX_JOBS, **filters)
    totals = asdict(Totals.of(jobs))
    return {
        "user": user if user is not None else "*",
        "from": since.isoformat(),
        "to": until.isoformat(),
        "totals": totals,
        "by_day": _grouped(jobs, "day", lambda j: j.submitted_at.date().isoformat()),
        "by_site": _grouped(jobs, "site", lambda j: j.site),
        "by_kind": _grouped(jobs, "kind", lambda j: j.kind),
        "by_vo": _grouped(jobs, "vo", lambda j: j.vo or ""),
        "jobs": [job.as_json() for job in jobs[:MAX_LISTED]],
        "budgets": budgets or [],
        "delayed": delayed(ledger, [j.site for j in jobs] + ledger.unfinished_sites()),
    }


def jobs_csv(jobs: Iterable[UsageJob]) -> str:
    """The jobs as CSV, one row each, every field of :meth:`UsageJob.as_json`."""
    out = io.StringIO()
    writer: Any = None
    for job in jobs:
        row = job.as_json()
        if writer is None:
            writer = csv.DictWriter(out, fieldnames=list(row), lineterminator="\n")
            writer.writeheader()
        writer.writerow(row)
    return out.getvalue()


def budget_statuses(
    registry_path: str, ledger: JobLedger, user: str, groups: list[str]
) -> list[dict[str, Any]]:
    """The user's budget statuses (:func:`continuum_spawners.budgets.budget_status`) for each
    VO of theirs that allows a site; ``[]`` where budgets are not available."""
    try:
        from continuum_spawners.budgets import budget_status
    except ImportError:
        return []
    registry = SiteRegistry.from_file(Path(registry_path))
    vos = {ledgers.vo_for(site, groups) for site in registry} or {None}
    seen: dict[tuple[str, str, str], Any] = {}
    for vo in sorted(vos, key=lambda v: v or ""):
        for status in budget_status(registry, ledger, user, vo):
            seen.setdefault((status.scope, status.name, status.resource), status)
    return [status.as_json() for status in seen.values()]


def checked_override(body: Any) -> dict[str, float] | None:
    """A budget override body, checked (``ValueError`` says what is wrong)."""
    if body is None:
        return None
    if not isinstance(body, dict) or not body or set(body) - set(RESOURCES):
        raise ValueError(f"the body must be null or an object with any of {', '.join(RESOURCES)}")
    limits = {}
    for key, value in body.items():
        number = value if isinstance(value, int | float) and not isinstance(value, bool) else None
        if number is None or not math.isfinite(number) or not 0 <= number <= MAX_LIMIT:
            raise ValueError(f"{key} must be a number from 0 to {MAX_LIMIT:g}")
        limits[key] = float(number)
    return limits


class _UsageHandler(APIHandler):
    """Base: the ledger and the registry the hub configuration named."""

    def usage_settings(self) -> dict[str, str]:
        settings = self.settings.get(SETTINGS)
        if not settings:
            raise web.HTTPError(404, "usage accounting is not enabled on this hub")
        return settings

    def ledger(self) -> JobLedger:
        return ledgers.ledger_for(self.usage_settings()["db_url"])

    def signed_in(self) -> Any:
        """The requesting user or service; 403 without one (an API answers, never redirects
        to the login page as ``web.authenticated`` would)."""
        if self.current_user is None:
            raise web.HTTPError(403, "sign in or send a token")
        return self.current_user

    def is_admin(self) -> bool:
        """Whether the request may act on every user (JupyterHub's ``admin:users``, unfiltered:
        admins, and services given it)."""
        return bool(self.has_scope("admin:users"))


class UsageHandler(_UsageHandler):
    """``GET /hub/api/continuum/usage``."""

    def get(self) -> None:
        name = getattr(self.signed_in(), "name", None)
        wanted = self.get_argument("user", name)
        if wanted != name and not self.is_admin():
            raise web.HTTPError(403, "only admins may see another user's usage")
        try:
            since, until = parse_range(
                self.get_argument("from", None), self.get_argument("to", None), datetime.now(UTC)
            )
        except ValueError as exc:
            raise web.HTTPError(400, str(exc)) from None
        filters = {
            k: self.get_argument(k) for k in ("vo", "site", "kind") if self.get_argument(k, None)
        }
        answer = self.get_argument("format", "json")
        if answer not in ("json", "csv"):
            raise web.HTTPError(400, "format must be json or csv")
        ledger = self.ledger()
        user = None if wanted == "*" else wanted
        if answer == "csv":
            jobs = ledger.jobs(
                user=user, since=since, until=until, limit=ledgers.MAX_JOBS, **filters
            )
            self.set_header("Content-Type", "text/csv; charset=utf-8")
            stem = f"usage-{'all' if user is None else user}-{since.date().isoformat()}"
            self.set_header("Content-Disposition", f'attachment; filename="{stem}.csv"')
            self.finish(jobs_csv(jobs))
            return
        budgets: list[dict[str, Any]] = []
        if user is not None:
            orm_user = self.find_user(user)
            groups = [g.name for g in orm_user.groups] if orm_user is not None else []
            try:
                budgets = budget_statuses(
                    self.usage_settings()["registry_path"], ledger, user, groups
                )
            except Exception:  # the usage is still worth answering without its budgets
                self.log.exception("Budgets of %s not shown in the usage answer", user)
        self.finish(json.dumps(usage_report(ledger, user, since, until, filters, budgets)))


class BudgetOverrideHandler(_UsageHandler):
    """``PUT /hub/api/continuum/usage/budgets/{user}`` (admins only)."""

    def put(self, user: str) -> None:
        if not (self.signed_in() and self.is_admin()):
            raise web.HTTPError(403, "only admins may override budgets")
        if self.find_user(user) is None:
            raise web.HTTPError(404, f"no user {user[:40]!r}")
        try:
            limits = checked_override(json.loads(self.request.body or b"null"))
        except ValueError as exc:
            raise web.HTTPError(400, str(exc)) from None
        self.ledger().set_override(user, limits)
        self.log.info("Budget override of %s set by %s: %s", user, self.current_user.name, limits)
        self.finish(json.dumps({"user": user, "override": limits}))


def install_usage_handlers() -> None:
    """Add the usage routes to the hub's API (idempotent); call from the hub configuration."""
    handlers = apihandlers.default_handlers
    handlers[:] = [h for h in handlers if h[0] not in ROUTES]
    handlers.extend([(OVERRIDE_ROUTE, BudgetOverrideHandler), (USAGE_ROUTE, UsageHandler)])
