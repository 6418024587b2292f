"""The workflow file: what it accepts, what it refuses (with file:line:col), sweeps, round trip.
Notebook paths on the disk (symbolic links, FIFOs, …) are in test_workflow_snapshot.py."""

from pathlib import Path

import pytest
import yaml

from continuum_hub.workflows.spec import (
    Input,
    Resources,
    WorkflowError,
    WorkflowLimits,
    expand_sweep,
    load_workflow,
    schema,
    to_yaml,
    workflow_from_dict,
)
from continuum_spawners.registry_schema import ENVIRONMENT_NAME, NAME

FULL = """\
name: energy-scan
description: A scan over beam energies.
schedule: "0 3 * * mon-fri"
max_credential_days: 5
steps:
  - name: simulate
    notebook: analysis/simulate.ipynb
    parameters: {n_events: 10000, label: "run A", cuts: [1.5, 2.5], options: {fast: true}}
    sweep: {energy: [1.0, 2.0, 4.0], seed: [1, 2]}
    max_parallel: 3
    resources: {site: alpha, partition: batch, cores: 2, memory_gb: 4, walltime: "1:30"}
    outputs: [results/, summary.json]
    retries: 2
    allow_move: true
  - name: summarize
    notebook: analysis/summarize.ipynb
    depends_on: [simulate]
    parameters:
      title: |
        two lines; $(rm -rf ~) `id` "quoted" 'single' \\back
        and a second one
    inputs: [data/calibration.json, {path: data/raw/, copy: true}]
  - name: members
    notebook: m.ipynb
    parameters: {n_events: 5}
    sweep: [{n_events: 1, tag: x}, {tag: y}]
"""


def write(folder: Path, text: str) -> Path:
    path = folder / "wf.yaml"
    path.write_text(text)
    return path


def test_full_example_loads():
    workflow = workflow_from_dict(yaml.safe_load(FULL))
    simulate, summarize, members = workflow.steps
    assert workflow.schedule == "0 3 * * mon-fri"
    assert workflow.max_credential_days == 5
    assert simulate.resources == Resources("alpha", "batch", 2, 4, None, "1:30", None)
    assert simulate.resources.as_user_options() == {
        "site": "alpha",
        "partition": "batch",
        "cores": 2,
        "memory_gb": 4,
        "walltime": "1:30",
    }
    assert simulate.sweep_size == 6 and simulate.max_parallel == 3
    assert simulate.outputs == ("results/", "summary.json")
    assert summarize.inputs == (Input("data/calibration.json"), Input("data/raw/", copy=True))
    # shell metacharacters, quotes, backslashes and newlines are values like any other
    assert summarize.parameters["title"] == (
        "two lines; $(rm -rf ~) `id` \"quoted\" 'single' \\back\nand a second one\n"
    )
    assert [step.name for step in workflow.order()] == ["simulate", "summarize", "members"]
    assert members.sweep_size == 2


def test_round_trip_through_yaml(tmp_path):
    workflow = load_workflow(write(tmp_path, FULL))
    text = to_yaml(workflow)
    assert load_workflow(write(tmp_path, text)) == workflow
    assert yaml.safe_load(text)["steps"][1]["inputs"] == [
        "data/calibration.json",
        {"path": "data/raw/", "copy": True},
    ]


def test_expand_sweep():
    simulate, summarize, members = workflow_from_dict(yaml.safe_load(FULL)).steps
    grid = expand_sweep(simulate)
    assert [(m["energy"], m["seed"]) for m in grid] == [
        (1.0, 1),
        (1.0, 2),
        (2.0, 1),
        (2.0, 2),
        (4.0, 1),
        (4.0, 2),
    ]
    assert all(m["n_events"] == 10000 and m["cuts"] == [1.5, 2.5] for m in grid)
    assert expand_sweep(members) == [{"n_events": 1, "tag": "x"}, {"n_events": 5, "tag": "y"}]
    assert expand_sweep(summarize) == [dict(summarize.parameters)]


