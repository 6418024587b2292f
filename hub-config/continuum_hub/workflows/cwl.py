"""Export a workflow as a CWL v1.2 ``Workflow``, to run it on other CWL engines without us.

Each notebook step becomes a ``CommandLineTool`` running papermill::

    papermill --no-progress-bar NOTEBOOK output.ipynb -f parameters.json

with the step's parameters as tool inputs.  As in our own jobs the values never reach a command
line: ``parameters.json`` is written into the tool's working folder (``InitialWorkDirRequirement``,
a JavaScript expression serializing the inputs).  Declared inputs are staged at their paths
relative to that folder, so the notebook reads them where it does at home; declared outputs are
collected by glob.  A sweep is a ``scatter`` over the swept parameters (``flat_crossproduct``
for a grid, ``dotproduct`` for a member list, members lacking a value take the step's); a
dependency wires the earlier step's executed notebook into the later step (``after_<step>``),
and a declared input equal to an earlier step's declared output is taken from that step.
Cores, memory and walltime become ``ResourceRequirement`` / ``ToolTimeLimit``.  Site,
partition, GPUs and retries are ours and appear in ``doc`` only (CWL has no portable GPU
requirement); the schedule does not travel (a CWL engine runs a workflow once).

Workflow inputs are named ``<step>__<parameter>``, ``<step>__notebook`` and
``<step>__input_<i>``; their defaults are the file's values, with files relative to the exported
document's folder (write it into the home folder, or override them in a job file).
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from .spec import Step, Workflow, expand_sweep

CWL_VERSION = "v1.2"
_SCALARS = {bool: "boolean", int: "long", float: "double", str: "string"}


def _type(values: list[Any]) -> Any:
    """The CWL type of a parameter whose values (one per member) are ``values``."""
    kinds = {type(value) for value in values if value is not None}
    if kinds == {int, float}:
        kinds = {float}
    kind: Any = "Any"  # mappings, mixed lists, nothing but None: any JSON value
    if len(kinds) == 1 and (only := next(iter(kinds))) in _SCALARS:
        kind = _SCALARS[only]
    elif kinds == {list}:
        items = {type(item) for value in values if value for item in value}
        if len(items) == 1 and (item := next(iter(items))) in _SCALARS:
            kind = {"type": "array", "items": _SCALARS[item]}
    return ["null", kind] if kind == "Any" or None in values else kind


def _file(path: str) -> dict[str, str]:
    kind = "Directory" if path.endswith("/") else "File"
    return {"class": kind, "location": path.rstrip("/")}


def _tool(step: Step, types: dict[str, Any], upstream: dict[str, Any]) -> dict:
    """The ``CommandLineTool`` of ``step``: ``types`` of its parameters by name, ``upstream``
    the types of its dependencies' executed notebooks by step name."""
    names = list(types)
    inputs: dict[str, Any] = {"notebook": "File"}
    inputs.update({f"p_{name}": {"type": types[name]} for name in names})
    inputs.update({f"after_{dep}": kind for dep, kind in upstream.items()})
    listing: list[dict[str, Any]] = [
        {
            "entryname": "parameters.json",
            "entry": "${return JSON.stringify({"
            + ", ".join(f'"{name}": inputs.p_{name}' for name in names)
            + "});}",
        }
    ]
    for index, item in enumerate(step.inputs):
        inputs[f"input_{index}"] = "Directory" if item.path.endswith("/") else "File"
        listing.append({"entryname": item.path.rstrip("/"), "entry": f"$(inputs.input_{index})"})
    outputs: dict[str, Any] = {
        "executed": {"type": "File", "outputBinding": {"glob": "output.ipynb"}}
    }
    for index, path in enumerate(step.outputs):
        kind = "Directory" if path.endswith("/") else "File"
        outputs[f"output_{index}"] = {"type": kind, "outputBinding": {"glob": path.rstrip("/")}}
    resources = step.resources
    requirements: dict[str, Any] = {
        "InlineJavascriptRequirement": {},
        "InitialWorkDirRequirement": {"listing": listing},
    }
    limits = {"coresMin": resources.cores, "ramMin": (resources.memory_gb or 0) * 1024 or None}
    if any(limits.values()):
        requirements["ResourceRequirement"] = {k: v for k, v in limits.items() if v}
    walltime = resources.walltime
    if isinstance(walltime, str):
        hours, minutes = walltime.split(":")
        walltime = int(hours) * 60 + int(minutes)
    if walltime:
        requirements["ToolTimeLimit"] = {"timelimit": walltime * 60}
    return {
        "class": "CommandLineTool",
        "baseCommand": ["papermill", "--no-progress-bar"],
        "arguments": ["$(inputs.notebook.path)", "output.ipynb", "-f", "parameters.json"],
        "requirements": requirements,
        "hints": {"SoftwareRequirement": {"packages": [{"package": "papermill"}]}},
        "inputs": inputs,
        "outputs": outputs,
    }


