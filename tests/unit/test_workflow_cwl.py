"""Workflows exported as CWL v1.2, checked by ``cwltool --validate`` (single step, sweeps,
chains), shown to fail on a broken document, and one chain with a sweep run by cwltool."""

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml

from continuum_hub.workflows.cwl import export, to_cwl
from continuum_hub.workflows.spec import workflow_from_dict

pytestmark = pytest.mark.workflows

BIN = Path(sys.executable).parent
CWLTOOL = BIN / "cwltool"
TRICKY = "two\nlines; $(id) `id` 'q' \"qq\" \\"


def materialize(folder: Path, document: dict) -> None:
    """Create the files the workflow's defaults name, so that validation checks them too."""
    for spec in document["inputs"].values():
        default = spec.get("default")
        if isinstance(default, dict) and default.get("class") in ("File", "Directory"):
            path = folder / default["location"]
            if default["class"] == "Directory":
                path.mkdir(parents=True, exist_ok=True)
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.touch()


def validate(folder: Path, text: str) -> subprocess.CompletedProcess:
    path = folder / "workflow.cwl"
    path.write_text(text)
    materialize(folder, yaml.safe_load(text))
    return subprocess.run(
        [str(CWLTOOL), "--validate", str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=folder,
    )


def valid(folder: Path, text: str) -> None:
    result = validate(folder, text)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "workflow.cwl is valid CWL" in output
    assert "WARNING" not in output, output


def workflow(*steps: dict, **top):
    return workflow_from_dict({"name": "exported", **top, "steps": list(steps)})


def test_single_step(tmp_path):
    single = workflow(
        {
            "name": "analyse",
            "notebook": "analysis/a.ipynb",
            "parameters": {
                "n": 5,
                "ratio": 0.5,
                "label": TRICKY,
                "flag": True,
                "cuts": [1, 2],
                "names": ["a", "b"],
                "options": {"fast": True},
                "nothing": None,
            },
            "resources": {"site": "alpha", "cores": 4, "memory_gb": 8, "walltime": "2:30"},
            "inputs": ["data/events.csv", {"path": "data/calibration/", "copy": True}],
            "outputs": ["summary.json", "plots/"],
        },
        description="One notebook.",
    )
    valid(tmp_path, to_cwl(single))
    document = export(single)
    inputs = document["inputs"]
    assert inputs["analyse__label"] == {"type": "string", "default": TRICKY}
    assert inputs["analyse__n"]["type"] == "long"
    assert inputs["analyse__names"]["type"] == {"type": "array", "items": "string"}
    assert inputs["analyse__options"]["type"] == ["null", "Any"]
    assert inputs["analyse__notebook"]["default"] == {
        "class": "File",
        "location": "analysis/a.ipynb",
    }
    assert inputs["analyse__input_1"]["type"] == "Directory"
    tool = document["steps"]["analyse"]["run"]
    assert tool["requirements"]["ResourceRequirement"] == {"coresMin": 4, "ramMin": 8192}
    assert tool["requirements"]["ToolTimeLimit"] == {"timelimit": 9000}
    # the parameters travel in a file, never on papermill's command line
    assert tool["arguments"] == ["$(inputs.notebook.path)", "output.ipynb", "-f", "parameters.json"]
    listing = tool["requirements"]["InitialWorkDirRequirement"]["listing"]
    assert [entry["entryname"] for entry in listing] == [
        "parameters.json",
        "data/events.csv",
        "data/calibration",
    ]
    assert "scatter" not in document["steps"]["analyse"]
    assert set(document["outputs"]) == {
        "analyse__executed",
        "analyse__output_0",
        "analyse__output_1",
    }


def test_sweeps(tmp_path):
    swept = workflow(
        {
            "name": "grid",
            "notebook": "g.ipynb",
            "parameters": {"n": 1},
            "sweep": {"energy": [1.0, 2.5], "seed": [1, 2, 3]},
            "max_parallel": 2,
        },
        {
            "name": "members",
            "notebook": "m.ipynb",
            "parameters": {"tag": "all"},
            "sweep": [{"x": 1, "tag": "first"}, {"x": 2}],
        },
        {"name": "single-key", "notebook": "s.ipynb", "sweep": [{"k": "a"}, {"k": "b"}]},
    )
    valid(tmp_path, to_cwl(swept))
    steps = export(swept)["steps"]
    assert steps["grid"]["scatter"] == ["p_energy", "p_seed"]
    assert steps["grid"]["scatterMethod"] == "flat_crossproduct"
    assert steps["members"]["scatter"] == ["p_tag", "p_x"]
    assert steps["members"]["scatterMethod"] == "dotproduct"
    assert steps["single-key"]["scatter"] == ["p_k"] and "scatterMethod" not in steps["single-key"]
    inputs = export(swept)["inputs"]
    assert inputs["grid__energy"]["default"] == [1.0, 1.0, 1.0, 2.5, 2.5, 2.5]
    assert inputs["grid__n"] == {"type": "long", "default": 1}
    assert inputs["members__tag"]["default"] == ["first", "all"]


def test_chain(tmp_path):
    chain = workflow(
        {"name": "prepare", "notebook": "p.ipynb", "outputs": ["clean.parquet"]},
        {"name": "scan", "notebook": "s.ipynb", "sweep": {"e": [1, 2]}, "depends_on": ["prepare"]},
        {
            "name": "report",
            "notebook": "r.ipynb",
            "depends_on": ["scan", "prepare"],
            "inputs": ["clean.parquet", "notes.txt"],
        },
    )
    valid(tmp_path, to_cwl(chain))
    steps = export(chain)["steps"]
    assert steps["scan"]["in"]["after_prepare"] == "prepare/executed"
    assert steps["report"]["run"]["inputs"]["after_scan"] == "File[]"
    assert steps["report"]["run"]["inputs"]["after_prepare"] == "File"
    # an input another step declares as its output comes from that step
    assert steps["report"]["in"]["input_0"] == "prepare/output_0"
    assert steps["report"]["in"]["input_1"] == "report__input_1"
    assert export(chain)["outputs"]["scan__executed"]["type"] == "File[]"


def test_validation_catches_a_broken_document(tmp_path):
    document = export(workflow({"name": "a", "notebook": "a.ipynb", "parameters": {"n": 1}}))
    document["steps"]["a"]["in"]["p_n"] = "nowhere"
    result = validate(tmp_path, yaml.safe_dump(document))
    assert result.returncode != 0
    assert "nowhere" in result.stdout + result.stderr


def test_exported_chain_runs_in_cwltool(tmp_path):
    nb = nbformat.v4.new_notebook()
    parameters = nbformat.v4.new_code_cell('n: int = 0\nlabel: str = ""')
    parameters.metadata["tags"] = ["parameters"]
    nb.cells = [
        parameters,
        nbformat.v4.new_code_cell(
            "import json, pathlib\n"
            "pathlib.Path('result.json').write_text(json.dumps({'n': n, 'label': label}))"
        ),
    ]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, tmp_path / "step.ipynb")
    chain = workflow(
        {
            "name": "first",
            "notebook": "step.ipynb",
            "parameters": {"label": TRICKY},
            "sweep": {"n": [1, 2]},
            "outputs": ["result.json"],
        },
        {
            "name": "second",
            "notebook": "step.ipynb",
            "parameters": {"n": 7},
            "depends_on": ["first"],
            "outputs": ["result.json"],
        },
    )
    (tmp_path / "workflow.cwl").write_text(to_cwl(chain))
    result = subprocess.run(
        [
            str(CWLTOOL),
            "--quiet",
            "--outdir",
            str(tmp_path / "out"),
            "--tmpdir-prefix",
            f"{tmp_path}/tmp-",
            "workflow.cwl",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"},
    )
    assert result.returncode == 0, result.stderr
    outputs = json.loads(result.stdout)
    first = [json.loads(Path(f["path"]).read_text()) for f in outputs["first__output_0"]]
    assert first == [{"n": 1, "label": TRICKY}, {"n": 2, "label": TRICKY}]
    second = json.loads(Path(outputs["second__output_0"]["path"]).read_text())
    assert second == {"n": 7, "label": ""}
