"""Data locality in placement: the rule, the data fields of user options, the spawn form, and
the workflow service's ``soonest`` runs with ``data_sites``.

The real estimate API choosing the data's site for alice: ``tests/integration/
test_locality_estimate.py``.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from continuum_spawners.form import render_form
from continuum_spawners.locality import NoReplicaError, choose, reason
from continuum_spawners.options import (
    SOONEST,
    JobRequest,
    OptionsError,
    options_from_form,
    validate_options,
)
from continuum_spawners.schedulers.base import Estimate
from continuum_spawners.sites import SiteRegistry
from fixtures.workflows import Service, run_body

pytestmark = pytest.mark.catalogue

DEMO = Path(__file__).resolve().parents[2] / "hub-config" / "sites.demo.yaml"
HEP, BOTH = ["vo.hep.example"], ["vo.hep.example", "vo.radio.example"]
AT = datetime(2026, 1, 1, tzinfo=UTC)
NOW, SOON, LATER = (
    Estimate(AT),
    Estimate(AT + timedelta(minutes=5)),
    Estimate(AT + timedelta(hours=1)),
)
NONE = Estimate(None, "site down")


@pytest.fixture(scope="module")
def registry() -> SiteRegistry:
    return SiteRegistry.from_file(
        DEMO, {"CONTINUUM_SLURM_CONF_ALPHA": "/a", "CONTINUUM_SLURM_CONF_BETA": "/b"}
    )


def site(name: str) -> SimpleNamespace:
    return SimpleNamespace(site=name)


# candidates ranked soonest first (as by_start gives them) → what the rule takes first, and why
RULE = {
    "no-data-soonest": ("alpha:now beta:soon", "", False, "alpha: starts now"),
    "data-beats-a-shorter-queue": (
        "alpha:now beta:soon", "beta", False, "beta: data present, starts in about 5 min"
    ),
    "transfer-soonest": (
        "alpha:now beta:later", "beta", True, "alpha: no replica (transfer requested), starts now"
    ),
    "transfer-tie-prefers-data": (
        "beta:now alpha:now", "alpha", True, "alpha: data present, starts now"
    ),
    "data-site-without-estimate": (
        "alpha:soon beta:none", "beta", False, "beta: data present, no estimate (site down)"
    ),
    "soonest-of-data-sites": (
        "alpha:now gamma:now beta:soon", "beta gamma", False, "gamma: data present, starts now"
    ),
}  # fmt: skip
ESTIMATES = {"now": NOW, "soon": SOON, "later": LATER, "none": NONE}


@pytest.mark.parametrize(("ranked", "data", "transfer", "why"), RULE.values(), ids=RULE.keys())
def test_the_rule(ranked: str, data: str, transfer: bool, why: str) -> None:
    pairs = [(site(name), ESTIMATES[when]) for name, when in (p.split(":") for p in ranked.split())]
    data_sites = tuple(data.split())
    chosen = choose(pairs, data_sites, transfer)
    first = why.partition(":")[0]
    assert chosen[0][0].site == first
    assert reason(first, chosen[0][1], data_sites, transfer, at=AT) == why
    if data_sites and not transfer:
        assert {option.site for option, _ in chosen} <= set(data_sites)


def test_no_replica_without_transfer_is_refused() -> None:
    with pytest.raises(NoReplicaError, match=r"holds the data \(it is at: beta\)"):
        choose([(site("alpha"), NOW)], ("beta",))
    assert choose([], ("beta",)) == []
    assert (
        reason("alpha", SOON, ("beta",), at=AT)
        == "alpha: no replica of the data, starts in about 5 min"
    )


def test_data_fields_are_validated_and_kept(registry: SiteRegistry) -> None:
    options = {
        "site": SOONEST,
        "data_sites": "beta",
        "datasets": ["demo:radio/obs-001.fits", "rucio:radio:obs 2"],
    }
    request = validate_options(options, registry, BOTH)
    assert request.data_sites == ("beta",) and request.transfer is False
    assert request.datasets == ("demo:radio/obs-001.fits", "rucio:radio:obs 2")
    values = request.values()
    assert values["data_sites"] == ["beta"] and "transfer" not in values
    assert JobRequest(**values) == request  # saved state reads back (JSON lists)
    # a query's comma-separated list, repeated fields, and a transfer flag from a checkbox
    both = validate_options(
        {"data_sites": ["alpha, beta", "beta"], "transfer": "on"}, registry, BOTH
    )
    assert both.data_sites == ("alpha", "beta") and both.transfer is True
    # requests without data read back from old state unchanged
    plain = validate_options({}, registry, HEP)
    assert "data_sites" not in plain.values() and JobRequest(**plain.values()) == plain


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"data_sites": "gamma"}, "data_sites: unknown site 'gamma'"),
        ({"data_sites": "beta;rm -rf ~"}, "is not a site name"),
        ({"data_sites": "../../etc"}, "is not a site name"),
        ({"data_sites": "be\nta"}, "is not a site name"),
        ({"data_sites": "beta\x00"}, "is not a site name"),
        ({"data_sites": ["beta", {"$ne": 1}]}, "'dict' is not a site name"),
        ({"data_sites": {"beta": 1}}, "must be a list of site names"),
        ({"data_sites": "b" * 10_000}, "data_sites is too long"),
        ({"data_sites": ["alpha"] * 65}, "must be a list of site names"),
        ({"datasets": "no-source-prefix"}, "is not a catalogue entry id"),
        ({"datasets": "demo:a\x00b"}, "is not a catalogue entry id"),
        ({"datasets": "Demo:x"}, "is not a catalogue entry id"),
        ({"datasets": "demo:" + "x" * 600}, "is not a catalogue entry id"),
        ({"datasets": [f"demo:{i}" for i in range(21)]}, "at most 20 catalogue entries"),
        ({"datasets": 7}, "must be a list of catalogue entry ids"),
        ({"transfer": "maybe"}, "transfer must be true or false"),
        ({"transfer": 1}, "transfer must be true or false"),
    ],
    ids=lambda value: str(value)[:30],
)
def test_bad_data_fields_get_a_clear_400(registry: SiteRegistry, options, message) -> None:
    with pytest.raises(OptionsError, match=message) as refused:
        validate_options({"site": SOONEST, **options}, registry, BOTH)
    assert refused.value.status == 400


def test_soonest_needs_a_fitting_site_with_the_data(registry: SiteRegistry) -> None:
    # bob may not use beta, where the data is: refused unless he asks for a transfer
    with pytest.raises(OptionsError, match=r"it is at: beta"):
        validate_options({"site": SOONEST, "data_sites": "beta"}, registry, HEP)
    allowed = validate_options(
        {"site": SOONEST, "data_sites": "beta", "transfer": "true"}, registry, HEP
    )
    assert allowed.transfer and allowed.data_sites == ("beta",)
    # a GPU fits beta's partition only, and the data is at alpha
    with pytest.raises(OptionsError, match=r"it is at: alpha"):
        validate_options({"site": SOONEST, "gpus": 1, "data_sites": "alpha"}, registry, BOTH)
    # data without a site: placed by the rule, not on the first site
    assert validate_options({"data_sites": "beta"}, registry, BOTH).site == SOONEST
    # an explicit site is the user's own choice, data or not
    chosen = validate_options({"site": "alpha", "data_sites": "beta"}, registry, BOTH)
    assert chosen.site == "alpha" and chosen.data_sites == ("beta",)


def test_form_data_becomes_options() -> None:
    form = {
        "target": ["soonest/"],
        "data_sites": ["beta"],
        "datasets": ["demo:a", "demo:b"],
        "transfer": ["on"],
    }
    assert options_from_form(form) == {
        "site": "soonest",
        "partition": "",
        "data_sites": ["beta"],
        "datasets": ["demo:a", "demo:b"],
        "transfer": "on",
    }


def test_form_shows_the_data_and_asks_with_it(registry: SiteRegistry) -> None:
    sites = registry.for_groups(BOTH)
    last = JobRequest("alpha", "batch", 1, 2, 0, 60, "python")
    data = {"data_sites": ("beta",), "datasets": ('demo:<img src=x onerror="alert(1)">',)}
    html = render_form(sites, last, data=data)
    # near the data, "soonest" is preselected over the last choice
    assert '<option value="soonest/" selected>' in html
    assert '<option value="alpha/batch" selected' not in html
    assert '<input type="hidden" name="data_sites" value="beta">' in html
    assert "<img" not in html and "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in html
    assert 'name="transfer" value="on">' in html  # not ticked
    assert "held at <strong>beta</strong>" in html
    # the estimate line asks with the data and shows the reason
    assert 'q.append("data_sites", el.value)' in html and "model.reason" in html
    ticked = render_form(sites, None, data={**data, "transfer": True})
    assert 'name="transfer" value="on" checked>' in ticked
    # without data: no data section, the last choice stays
    plain = render_form(sites, last)
    assert 'id="ch-data"' not in plain and '<option value="alpha/batch" selected' in plain


async def test_soonest_run_goes_to_the_data(workflow_service: Service) -> None:
    service, executor = workflow_service, workflow_service.executor
    now = datetime.now(UTC)
    executor.estimates = {"alpha": Estimate(now), "beta": Estimate(now + timedelta(minutes=30))}
    resources = {"site": "soonest", "cores": 1, "memory_gb": 1, "data_sites": ["beta"]}
    code, run = await service.call("POST", "runs", run_body(resources=resources))
    assert code == 201, run
    assert run["site"] == "beta"
    assert run["attempts"][0]["reason"] == "soonest site beta: data present, starts in about 30 min"
    # with a transfer allowed, the shorter queue wins and says why
    moved = {**resources, "transfer": True}
    code, run = await service.call("POST", "runs", run_body(resources=moved))
    assert code == 201 and run["site"] == "alpha"
    reason_text = run["attempts"][0]["reason"]
    assert reason_text == "soonest site alpha: no replica (transfer requested), starts now"
    # bob cannot use beta: a clear refusal, no run
    code, refused = await service.call(
        "POST", "runs", run_body(resources={**resources}), token="bob-token"
    )
    assert code == 400 and "it is at: beta" in refused["message"], refused


async def test_a_move_never_leaves_the_data(workflow_service: Service) -> None:
    service, executor = workflow_service, workflow_service.executor
    resources = {"site": "soonest", "cores": 1, "memory_gb": 1, "data_sites": ["alpha"]}
    code, run = await service.call(
        "POST", "runs", run_body(resources=resources, retries=1, allow_move=True)
    )
    assert code == 201 and run["site"] == "alpha"
    executor.finish(executor.plans[0], ["running"])
    await service.tracker.poll()
    code, run = await service.call("GET", f"runs/{run['id']}")
    # retried where the data is, not moved to beta
    assert [a["site"] for a in run["attempts"]] == ["alpha", "alpha"], run["attempts"]


def test_workflow_file_takes_data_sites() -> None:
    from continuum_hub.workflows.spec import workflow_from_dict

    workflow = workflow_from_dict(
        {
            "name": "near-data",
            "steps": [
                {
                    "name": "scan",
                    "notebook": "scan.ipynb",
                    "resources": {"site": "soonest", "data_sites": ["beta"], "transfer": False},
                }
            ],
        }
    )
    options = workflow.steps[0].resources.as_user_options()
    assert options == {"site": "soonest", "data_sites": ["beta"], "transfer": False}
    with pytest.raises(ValueError, match="data_sites"):
        workflow_from_dict(
            {
                "name": "bad",
                "steps": [
                    {"name": "s", "notebook": "s.ipynb", "resources": {"data_sites": ["../x"]}}
                ],
            }
        )


def test_a_request_keeps_its_data_through_candidates(registry: SiteRegistry) -> None:
    from continuum_spawners.options import candidates

    request = validate_options({"site": SOONEST, "data_sites": "beta"}, registry, BOTH)
    options = candidates(request, registry, BOTH)
    assert options and all(o.data_sites == ("beta",) for o in options)
    assert replace(options[0], site="x").data_sites == ("beta",)
