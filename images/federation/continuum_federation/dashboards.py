"""Grafana dashboards of Continuum Hub, generated from code (grafanalib), never edited by hand.

Four dashboards: hub health, sites and queues, Dask clusters, usage and impact.

``python -m continuum_federation.dashboards [FOLDER]`` writes one JSON model per dashboard
(default ``images/grafana/dashboards/``); a test regenerates them and compares, and another
evaluates every panel's query against a real Prometheus.  Each dashboard reads a data source
chosen at import (the ``datasource`` variable), so a site imports the files unchanged.

Queries use fixed rate windows (``[5m]``), not Grafana's ``$__rate_interval``, so that they
are plain PromQL that Prometheus can evaluate outside Grafana.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from grafanalib._gen import DashboardEncoder
from grafanalib.core import (
    Dashboard,
    GridPos,
    Target,
    Templating,
    TimeSeries,
)

#: the data-source variable every panel reads
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
#: where the generated files live in the checkout
DEFAULT_FOLDER = Path(__file__).resolve().parents[2] / "grafana" / "dashboards"
WIDTH, HEIGHT = 12, 8
#: the usage metrics' common prefix (``continuum_spawners.metrics``)
USAGE = "continuum_usage_"


def panel(title: str, unit: str, *queries: tuple[str, str]) -> dict[str, Any]:
    """A time-series panel of ``(PromQL, legend)`` queries (laid out by :func:`dashboard`)."""
    return {"title": title, "unit": unit, "queries": queries}


def _panels(specs: Sequence[dict[str, Any]]) -> Iterator[TimeSeries]:
    for index, spec in enumerate(specs):
        targets = [
            Target(
                expr=expr, legendFormat=legend, refId=chr(ord("A") + number), datasource=DATASOURCE
            )
            for number, (expr, legend) in enumerate(spec["queries"])
        ]
        yield TimeSeries(
            title=spec["title"],
            dataSource=DATASOURCE,
            targets=targets,
            unit=spec["unit"],
            gridPos=GridPos(h=HEIGHT, w=WIDTH, x=(index % 2) * WIDTH, y=(index // 2) * HEIGHT),
        )


def dashboard(uid: str, title: str, specs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The JSON model of a dashboard of ``specs`` (two panels a row)."""
    variable = {
        "name": "datasource",
        "label": "Prometheus",
        "type": "datasource",
        "query": "prometheus",
        "current": {},
        "hide": 0,
    }
    model = Dashboard(
        title=title,
        uid=uid,
        tags=["continuum-hub"],
        timezone="utc",
        refresh="30s",
        templating=Templating(list=[variable]),
        panels=list(_panels(specs)),
    ).auto_panel_ids()
    return json.loads(json.dumps(model.to_json_data(), cls=DashboardEncoder))


def hub_health() -> dict[str, Any]:
    """The hub, its proxy and services: up, requests, servers, sign-ins, tokens."""
    return dashboard(
        "continuum-hub-health",
        "Continuum Hub: hub health",
        [
            panel("Targets up", "none", ("up", "{{job}}")),
            panel(
                "Hub API requests by status",
                "reqps",
                ("sum by (code) (rate(jupyterhub_request_duration_seconds_count[5m]))", "{{code}}"),
            ),
            panel(
                "Hub API p95 latency",
                "s",
                (
                    "histogram_quantile(0.95, sum by (le) "
                    "(rate(jupyterhub_request_duration_seconds_bucket[5m])))",
                    "p95",
                ),
            ),
            panel(
                "Servers and users",
                "none",
                ("jupyterhub_running_servers", "running servers"),
                ("jupyterhub_active_users", "active users ({{period}})"),
            ),
            panel(
                "Sign-in refusals by reason",
                "none",
                (
                    "sum by (provider, reason) (increase(continuum_sign_in_refusals_total[1h]))",
                    "{{provider}} {{reason}}",
                ),
            ),
            panel(
                "Token refreshes by outcome",
                "none",
                (
                    "sum by (provider, outcome) (increase(continuum_token_refreshes_total[1h]))",
                    "{{provider}} {{outcome}}",
                ),
            ),
            panel(
                "Batch runs by state",
                "none",
                ("sum by (state) (continuum_batch_runs)", "{{state}}"),
            ),
            panel(
                "Catalogue search p95 by source",
                "s",
                (
                    "histogram_quantile(0.95, sum by (le, source) "
                    "(rate(continuum_catalogue_search_duration_seconds_bucket[1h])))",
                    "{{source}}",
                ),
            ),
        ],
    )


