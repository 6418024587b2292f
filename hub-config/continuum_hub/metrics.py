"""Every Continuum metric, in one place (``prometheus_client``), and the scrape token's service.

The hub's metrics live in ``prometheus_client``'s default registry, which JupyterHub serves at
``/hub/metrics`` (a token with ``read:metrics``); each service process (workflows, catalogue)
serves the same registry of its own process at ``/services/<name>/metrics``
(:class:`continuum_hub.service_api.MetricsHandler`).  The spawner's and site access's metrics are
defined in :mod:`continuum_spawners.metrics` (that package may not import this one) and
re-exported here, so :data:`ALL` is the whole list.

Naming follows Prometheus' conventions: units in names (``_seconds``), counters end in
``_total``, labels only from :data:`ALLOWED_LABELS` — never a user's name (unbounded, personal).

:class:`MetricsScrape` adds the scraper's identity to the hub: a service ``prometheus`` without a
process whose token (read from a file, never from the config) has only ``read:metrics``.
JupyterHub's own spawn-duration histogram stops at 600 s; :data:`SPAWN_BUCKETS_ENV` set in the
hub's environment (``JUPYTERHUB_SERVER_SPAWN_DURATION_SECONDS_BUCKETS``) raises it to hours.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

from prometheus_client import Counter, Gauge, Histogram
from traitlets import Bool, Unicode
from traitlets.config import Config, Configurable

from continuum_spawners.metrics import (
    LONG_BUCKETS,
    PORT_REPORTS_REFUSED,
    QUEUE_WAIT,
    SPAWN_DURATION,
    SPAWNER_METRICS,
    STATUS_CALLS,
    STATUS_DURATION,
)

__all__ = [
    "ALL",
    "ALLOWED_LABELS",
    "BATCH_RUNS",
    "CATALOGUE_SEARCH_DURATION",
    "GATEWAY_CLUSTERS",
    "GATEWAY_CORES",
    "GATEWAY_GPUS",
    "GATEWAY_WORKERS",
    "PORT_REPORTS_REFUSED",
    "QUEUE_WAIT",
    "SIGN_IN_REFUSALS",
    "SPAWN_DURATION",
    "STATUS_CALLS",
    "STATUS_DURATION",
    "TOKEN_REFRESHES",
    "MetricsScrape",
    "spawn_buckets_environment",
]

#: the only label names a Continuum metric may have (low cardinality, nobody's name)
ALLOWED_LABELS = frozenset(
    {
        "site",
        "partition",
        "provider",
        "outcome",
        "reason",
        "state",
        "source",
        "kind",
        "resource",
        "phase",  # of a spawn: one of continuum_spawners.phases.PHASES
    }
)

TOKEN_REFRESHES = Counter(
    "continuum_token_refreshes_total",
    "Refresh grants the hub made, by provider and outcome "
    "(success; rejected: the session ended; unavailable: retried later).",
    ["provider", "outcome"],
)
SIGN_IN_REFUSALS = Counter(
    "continuum_sign_in_refusals_total",
    "Sign-ins the hub refused, by provider and reason.",
    ["provider", "reason"],
)
GATEWAY_CLUSTERS = Gauge(
    "continuum_gateway_clusters", "Active Dask clusters of the gateway, by site.", ["site"]
)
GATEWAY_WORKERS = Gauge(
    "continuum_gateway_workers", "Workers the gateway's clusters have, by site.", ["site"]
)
GATEWAY_CORES = Gauge(
    "continuum_gateway_cores", "Cores of the gateway's clusters' workers, by site.", ["site"]
)
GATEWAY_GPUS = Gauge(
    "continuum_gateway_gpus", "GPUs of the gateway's clusters' workers, by site.", ["site"]
)
BATCH_RUNS = Gauge(
    "continuum_batch_runs", "Batch runs in the workflow service's database, by state.", ["state"]
)
CATALOGUE_SEARCH_DURATION = Histogram(
    "continuum_catalogue_search_duration_seconds",
    "Time one catalogue source took to answer a search (or fail), by source and outcome.",
    ["source", "outcome"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, float("inf")),
)

#: every Continuum metric
ALL = (
    *SPAWNER_METRICS,
    TOKEN_REFRESHES,
    SIGN_IN_REFUSALS,
    GATEWAY_CLUSTERS,
    GATEWAY_WORKERS,
    GATEWAY_CORES,
    GATEWAY_GPUS,
    BATCH_RUNS,
    CATALOGUE_SEARCH_DURATION,
)

#: JupyterHub reads its spawn-duration buckets from this variable at import (comma-separated)
SPAWN_BUCKETS_ENV = "JUPYTERHUB_SERVER_SPAWN_DURATION_SECONDS_BUCKETS"


def spawn_buckets_environment() -> dict[str, str]:
    """The hub's environment for JupyterHub's spawn-duration buckets up to a day (queue waits
    of hours); it must be set before ``jupyterhub.metrics`` is imported, so in the environment
    of the hub's process, not in its config."""
    finite = [f"{bound:g}" for bound in LONG_BUCKETS if bound != float("inf")]
    return {SPAWN_BUCKETS_ENV: ",".join(finite)}