def test_order_puts_dependencies_first():
    document = {
        "name": "w",
        "steps": [
            {"name": "c", "notebook": "c.ipynb", "depends_on": ["b", "a"]},
            {"name": "b", "notebook": "b.ipynb", "depends_on": ["a"]},
            {"name": "a", "notebook": "a.ipynb"},
            {"name": "d", "notebook": "d.ipynb"},
        ],
    }
    assert [s.name for s in workflow_from_dict(document).order()] == ["a", "b", "c", "d"]


def test_limits_are_configurable():
    document = {
        "name": "w",
        "schedule": "*/5 * * * *",
        "steps": [{"name": "a", "notebook": "a.ipynb", "sweep": {"x": [1, 2, 3]}}],
    }
    limits = WorkflowLimits(max_sweep_members=3, min_schedule_minutes=5)
    assert workflow_from_dict(document, limits).steps[0].sweep_size == 3
    with pytest.raises(WorkflowError, match="3 members, more than the limit of 2"):
        workflow_from_dict(document, WorkflowLimits(max_sweep_members=2, min_schedule_minutes=5))
    with pytest.raises(WorkflowError, match="runs 5 minutes apart"):
        workflow_from_dict(document, WorkflowLimits(max_sweep_members=3))


def test_schema_names_follow_the_site_registry():
    """The JSON schema (shipped for the lab UI) spells the spawner's name rules the same."""
    resources = schema()["$defs"]["resources"]["properties"]
    assert resources["site"]["pattern"] == NAME
    assert resources["environment"]["pattern"] == ENVIRONMENT_NAME


@pytest.mark.parametrize(
    "schedule",
    ["0 3 * * *", "*/10 * * * *", "0 */2 * * 1-5", "30 8 1 jan,jul *", "@daily", "@hourly"],
)
def test_schedules_accepted(schedule):
    document = {"name": "w", "schedule": schedule, "steps": [{"name": "a", "notebook": "a.ipynb"}]}
    assert workflow_from_dict(document).schedule == schedule


STEP = "name: scan\nsteps:\n  - name: a\n    notebook: a.ipynb\n"
TEN_KB = "x" * 10_000
THOUSAND = ", ".join(map(str, range(1000)))
MILLION = f"{{a: [{THOUSAND}], b: [{THOUSAND}]}}"
BIG = "\n".join(f"      p{i}: {'y' * 3500}" for i in range(20))
CHAIN = """\
name: scan
steps:
  - {name: a, notebook: a.ipynb, depends_on: [c]}
  - {name: b, notebook: b.ipynb, depends_on: [a]}
  - {name: c, notebook: c.ipynb, depends_on: [b]}
"""