def sites_and_queues() -> dict[str, Any]:
    """The sites: spawns, queue waits, the schedulers' status calls, refused port reports."""
    status = "continuum_scheduler_status_calls_total"
    return dashboard(
        "continuum-sites-queues",
        "Continuum Hub: sites and queues",
        [
            panel(
                "Spawns by site and outcome (1 h)",
                "none",
                (
                    "sum by (site, outcome) (increase(continuum_spawn_duration_seconds_count[1h]))",
                    "{{site}} {{outcome}}",
                ),
            ),
            panel(
                "Spawn duration p90 by site",
                "s",
                (
                    "histogram_quantile(0.9, sum by (le, site) "
                    "(rate(continuum_spawn_duration_seconds_bucket[6h])))",
                    "{{site}}",
                ),
            ),
            panel(
                "Queue wait p90 by site and partition",
                "s",
                (
                    "histogram_quantile(0.9, sum by (le, site, partition) "
                    "(rate(continuum_queue_wait_seconds_bucket[6h])))",
                    "{{site}}/{{partition}}",
                ),
            ),
            panel(
                "Scheduler status calls by site and outcome",
                "ops",
                (f"sum by (site, outcome) (rate({status}[5m]))", "{{site}} {{outcome}}"),
            ),
            panel(
                "Status call p95 duration by site",
                "s",
                (
                    "histogram_quantile(0.95, sum by (le, site) "
                    "(rate(continuum_scheduler_status_duration_seconds_bucket[1h])))",
                    "{{site}}",
                ),
            ),
            panel(
                "Sites answering the hub's probe",
                "none",
                ("max by (site) (continuum_site_up)", "{{site}}"),
            ),
            panel(
                "Port reports refused (1 h)",
                "none",
                (
                    "sum by (reason) (increase(continuum_port_reports_refused_total[1h]))",
                    "{{reason}}",
                ),
            ),
        ],
    )


def dask_clusters() -> dict[str, Any]:
    """The hub-managed Dask Gateway's clusters, workers, cores and GPUs by site."""
    return dashboard(
        "continuum-dask-clusters",
        "Continuum Hub: Dask clusters",
        [
            panel(
                "Clusters by site",
                "none",
                ("sum by (site) (continuum_gateway_clusters)", "{{site}}"),
            ),
            panel(
                "Workers by site", "none", ("sum by (site) (continuum_gateway_workers)", "{{site}}")
            ),
            panel(
                "Worker cores by site",
                "none",
                ("sum by (site) (continuum_gateway_cores)", "{{site}}"),
            ),
            panel(
                "Worker GPUs by site",
                "none",
                ("sum by (site) (continuum_gateway_gpus)", "{{site}}"),
            ),
        ],
    )


def usage_and_impact() -> dict[str, Any]:
    """What the hub's jobs used (as the usage collector recorded it) and what it cost: core-
    and GPU-hours, energy and CO2e by site and kind, budget refusals, the collector's queries."""

    def by_site_kind(title: str, unit: str, metric: str) -> dict[str, Any]:
        # a day's increase: usage is read in days, and the counters restart with the hub
        expr = f"sum by (site, kind) (increase({metric}[1d]))"
        return panel(title, unit, (expr, "{{site}} {{kind}}"))

    return dashboard(
        "continuum-usage-impact",
        "Continuum Hub: usage and impact",
        [
            by_site_kind("Core-hours by site and kind (24 h)", "none", USAGE + "core_hours_total"),
            by_site_kind("GPU-hours by site and kind (24 h)", "none", USAGE + "gpu_hours_total"),
            by_site_kind("Energy by site and kind (24 h)", "kwatth", USAGE + "energy_kwh_total"),
            by_site_kind("CO2e by site and kind (24 h)", "massg", USAGE + "co2e_grams_total"),
            panel(
                "Budget refusals by resource (24 h)",
                "none",
                (
                    "sum by (site, kind, resource) (increase(continuum_budget_refusals_total[1d]))",
                    "{{site}} {{kind}} {{resource}}",
                ),
            ),
            panel(
                "Usage collections by site and outcome (1 h)",
                "none",
                (
                    f"sum by (site, outcome) (increase({USAGE}collections_total[1h]))",
                    "{{site}} {{outcome}}",
                ),
            ),
        ],
    )


#: every dashboard: file name → builder
DASHBOARDS = {
    "hub-health.json": hub_health,
    "sites-and-queues.json": sites_and_queues,
    "dask-clusters.json": dask_clusters,
    "usage-and-impact.json": usage_and_impact,
}


def render(builder: Any) -> str:
    """A dashboard's file content (stable: sorted keys, a final newline)."""
    return json.dumps(builder(), indent=2, sort_keys=True) + "\n"


def queries(model: dict[str, Any]) -> list[tuple[str, str]]:
    """``(panel title, PromQL)`` of every target of every panel of a dashboard's JSON model."""
    return [
        (item["title"], target["expr"])
        for item in model.get("panels", [])
        for target in item.get("targets", [])
    ]


def write(folder: Path = DEFAULT_FOLDER) -> list[Path]:
    """Write every dashboard into ``folder``; the paths written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, builder in DASHBOARDS.items():
        path = folder / name
        path.write_text(render(builder))
        written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m continuum_federation.dashboards [FOLDER]``."""
    args = list(sys.argv[1:] if argv is None else argv)
    for path in write(Path(args[0]) if args else DEFAULT_FOLDER):
        print(path)


if __name__ == "__main__":
    main()
