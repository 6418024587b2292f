"""Monthly budgets per VO and per user, checked before anything is submitted.

The registry's top-level ``budgets`` list (beside ``sites``; schema in
:mod:`.registry_schema`, so a negative or absurd limit is refused at hub start with its file,
line and column)::

    budgets:
      - {vo: vo.hep.example, core_hours: 1000, gpu_hours: 50, co2e_kg: 20,
         contact: "hep-support@example.org"}
      - {user: alice, core_hours: 0.1}

A limit holds per calendar month (UTC).  What counts against it is the ledger's *committed*
use (:meth:`~continuum_spawners.ledger.JobLedger.totals`): for a job still running, the most it
may still use (requested cores × walltime), so that two requests in a row cannot both fit into
what is left.  A request is refused when that plus the request's own maximum would pass a limit
(:func:`check_budget`, which counts the refusal in ``BUDGET_REFUSALS``); at 80 % the statuses
carry a warning for the spawn form and the dialogs.  An admin's override of a user's limits
(:meth:`~continuum_spawners.ledger.JobLedger.override`) replaces that user's own rule, never
their VO's.

Callers: the spawner (a spawn), the Dask Gateway backend (cluster start and scale-up) and the
workflows service (run submission), each right before its ``sbatch``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .impact import Impact, estimate, model_for
from .ledger import (
    ENV_URL,
    KINDS,
    JobLedger,
    Totals,
    ledger_for,
    month_start,
    next_month_start,
    vo_for,
)
from .metrics import BUDGET_REFUSALS

if TYPE_CHECKING:
    from .sites import Site

__all__ = [
    "RESOURCES",
    "BudgetExceeded",
    "BudgetRule",
    "BudgetStatus",
    "budget_status",
    "build_rules",
    "check_budget",
    "count_refusals_from_zero",
    "enforce",
    "preview",
]

RESOURCES = ("core_hours", "gpu_hours", "co2e_kg")
UNITS = {"core_hours": "core-hours", "gpu_hours": "GPU-hours", "co2e_kg": "kg CO2e"}
# the Totals field holding each resource's committed use
COMMITTED = {
    "core_hours": "committed_core_hours",
    "gpu_hours": "committed_gpu_hours",
    "co2e_kg": "committed_co2e_kg",
}
WARNING_SHARE = 0.8
DEFAULT_CONTACT = "the hub's administrators"
KIND_WORDS = {"server": "server", "dask": "Dask cluster", "batch": "batch run"}


class BudgetConfigError(ValueError):
    """A ``budgets`` entry the schema cannot catch (a rule given twice); ``where`` is its
    place in the registry document."""

    def __init__(self, message: str, where: tuple[str | int, ...]) -> None:
        super().__init__(message)
        self.where = where


@dataclass(frozen=True)
class BudgetRule:
    """One ``budgets`` entry: the monthly ``limits`` of a ``user`` or a ``vo`` (``scope``)."""

    scope: str
    name: str
    limits: Mapping[str, float] = field(default_factory=dict)
    contact: str = ""


def build_rules(entries: Iterable[Mapping[str, Any]]) -> tuple[BudgetRule, ...]:
    """The rules of a schema-valid ``budgets`` list.

    Raises
    ------
    BudgetConfigError
        For a user or VO with two entries (which one would hold is anyone's guess).
    """
    rules: list[BudgetRule] = []
    seen: set[tuple[str, str]] = set()
    for index, entry in enumerate(entries):
        scope = "user" if "user" in entry else "vo"
        name = str(entry[scope])
        if (scope, name) in seen:
            raise BudgetConfigError(
                f"at budgets/{index}: {scope} {name} has a budget already", ("budgets", index)
            )
        seen.add((scope, name))
        limits = {key: float(entry[key]) for key in RESOURCES if key in entry}
        rules.append(BudgetRule(scope, name, limits, entry.get("contact", "")))
    return tuple(rules)


class BudgetExceeded(Exception):
    """A request whose maximum use would pass a budget; ``message`` says what is left, when
    the budget resets and whom to ask."""

    def __init__(self, message: str, resource: str, scope: str) -> None:
        super().__init__(message)
        self.message = message
        self.resource = resource
        self.scope = scope


@dataclass(frozen=True)
class BudgetStatus:
    """Where one limit of one budget stands this month (``used``: committed use)."""

    scope: str
    name: str
    resource: str
    limit: float
    used: float
    left: float
    resets: datetime
    contact: str
    warning: bool

    def as_json(self) -> dict[str, Any]:
        return {
            "scope": self.scope,
            "name": self.name,
            "resource": self.resource,
            "unit": UNITS[self.resource],
            "limit": self.limit,
            "used": round(self.used, 6),
            "left": round(self.left, 6),
            "resets": self.resets.isoformat(),
            "contact": self.contact,
            "warning": self.warning,
        }


def _limits(registry: Any, user: str, vo: str | None, ledger: JobLedger) -> list[BudgetRule]:
    rules = [
        rule
        for rule in getattr(registry, "budgets", ())
        if (rule.scope == "user" and rule.name == user)
        or (rule.scope == "vo" and vo is not None and rule.name == vo)
    ]
    override = ledger.override(user)
    if override:
        own = next((rule for rule in rules if rule.scope == "user"), None)
        limits = {**(own.limits if own else {}), **override}
        rules = [rule for rule in rules if rule is not own]
        rules.append(BudgetRule("user", user, limits, own.contact if own else ""))
    # the user's own limit first: it is the one they can have changed
    return sorted(rules, key=lambda rule: rule.scope != "user")


def budget_status(
    registry: Any, ledger: JobLedger, user: str, vo: str | None, now: datetime | None = None
) -> list[BudgetStatus]:
    """This month's status of every limit that applies to ``user`` (a member of ``vo``, the
    group that allowed the site; ``None``: no VO budget applies), user's own first."""
    now = now or datetime.now(UTC)
    since, resets = month_start(now), next_month_start(now)
    statuses = []
    for rule in _limits(registry, user, vo, ledger):
        where = {"user": user} if rule.scope == "user" else {"vo": rule.name}
        totals = ledger.totals(**where, since=since)
        for resource, limit in rule.limits.items():
            used = float(getattr(totals, COMMITTED[resource]))
            statuses.append(
                BudgetStatus(
                    scope=rule.scope,
                    name=rule.name,
                    resource=resource,
                    limit=limit,
                    used=used,
                    left=max(0.0, limit - used),
                    resets=resets,
                    contact=rule.contact or DEFAULT_CONTACT,
                    warning=_warns(used, limit),
                )
            )
    return statuses