def _doc(step: Step) -> str:
    where = step.resources.site or "any site"
    if step.resources.partition:
        where += f", partition {step.resources.partition}"
    text = f"Notebook {step.notebook} on {where}"
    if step.resources.gpus:
        text += f" with {step.resources.gpus} GPU(s)"
    if step.retries:
        text += f"; retried up to {step.retries} times" + (
            ", also elsewhere" if step.allow_move else ""
        )
    return text + "."


def _parameters(step: Step) -> tuple[dict[str, Any], list[str], dict[str, Any]]:
    """The step's parameters: CWL types by name, the swept names, workflow inputs (defaults)."""
    members = expand_sweep(step)
    names = sorted({name for member in members for name in member})
    if isinstance(step.sweep, dict):
        swept = list(step.sweep)
    else:
        swept = sorted({name for member in step.sweep or [] for name in member})
    types, inputs = {}, {}
    for name in names:
        values = [member.get(name) for member in members]
        types[name] = _type(values)
        if name in swept:
            kind = {"type": "array", "items": types[name]}
            inputs[f"{step.name}__{name}"] = {"type": kind, "default": values}
        else:
            inputs[f"{step.name}__{name}"] = {"type": types[name], "default": values[0]}
    return types, swept, inputs


def _outputs(step: Step, scattered: bool) -> dict[str, Any]:
    """The workflow outputs of ``step``: its executed notebook(s) and declared outputs."""
    array = "[]" if scattered else ""
    outputs = {
        f"{step.name}__executed": {"type": f"File{array}", "outputSource": f"{step.name}/executed"}
    }
    for index, path in enumerate(step.outputs):
        kind = "Directory" if path.endswith("/") else "File"
        outputs[f"{step.name}__output_{index}"] = {
            "type": f"{kind}{array}",
            "outputSource": f"{step.name}/output_{index}",
        }
    return outputs


def export(workflow: Workflow) -> dict[str, Any]:
    """The CWL document (a ``Workflow`` with its tools inline) of ``workflow``."""
    inputs: dict[str, Any] = {}
    outputs: dict[str, Any] = {}
    steps: dict[str, Any] = {}
    scattered: set[str] = set()
    produced: dict[str, str] = {}  # declared output path → "step/output_i"
    for step in workflow.order():
        types, swept, parameter_inputs = _parameters(step)
        inputs[f"{step.name}__notebook"] = {"type": "File", "default": _file(step.notebook)}
        inputs.update(parameter_inputs)
        run_in: dict[str, Any] = {"notebook": f"{step.name}__notebook"}
        run_in.update({f"p_{name}": f"{step.name}__{name}" for name in types})
        run_in.update({f"after_{dep}": f"{dep}/executed" for dep in step.depends_on})
        for index, item in enumerate(step.inputs):
            source = produced.get(item.path)
            if source is None:
                source = f"{step.name}__input_{index}"
                kind = "Directory" if item.path.endswith("/") else "File"
                inputs[source] = {"type": kind, "default": _file(item.path)}
            run_in[f"input_{index}"] = source
        upstream = {dep: "File[]" if dep in scattered else "File" for dep in step.depends_on}
        entry: dict[str, Any] = {
            "doc": _doc(step),
            "run": _tool(step, types, upstream),
            "in": run_in,
            "out": ["executed"] + [f"output_{i}" for i in range(len(step.outputs))],
        }
        if swept:
            entry["scatter"] = [f"p_{name}" for name in swept]
            if len(swept) > 1:
                grid = isinstance(step.sweep, dict)
                entry["scatterMethod"] = "flat_crossproduct" if grid else "dotproduct"
            scattered.add(step.name)
        else:
            # a scattered step's outputs are arrays: only a single job's feed later inputs
            produced.update(
                {path: f"{step.name}/output_{i}" for i, path in enumerate(step.outputs)}
            )
        steps[step.name] = entry
        outputs.update(_outputs(step, step.name in scattered))
    requirements: dict[str, Any] = {"InlineJavascriptRequirement": {}}
    if scattered:
        requirements["ScatterFeatureRequirement"] = {}
    return {
        "cwlVersion": CWL_VERSION,
        "class": "Workflow",
        "label": workflow.name,
        "doc": workflow.description or f"Continuum Hub workflow {workflow.name}",
        "requirements": requirements,
        "inputs": inputs,
        "outputs": outputs,
        "steps": steps,
    }


def to_cwl(workflow: Workflow) -> str:
    """The CWL document of ``workflow`` as YAML text."""
    # through JSON: types shared between inputs must not become YAML anchors and aliases
    document = json.loads(json.dumps(export(workflow)))
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)