#: the scraper's service and role name on the hub
SCRAPER = "prometheus"


class MetricsScrape(Configurable):
    """The Prometheus scraper's identity on the hub: a service with only ``read:metrics``."""

    enabled = Bool(True, config=True, help="Add the scraper's service when token_file is set.")
    token_file = Unicode(
        "",
        config=True,
        help="""File (mode 0600) holding the scraper's API token; Prometheus reads the same file
        (``authorization.credentials_file``).  Empty (default): no scraper service.""",
    )

    def token(self) -> str:
        """The token, from :attr:`token_file` (refused when others may read the file)."""
        path = Path(self.token_file)
        if path.stat().st_mode & 0o077:
            raise SystemExit(f"{path}: the metrics scrape token must be mode 0600")
        return path.read_text().strip()

    def add_to(self, c: Config) -> bool:
        """Add the scraper's service and role (``read:metrics``) to ``c``; ``False`` when not
        configured or already there."""
        if not (self.enabled and self.token_file):
            return False
        hub = c.JupyterHub
        services = list(hub.services) if "services" in hub else []
        if any(s.get("name") == SCRAPER for s in services):
            return False
        hub.services = [*services, {"name": SCRAPER, "api_token": self.token()}]
        roles = [dict(r) for r in hub.load_roles] if "load_roles" in hub else []
        roles.append({"name": SCRAPER, "scopes": ["read:metrics"], "services": [SCRAPER]})
        hub.load_roles = roles
        return True


def add_metrics_scrape(c: Config) -> bool:
    """:meth:`MetricsScrape.add_to` with the ``MetricsScrape`` section of ``c``."""
    return MetricsScrape(config=c).add_to(c)


#: reasons of :data:`SIGN_IN_REFUSALS` (see ``identity/login.py`` and ``identity/auth.py``)
SIGN_IN_REASONS = (
    "provider_error",
    "back_channel",
    "wrong_provider",
    "no_iss",
    "wrong_issuer",
    "invalid_id_token",
    "subject_mismatch",
    "not_allowed",
)
#: outcomes of :data:`TOKEN_REFRESHES`
REFRESH_OUTCOMES = ("success", "rejected", "unavailable")
#: the states a batch run can be in (the workflow service's ``runs.state``)
RUN_STATES = (
    "pending",
    "submitting",
    "queued",
    "running",
    "needs-sign-in",
    "done",
    "failed",
    "cancelled",
)


def initialize_provider_metrics(providers: Iterable[str]) -> None:
    """Every provider's refresh and refusal counters at 0, so that rates and dashboards show
    "none yet" rather than nothing (Prometheus' advice for label values known in advance)."""
    for provider in providers:
        for outcome in REFRESH_OUTCOMES:
            TOKEN_REFRESHES.labels(provider=provider, outcome=outcome)
        for reason in SIGN_IN_REASONS:
            SIGN_IN_REFUSALS.labels(provider=provider, reason=reason)


def set_run_counts(counts: Mapping[str, int]) -> None:
    """``continuum_batch_runs`` from the runs' counts by state (every known state, 0 if none)."""
    BATCH_RUNS.clear()  # a state no longer known is dropped, not left at its last count
    for state in (*RUN_STATES, *sorted(set(counts) - set(RUN_STATES))):
        BATCH_RUNS.labels(state=state).set(counts.get(state, 0))
