"""Prometheus metrics of the spawner and of site access (``prometheus_client``).

Defined here rather than in :mod:`continuum_hub.metrics`, which lists every Continuum metric,
because ``continuum_spawners`` may not import ``continuum_hub`` (the layering runs one way);
:mod:`continuum_hub.metrics` re-exports these.  They live in ``prometheus_client``'s default
registry, the one JupyterHub's ``/hub/metrics`` serves, so they appear there next to
JupyterHub's own.

Naming follows Prometheus' conventions: the unit in the name (``_seconds``), counters end in
``_total``; labels are low-cardinality (site, partition, outcome, reason) and never name a user.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

#: queue waits of batch jobs last minutes to hours: buckets up to a day
LONG_BUCKETS = (
    1.0,
    5.0,
    15.0,
    30.0,
    60.0,
    120.0,
    300.0,
    600.0,
    1800.0,
    3600.0,
    7200.0,
    14400.0,
    43200.0,
    86400.0,
    float("inf"),
)
#: a scheduler's status command: milliseconds to its timeout
COMMAND_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, float("inf"))

SPAWN_DURATION = Histogram(
    "continuum_spawn_duration_seconds",
    "Time from a spawn request to the server's port report (or failure), by site and outcome.",
    ["site", "partition", "outcome"],
    buckets=LONG_BUCKETS,
)
#: phases of a spawn (:mod:`~continuum_spawners.phases`): milliseconds to minutes
PHASE_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 120.0, float("inf"))
SPAWN_PHASE = Histogram(
    "continuum_spawn_phase_seconds",
    "Duration of each phase of a successful spawn (validated, sbatch, running, launcher, port, "
    "answering, proxy), from the phase before it, by site.",
    ["site", "phase"],
    buckets=PHASE_BUCKETS,
)
QUEUE_WAIT = Histogram(
    "continuum_queue_wait_seconds",
    "Time a server's batch job waited in the site's queue (submission to running).",
    ["site", "partition"],
    buckets=LONG_BUCKETS,
)
STATUS_CALLS = Counter(
    "continuum_scheduler_status_calls_total",
    "Batched status commands (one per site per interval) run on each site, by outcome.",
    ["site", "outcome"],
)
STATUS_DURATION = Histogram(
    "continuum_scheduler_status_duration_seconds",
    "Duration of a site's batched status command.",
    ["site"],
    buckets=COMMAND_BUCKETS,
)
SITE_UP = Gauge(
    "continuum_site_up",
    "1 while the site's scheduler answers the hub's periodic probe (as the hub's account), "
    "else 0; probed whether or not anybody has a job there.",
    ["site"],
)
PORT_REPORTS_REFUSED = Counter(
    "continuum_port_reports_refused_total",
    "Port reports the hub refused (bad body, not the server's own token, not starting).",
    ["reason"],
)
JOB_ENDING_REPORTS = Counter(
    "continuum_job_ending_reports_total",
    "Reports of running servers that the scheduler is ending their job (walltime, cancelled), "
    "by reason; 'refused' for reports the hub refused.",
    ["reason"],
)

BUDGET_REFUSALS = Counter(
    "continuum_budget_refusals_total",
    "Requests refused before submission because their maximum use would exceed a budget.",
    ["site", "kind", "resource"],
)
USAGE_COLLECTIONS = Counter(
    "continuum_usage_collections_total",
    "Accounting queries of the usage collector (one per site per interval), by outcome.",
    ["site", "outcome"],
)
USAGE_CORE_HOURS = Counter(
    "continuum_usage_core_hours_total",
    "Core-hours of the hub's jobs (servers, Dask, batch runs) as the collector recorded them.",
    ["site", "kind"],
)
USAGE_GPU_HOURS = Counter(
    "continuum_usage_gpu_hours_total",
    "GPU-hours of the hub's jobs as the collector recorded them.",
    ["site", "kind"],
)
USAGE_ENERGY_KWH = Counter(
    "continuum_usage_energy_kwh_total",
    "Energy of the hub's jobs (measured where the site measures it, else the model), in kWh.",
    ["site", "kind"],
)
USAGE_CO2E_GRAMS = Counter(
    "continuum_usage_co2e_grams_total",
    "Emissions of the hub's jobs (energy x the site's grid intensity), in grams CO2e.",
    ["site", "kind"],
)

#: every metric defined here (for :mod:`continuum_hub.metrics` and its tests)
SPAWNER_METRICS = (
    SPAWN_DURATION,
    SPAWN_PHASE,
    QUEUE_WAIT,
    STATUS_CALLS,
    STATUS_DURATION,
    SITE_UP,
    PORT_REPORTS_REFUSED,
    JOB_ENDING_REPORTS,
    BUDGET_REFUSALS,
    USAGE_COLLECTIONS,
    USAGE_CORE_HOURS,
    USAGE_GPU_HOURS,
    USAGE_ENERGY_KWH,
    USAGE_CO2E_GRAMS,
)

#: a refusal's status → the ``reason`` label of :data:`PORT_REPORTS_REFUSED`
PORT_REFUSAL_REASONS = {400: "bad_body", 403: "not_own_token", 409: "not_starting"}