@pytest.mark.parametrize(
    "text,error",
    [
        pytest.param(
            STEP + '    parameters: {"n; rm -rf ~": 1}\n',
            "wf.yaml:5:18: at steps/0/parameters: parameter name 'n; rm -rf ~' is not a "
            "Python identifier",
            id="shell-metacharacters-in-a-parameter-name",
        ),
        pytest.param(
            STEP + "    parameters: {class: 1}\n",
            "wf.yaml:5:18: at steps/0/parameters: parameter name 'class' is a Python keyword",
            id="keyword-as-a-name",
        ),
        pytest.param(
            STEP + "    parameters: {__builtins__: 1}\n",
            "wf.yaml:5:18: at steps/0/parameters: parameter name '__builtins__' is reserved "
            "(dunder names are Python's)",
            id="dunder-name",
        ),
        pytest.param(
            STEP + f"    parameters: {{label: {TEN_KB}}}\n",
            "wf.yaml:5:25: at steps/0/parameters/label: parameter 'label': the value is 10002 "
            "bytes as JSON, more than the limit of 4096",
            id="a-10-kB-value",
        ),
        pytest.param(
            STEP + f"    parameters:\n{BIG}\n",
            "wf.yaml:6:7: at steps/0/parameters: the parameters are 70040 bytes as JSON "
            "together, more than the limit of 65536",
            id="parameters-over-64-KiB",
        ),
        pytest.param(
            STEP + "    parameters: {day: 2024-01-01}\n",
            "wf.yaml:5:23: at steps/0/parameters/day: parameter 'day': datetime.date(2024, 1, 1) "
            "is not a JSON value (quote it to pass a string)",
            id="wrong-type-date",
        ),
        pytest.param(
            STEP + "    parameters: {x: .nan}\n",
            "wf.yaml:5:21: at steps/0/parameters/x: parameter 'x': nan is not a JSON number",
            id="wrong-type-nan",
        ),
        pytest.param(
            STEP + '    parameters: {x: "a\\0b"}\n',
            "wf.yaml:5:21: at steps/0/parameters/x: parameter 'x': the value contains a NUL "
            "character",
            id="nul-in-a-value",
        ),
        pytest.param(
            STEP + "    parameters: {x: [[[1]]]}\n",
            "wf.yaml:5:21: at steps/0/parameters/x: parameter 'x': lists and mappings nest at "
            "most 2 deep",
            id="nested-too-deep",
        ),
        pytest.param(
            STEP + "    resources: {cores: two}\n",
            "wf.yaml:5:24: at steps/0/resources/cores: 'two' is not of type 'integer'",
            id="wrong-type-cores",
        ),
        pytest.param(
            STEP + "    retries: 9\n",
            "wf.yaml:5:14: at steps/0/retries: 9 is greater than the maximum of 5",
            id="too-many-retries",
        ),
        pytest.param(
            STEP + "    outputs: [results/../../../etc/cron.d/x]\n",
            "wf.yaml:5:15: at steps/0/outputs/0: output 'results/../../../etc/cron.d/x' "
            "contains '..': a path may not leave the run's folder",
            id="dot-dot-in-outputs",
        ),
        pytest.param(
            STEP + "    inputs: [/etc/shadow]\n",
            "wf.yaml:5:14: at steps/0/inputs/0: input '/etc/shadow' is absolute: give a path "
            "relative to your home folder",
            id="absolute-input",
        ),
        pytest.param(
            "name: scan\nsteps:\n  - name: a\n    notebook: /home/bob/secret.ipynb\n",
            "wf.yaml:4:15: at steps/0/notebook: notebook '/home/bob/secret.ipynb' is absolute: "
            "give a path relative to your home folder",
            id="absolute-notebook-path",
        ),
        pytest.param(
            "name: scan\nsteps:\n  - name: a\n    notebook: ~bob/secret.ipynb\n",
            "wf.yaml:4:15: at steps/0/notebook: notebook '~bob/secret.ipynb' is absolute: "
            "give a path relative to your home folder",
            id="another-users-home",
        ),
        pytest.param(
            "name: scan\nsteps:\n  - name: a\n    notebook: ../bob/secret.ipynb\n",
            "wf.yaml:4:15: at steps/0/notebook: notebook '../bob/secret.ipynb' contains '..': "
            "a path may not leave your home folder",
            id="dot-dot-notebook",
        ),
        pytest.param(
            STEP + f"    sweep: {MILLION}\n",
            "wf.yaml:5:12: at steps/0/sweep: the sweep has 1000000 members, more than the "
            "limit of 1000",
            id="a-sweep-of-a-million",
        ),
        pytest.param(
            STEP + '    sweep: [{"a b": 1}]\n',
            "wf.yaml:5:14: at steps/0/sweep/0: parameter name 'a b' is not a Python identifier",
            id="bad-name-in-a-sweep-member",
        ),
        pytest.param(
            STEP + "    sweep: {x: [1, 2]}\n    max_parallel: 0\n",
            "wf.yaml:6:19: at steps/0/max_parallel: 0 is less than the minimum of 1",
            id="no-parallelism",
        ),
        pytest.param(
            STEP + "    max_parallel: 2\n",
            "wf.yaml:5:5: at steps/0/max_parallel: max_parallel needs a sweep",
            id="max-parallel-without-sweep",
        ),
        pytest.param(
            'schedule: "* * * * *"\n' + STEP,
            "wf.yaml:1:11: at schedule: schedule '* * * * *' runs every minute; runs must be "
            "at least 10 minutes apart",
            id="cron-every-minute",
        ),
        pytest.param(
            'schedule: "* * * * * *"\n' + STEP,
            "wf.yaml:1:11: at schedule: schedule '* * * * * *' has 6 fields: cron takes 5 "
            "(minute hour day-of-month month day-of-week, in UTC); seconds are not supported",
            id="cron-every-second",
        ),
        pytest.param(
            'schedule: "55,0 23,0 * * *"\n' + STEP,
            "wf.yaml:1:11: at schedule: schedule '55,0 23,0 * * *' runs 5 minutes apart; runs "
            "must be at least 10 minutes apart",
            id="cron-burst-across-midnight",
        ),
        pytest.param(
            'schedule: "0 0 30 2 *"\n' + STEP,
            "wf.yaml:1:11: at schedule: schedule '0 0 30 2 *' never runs",
            id="cron-never",
        ),
        pytest.param(
            CHAIN,
            "wf.yaml:3:46: at steps/0/depends_on: the dependencies form a cycle: a → c → b → a",
            id="a-cycle",
        ),
        pytest.param(
            STEP + "  - {name: b, notebook: b.ipynb, depends_on: [nope]}\n",
            "wf.yaml:5:47: at steps/1/depends_on/0: unknown step 'nope' (steps: a, b)",
            id="unknown-depends-on",
        ),
        pytest.param(
            STEP + "    depends_on: [a]\n",
            "wf.yaml:5:18: at steps/0/depends_on/0: step 'a' depends on itself",
            id="self-dependency",
        ),
        pytest.param(
            STEP + "  - {name: a, notebook: b.ipynb}\n",
            "wf.yaml:5:12: at steps/1/name: step name 'a' is used twice",
            id="duplicate-step-name",
        ),
        pytest.param(
            STEP + "    surprise: 1\n",
            "wf.yaml:5:5: at steps/0: Additional properties are not allowed ('surprise' was "
            "unexpected)",
            id="unknown-field",
        ),
        pytest.param(
            "max_credential_days: 30\n" + STEP,
            "wf.yaml:1:22: at max_credential_days: 30 days is more than the limit of 7",
            id="credential-too-long",
        ),
        pytest.param(
            "name: scan\nsteps: [\n",
            "wf.yaml:3:1: not valid YAML: expected the node content, but found '<stream end>'",
            id="not-yaml",
        ),
    ],
)
def test_refused_with_its_place(tmp_path, text, error):
    with pytest.raises(WorkflowError) as caught:
        load_workflow(write(tmp_path, text))
    assert str(caught.value) == f"{tmp_path}/{error}"


def test_values_are_kept_verbatim():
    tricky = {
        "cmd": "$(rm -rf ~); `id` && echo 'x' | tee /tmp/y > /dev/null \\",
        "lines": "first\nsecond\r\nthird\t\x01",
        "quotes": "\"\"\" ''' \\\" \\'",
        "unicode": "énergie → ∞",
    }
    document = {"name": "w", "steps": [{"name": "a", "notebook": "a.ipynb", "parameters": tricky}]}
    step = workflow_from_dict(document).steps[0]
    assert expand_sweep(step) == [tricky]
    again = workflow_from_dict(yaml.safe_load(to_yaml(workflow_from_dict(document))))
    assert again.steps[0].parameters == tricky


def test_workflow_schema_file_is_valid_json_schema():
    import jsonschema

    jsonschema.Draft202012Validator.check_schema(schema())
    assert schema()["description"].startswith("A workflow file")


def test_readme_example_is_a_valid_workflow():
    """The README's section is the reference for the file: its example must load."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## Batch workflows\n", 1)[1]
    example = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    workflow = workflow_from_dict(yaml.safe_load(example))
    assert [step.name for step in workflow.order()] == ["simulate", "summarize"]
    assert workflow.steps[0].sweep_size == 6
