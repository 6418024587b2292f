"""Provenance crates of finished runs, checked by ``roc-validator`` against the Workflow Run
Crate 0.5 profile at level *required*, offline — and shown to fail without a MUST item.

The validator runs offline, with the JSON-LD context from the cache of the fixture
``validator_cache`` (``fixtures.crates``).
"""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from continuum_hub.workflows import snapshot
from continuum_hub.workflows.crate import Attempt, InputFile, Person, RunRecord, write_crate
from fixtures.crates import CONTEXT_URL, validate

pytestmark = pytest.mark.workflows

ORCID = "https://orcid.org/0000-0002-1825-0097"
EARLIER = "https://hub.example.org/services/workflows/api/v1/runs/r-41/crate"
T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def run_folder(folder: Path) -> snapshot.Snapshot:
    """What a finished run leaves: snapshot, executed notebook, outputs, a copied input."""
    folder.mkdir()
    notebook = {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": []}
    stored = snapshot.store(folder, json.dumps(notebook).encode(), "analysis/scan.ipynb")
    (folder / "output.ipynb").write_text(json.dumps({**notebook, "metadata": {"papermill": {}}}))
    (folder / "summary.json").write_text('{"events": 42}')
    (folder / "plots" / "energy").mkdir(parents=True)
    (folder / "plots" / "a.png").write_bytes(b"\x89PNG fake")
    (folder / "plots" / "energy" / "b.csv").write_text("e,n\n1,2\n")
    (folder / "data").mkdir()
    (folder / "data" / "calibration.json").write_text('{"gain": 1.5}')
    return stored


def record(folder: Path, stored: snapshot.Snapshot, **fields) -> RunRecord:
    """A run's record for the files of :func:`run_folder`; ``fields`` override defaults."""
    defaults = {
        "run_id": "r-43",
        "workflow": "energy-scan",
        "step": "simulate",
        "notebook": stored.path.relative_to(folder).as_posix(),
        "source": "analysis/scan.ipynb",
        "parameters": {},
        "person": Person("bob"),
        "attempts": (Attempt("12", "alpha", "batch", T0, T0 + timedelta(seconds=30), "FAILED"),),
        "environment": "default",
        "environment_sha256": "d" * 64,
    }
    return RunRecord(**{**defaults, **fields})


def entities(folder: Path) -> dict[str, dict]:
    document = json.loads((folder / "ro-crate-metadata.json").read_text())
    assert document["@context"][0] == CONTEXT_URL
    return {entity["@id"]: entity for entity in document["@graph"]}


@pytest.fixture
def retried(tmp_path) -> tuple[Path, snapshot.Snapshot]:
    """A run lost to a node failure on alpha, done on beta at the second attempt."""
    folder = tmp_path / "run"
    stored = run_folder(folder)
    outside = tmp_path / "events.csv"
    outside.write_text("a,b\n1,2\n")
    size, digest = snapshot.sha256_file(outside)
    described = record(
        folder,
        stored,
        run_id="r-42",
        parameters={"n_events": 1000, "ratio": 0.5, "label": "a\nb", "on": True, "cuts": [1, 2]},
        person=Person("alice", "Alice Example", ORCID),
        attempts=(
            Attempt(
                "1041",
                "alpha",
                "batch",
                T0,
                T0 + timedelta(minutes=7),
                "NODE_FAIL",
                ("a-c1",),
                "node a-c1 stopped answering",
                core_hours=0.2,
            ),
            Attempt(
                "77",
                "beta",
                "gpu",
                T0 + timedelta(minutes=9),
                T0 + timedelta(minutes=30),
                "COMPLETED",
                ("b-g1", "b-g2"),
                core_hours=1.4,
                gpu_hours=0.7,
                energy_kwh=0.31,
                co2e_g=77.5,
            ),
        ),
        environment="root-6",
        environment_sha256="c" * 64,
        outputs=("summary.json", "plots/", "never-written.txt"),
        inputs=(
            InputFile("data/calibration.json"),
            InputFile("data/events.csv", f"file://{outside}", size, digest),
        ),
        based_on=EARLIER,
    )
    write_crate(folder, described)
    return folder, stored


def test_retried_run_validates(retried, validator_cache):
    folder, _ = retried
    status, report = validate(folder, validator_cache)
    assert report["issues"] == []
    assert report["passed"] is True and status == 0
    assert "workflow-run-crate-0.5" in report["statistics"]["profiles"]
    assert report["statistics"]["total_checks_by_severity"]["REQUIRED"] > 0


def test_retried_run_records_everything(retried):
    folder, stored = retried
    graph = entities(folder)
    root = graph["./"]
    main = graph[root["mainEntity"]["@id"]]
    assert main["@type"] == ["File", "SoftwareSourceCode", "ComputationalWorkflow"]
    assert main["sha256"] == stored.sha256 and main["contentSize"] == str(stored.size)
    assert main["alternateName"] == "analysis/scan.ipynb"
    environment = graph[main["softwareRequirements"]["@id"]]
    assert (environment["name"], environment["identifier"]) == ("root-6", "sha256:" + "c" * 64)
    assert root["isBasedOn"] == {"@id": EARLIER}
    assert graph[ORCID]["name"] == "Alice Example" and root["author"] == {"@id": ORCID}
    first, second = (graph[ref["@id"]] for ref in root["mentions"])
    for action in (first, second):
        assert action["@type"] == "CreateAction"
        assert action["instrument"] == {"@id": main["@id"]}
        assert action["agent"] == {"@id": ORCID}
        assert action["startTime"].endswith("+00:00") and action["endTime"].endswith("+00:00")
    assert first["actionStatus"] == "http://schema.org/FailedActionStatus"
    assert first["error"] == "NODE_FAIL: node a-c1 stopped answering"
    assert first["identifier"] == "1041" and "result" not in first
    assert second["actionStatus"] == "http://schema.org/CompletedActionStatus"
    assert second["startTime"] == "2026-03-01T08:09:00+00:00"
    # where: node › partition › site
    node = graph[second["location"][0]["@id"]]
    partition = graph[node["containedInPlace"]["@id"]]
    assert (node["name"], partition["name"]) == ("b-g1", "beta › gpu")
    assert graph[partition["containedInPlace"]["@id"]]["name"] == "beta"
    usage = {graph[u["@id"]]["name"]: graph[u["@id"]] for u in second["resourceUsage"]}
    assert usage["core-hours"]["value"] == 1.4 and usage["GPU-hours"]["unitCode"] == "HUR"
    assert (usage["energy"]["value"], usage["CO2e"]["value"]) == (0.31, 77.5)
    assert graph[first["resourceUsage"]["@id"]]["name"] == "core-hours"
    # outputs of the last attempt, with sizes and digests; the missing one is left out
    results = {ref["@id"] for ref in second["result"]}
    assert results == {"output.ipynb", "summary.json", "plots/"}
    summary = graph["summary.json"]
    assert summary["contentSize"] == "14"
    assert summary["sha256"] == snapshot.sha256_file(folder / "summary.json")[1]
    assert {p["@id"] for p in graph["plots/"]["hasPart"]} == {"plots/a.png", "plots/energy/b.csv"}
    assert "never-written.txt" not in graph
    # parameters: this run's values, each the example of the notebook's formal parameter
    objects = [graph[ref["@id"]] for ref in second["object"]]
    values = {o["name"]: o for o in objects if o["@type"] == "PropertyValue"}
    assert {o["@id"] for o in objects if o["@type"] == "File"} == {
        "data/calibration.json",
        f"file://{folder.parent}/events.csv",
    }
    assert values["n_events"]["value"] == 1000 and values["label"]["value"] == "a\nb"
    assert values["cuts"]["value"] == "[1, 2]"
    formal = graph[values["n_events"]["exampleOfWork"]["@id"]]
    assert (formal["@type"], formal["additionalType"]) == ("FormalParameter", "Integer")
    assert formal["workExample"] == {"@id": values["n_events"]["@id"]}
    inputs = {ref["@id"] for ref in main["input"]}
    assert {"#parameter-n_events", "#input-0", "#input-1"} <= inputs
    assert (
        graph["data/calibration.json"]["sha256"]
        == snapshot.sha256_file(folder / "data" / "calibration.json")[1]
    )
    in_place = next(e for i, e in graph.items() if i.startswith("file://"))
    assert in_place["alternateName"] == "data/events.csv" and in_place["contentSize"] == "8"


def test_failed_single_attempt_validates(tmp_path, validator_cache):
    folder = tmp_path / "member-3"
    stored = run_folder(folder)
    write_crate(
        folder, record(folder, stored, parameters={"energy": 2.5, "nothing": None}, member=3)
    )
    status, report = validate(folder, validator_cache)
    assert report["issues"] == [] and status == 0
    graph = entities(folder)
    action = graph["#attempt-1"]
    assert action["actionStatus"] == "http://schema.org/FailedActionStatus"
    assert action["error"] == "FAILED"
    assert action["agent"] == {"@id": "#person-bob"}
    assert action["location"] == {"@id": "#site-alpha-partition-batch"}
    assert graph["./"]["name"] == "Run r-43: energy-scan/simulate member 3"
    assert "isBasedOn" not in graph["./"]


def _without_instrument(graph: list[dict]) -> None:
    for entity in graph:
        if entity.get("@type") == "CreateAction":
            del entity["instrument"]


def _without_additional_type(graph: list[dict]) -> None:
    for entity in graph:
        if entity.get("@type") == "FormalParameter":
            entity.pop("additionalType")


@pytest.mark.parametrize(
    "damage,message",
    [
        pytest.param(
            _without_instrument,
            "At least one CreateAction, ActivateAction or UpdateAction MUST reference the root "
            "data entity's mainEntity as its instrument.",
            id="no-action-runs-the-main-entity",
        ),
        pytest.param(
            _without_additional_type,
            "FormalParameter MUST have an additionalType",
            id="formal-parameter-without-type",
        ),
    ],
)
def test_crate_missing_a_must_item_fails(retried, validator_cache, damage, message):
    folder, _ = retried
    path = folder / "ro-crate-metadata.json"
    document = json.loads(path.read_text())
    damage(document["@graph"])
    path.write_text(json.dumps(document))
    status, report = validate(folder, validator_cache)
    assert status != 0 and report["passed"] is False
    assert message in {issue["message"] for issue in report["issues"]}
    assert {issue["severity"] for issue in report["issues"]} == {"REQUIRED"}


def test_crate_files_stay_inside_the_folder(tmp_path):
    folder = tmp_path / "run"
    stored = run_folder(folder)
    with pytest.raises(ValueError) as caught:
        write_crate(folder, record(folder, stored, outputs=("../../etc/passwd",)))
    assert str(caught.value) == (
        "output '../../etc/passwd' contains '..': a path may not leave the crate's folder"
    )
    assert not (folder / "ro-crate-metadata.json").exists()
