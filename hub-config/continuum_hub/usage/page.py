"""The hub's usage page for admins: ``/hub/continuum/usage``.

A JupyterHub page (template ``continuum-usage.html``, extending JupyterHub's ``page.html``)
with this month's usage per VO and per user (core-hours, GPU-hours, kWh, CO2e), the sites
whose accounting is late, a link to every job as CSV (``GET /hub/api/continuum/usage?user=*
&format=csv``, the usage API of :mod:`.api`) and a form that sets or removes a user's budget
override (``PUT /hub/api/continuum/usage/budgets/{user}``, with the page's XSRF token).
Admins only: anyone else signed in gets 403, nobody signed in goes to the login page.

The page reads the ledger the usage API reads (:data:`.api.SETTINGS` in the hub's tornado
settings) and sums it here; ``?from=…&to=…`` choose another period, bounded as the API's.
:func:`add_usage_page` (called by ``jupyterhub_config.py`` after :func:`add_usage`) adds the
route and the template folder.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jupyterhub import handlers as hub_handlers
from jupyterhub.handlers import BaseHandler
from jupyterhub.utils import url_path_join
from tornado import web
from traitlets.config import Config

from continuum_spawners import ledger as ledgers
from continuum_spawners.ledger import Totals, UsageJob

from .api import RESOURCES, SETTINGS, delayed, parse_range

PAGE_ROUTE = r"/continuum/usage"
TEMPLATE = "continuum-usage.html"
TEMPLATES = Path(__file__).parent / "templates"
#: the numbers of each row, in the tables' order
COLUMNS = ("jobs", "core_hours", "gpu_hours", "energy_kwh", "co2e_kg")


def rows_by(jobs: Iterable[UsageJob], key: Callable[[UsageJob], str]) -> list[dict[str, Any]]:
    """One row per ``key`` of the jobs (``name``, the sums of :data:`COLUMNS`, ``estimated``),
    most core-hours first."""
    groups: dict[str, list[UsageJob]] = {}
    for job in jobs:
        groups.setdefault(key(job), []).append(job)
    rows = []
    for name, members in groups.items():
        totals = Totals.of(members)
        row: dict[str, Any] = {"name": name, "estimated": totals.estimated}
        row.update({column: getattr(totals, column) for column in COLUMNS})
        rows.append(row)
    return sorted(rows, key=lambda r: (-r["core_hours"], r["name"]))


def page_model(
    ledger: ledgers.JobLedger, since: datetime, until: datetime, api_url: str
) -> dict[str, Any]:
    """What the template shows for ``[since, until)`` (every user's jobs of the ledger)."""
    jobs = ledger.jobs(since=since, until=until, limit=ledgers.MAX_JOBS)
    users = rows_by(jobs, lambda j: j.user)
    for row in users:
        row["vos"] = sorted({j.vo or "–" for j in jobs if j.user == row["name"]})
        row["override"] = ledger.override(row["name"]) or {}
    period = {"from": since.isoformat(), "to": until.isoformat()}
    csv_query = "&".join(f"{k}={v.replace('+', '%2B')}" for k, v in period.items())
    return {
        "since": since,
        "until": until,
        "totals": Totals.of(jobs),
        "by_vo": rows_by(jobs, lambda j: j.vo or "(no VO)"),
        "by_user": users,
        "delayed": delayed(ledger, [j.site for j in jobs] + ledger.unfinished_sites()),
        "csv_url": f"{api_url}?user=*&format=csv&{csv_query}",
        "override_url": url_path_join(api_url, "budgets"),
        "resources": RESOURCES,
        "truncated": len(jobs) >= ledgers.MAX_JOBS,
    }


class UsagePageHandler(BaseHandler):
    """``GET /hub/continuum/usage``: the admins' usage page (see the module's docstring)."""

    @web.authenticated
    async def get(self) -> None:
        user = self.current_user
        if not getattr(user, "admin", False):
            raise web.HTTPError(403, "only admins may see everyone's usage")
        settings = self.settings.get(SETTINGS)
        if not settings:
            raise web.HTTPError(404, "usage accounting is not enabled on this hub")
        try:
            since, until = parse_range(
                self.get_argument("from", None), self.get_argument("to", None), datetime.now(UTC)
            )
        except ValueError as exc:
            raise web.HTTPError(400, str(exc)) from None
        api_url = url_path_join(self.hub.base_url, "api/continuum/usage")
        model = page_model(ledgers.ledger_for(settings["db_url"]), since, until, api_url)
        self.set_header("Cache-Control", "no-store")
        self.finish(await self.render_template(TEMPLATE, **model))


def install_usage_page() -> None:
    """Add the page's route to the hub's pages (idempotent)."""
    routes = hub_handlers.default_handlers
    routes[:] = [h for h in routes if h[0] != PAGE_ROUTE]
    routes.append((PAGE_ROUTE, UsagePageHandler))


def add_usage_page(c: Config) -> None:
    """Serve the admins' usage page: its route, and its template folder before JupyterHub's
    own (kept after what the deployment's layers put there)."""
    install_usage_page()
    paths = list(c.JupyterHub.template_paths) if "template_paths" in c.JupyterHub else []
    if str(TEMPLATES) not in paths:
        paths.append(str(TEMPLATES))
    c.JupyterHub.template_paths = paths