def _warns(used: float, limit: float) -> bool:
    # the registry's limits are positive; an admin's override of 0 stops everything
    return limit <= 0 or used / limit >= WARNING_SHARE


def _number(value: float) -> str:
    return f"{value:.3g}" if value < 100 else f"{value:,.0f}"


def refusal_message(status: BudgetStatus, requested: float, kind: str) -> str:
    """What a refused user reads: what is left, how much the request needs, when the budget
    resets and whom to ask."""
    unit = UNITS[status.resource]
    whose = (
        "Your monthly budget" if status.scope == "user" else f"The monthly budget of {status.name}"
    )
    return (
        f"{whose} has {_number(status.left)} {unit} left of {_number(status.limit)}; this "
        f"{KIND_WORDS.get(kind, kind)} may use up to {_number(requested)} {unit}. "
        f"The budget resets on {status.resets:%Y-%m-%d %H:%M} UTC; "
        f"ask {status.contact} for more."
    )


def _evaluate(
    statuses: list[BudgetStatus], requested: Mapping[str, float]
) -> tuple[list[BudgetStatus], tuple[BudgetStatus, float] | None]:
    """The statuses with the request's warning flags (all of them, for the form to show), and
    the first limit the request would pass."""
    checked = []
    passed = None
    for status in statuses:
        need = requested[status.resource]
        if passed is None and need > 0 and status.used + need > status.limit:
            passed = (status, need)
        checked.append(replace(status, warning=_warns(status.used + need, status.limit)))
    return checked, passed


def check_budget(
    registry: Any,
    ledger: JobLedger,
    user: str,
    vo: str | None,
    estimate: Impact,
    core_hours: float,
    gpu_hours: float,
    kind: str,
    site: str,
) -> list[BudgetStatus]:
    """Refuse a request whose maximum use would pass a budget, before it is submitted.

    Parameters
    ----------
    estimate
        The request's impact if it used everything it asks for
        (:func:`~continuum_spawners.impact.estimate`), for CO2e limits.
    core_hours, gpu_hours
        Its maximum: cores (GPUs) × walltime.
    kind, site
        What is asked for (``server``, ``dask``, ``batch``) and where: the refusal's labels.

    Returns
    -------
    list of BudgetStatus
        The statuses, ``warning`` set where the request would bring use to 80 % or more.

    Raises
    ------
    BudgetExceeded
        With the message of :func:`refusal_message`; counted in ``BUDGET_REFUSALS``.
    """
    requested = {"core_hours": core_hours, "gpu_hours": gpu_hours, "co2e_kg": estimate.co2e_kg}
    checked, passed = _evaluate(budget_status(registry, ledger, user, vo), requested)
    if passed is not None:
        status, need = passed
        BUDGET_REFUSALS.labels(site=site, kind=kind, resource=status.resource).inc()
        raise BudgetExceeded(refusal_message(status, need, kind), status.resource, status.scope)
    return checked


def count_refusals_from_zero(registry: Any) -> None:
    """Start ``BUDGET_REFUSALS`` at 0 for every site of ``registry``, kind and resource, so a
    rate or a dashboard shows "none refused" rather than no data (the hub calls this at start)."""
    for site in registry:
        for kind in KINDS:
            for resource in RESOURCES:
                BUDGET_REFUSALS.labels(site=site.name, kind=kind, resource=resource)


class _NoUsage:
    """The ledger of a process told of none (``$CONTINUUM_USAGE_DB_URL`` unset): nothing used
    and no overrides, so a request is still held against the limits themselves."""

    def totals(self, **_where: Any) -> Totals:
        return Totals()

    def override(self, _user: str) -> None:
        return None


def usage_ledger() -> Any:
    """The ledger of this process (``$CONTINUUM_USAGE_DB_URL``), or one with no usage."""
    url = os.environ.get(ENV_URL, "").strip()
    return ledger_for(url) if url else _NoUsage()


@dataclass(frozen=True)
class Request:
    """What a submission asks for at a site: ``count`` jobs of ``cores``, ``gpus`` and
    ``memory_gb`` each for ``walltime_minutes``."""

    site: Site
    cores: int
    gpus: int
    memory_gb: float
    walltime_minutes: int
    count: int = 1

    def maxima(self) -> tuple[Impact, float, float]:
        """Its impact, core-hours and GPU-hours if it used everything for the walltime."""
        hours = self.walltime_minutes / 60
        n = self.count
        use = estimate(
            model_for(self.site), n * self.cores, n * self.gpus, n * self.memory_gb, hours
        )
        return use, n * self.cores * hours, n * self.gpus * hours


def enforce(
    registry: Any, user: str, groups: Iterable[str], request: Request, kind: str
) -> list[BudgetStatus]:
    """:func:`check_budget` of ``request`` for ``user`` (a member of ``groups``) against the
    process's ledger: what the submitters call right before submitting."""
    use, core_hours, gpu_hours = request.maxima()
    vo = vo_for(request.site, groups)
    return check_budget(
        registry, usage_ledger(), user, vo, use, core_hours, gpu_hours, kind, request.site.name
    )


def preview(
    registry: Any, user: str, groups: Iterable[str], request: Request, kind: str = "request"
) -> dict[str, Any]:
    """What the spawn form and the dialogs show before a submission: the statuses (with
    the request's 80 % warnings) and the refusal it would meet, without counting it."""
    use, core_hours, gpu_hours = request.maxima()
    ledger = usage_ledger()
    statuses = budget_status(registry, ledger, user, vo_for(request.site, groups))
    requested = {"core_hours": core_hours, "gpu_hours": gpu_hours, "co2e_kg": use.co2e_kg}
    checked, passed = _evaluate(statuses, requested)
    refusal = None if passed is None else refusal_message(passed[0], passed[1], kind)
    return {"budgets": [s.as_json() for s in checked], "budget_refusal": refusal}
