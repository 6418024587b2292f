"""Notebook parameters: a real notebook's parameters cell read through papermill, submitted
values coerced to its types, and the value rules (names, JSON, sizes)."""

import math

import nbformat
import pytest

from continuum_hub.workflows.params import (
    MAX_TOTAL_BYTES,
    NotebookParameter,
    ParameterError,
    check_parameters,
    coerce,
    inspect,
)

CELL = """\
n_events: int = 1000  # events to simulate
energy: float = 6.5
label: str = "run A"
verbose: bool = False
cuts: list = [1, 2]
options: dict = {"fast": True}
threshold: Optional[float] = None
untyped = 3
anything = None
computed = 2 ** 10
"""


@pytest.fixture
def notebook(tmp_path):
    nb = nbformat.v4.new_notebook()
    parameters = nbformat.v4.new_code_cell(CELL)
    parameters.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_code_cell("from typing import Optional"), parameters]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    path = tmp_path / "scan.ipynb"
    nbformat.write(nb, path)
    return path


def test_inspect_reads_the_parameters_cell(notebook):
    found = {p.name: p for p in inspect(notebook)}
    assert list(found) == [
        "n_events",
        "energy",
        "label",
        "verbose",
        "cuts",
        "options",
        "threshold",
        "untyped",
        "anything",
        "computed",
    ]
    assert found["n_events"] == NotebookParameter(
        "n_events", "int", 1000, "1000", "events to simulate", False
    )
    assert (found["energy"].type, found["energy"].default) == ("float", 6.5)
    assert (found["label"].type, found["label"].default) == ("str", "run A")
    assert (found["verbose"].type, found["cuts"].type, found["options"].type) == (
        "bool",
        "list",
        "dict",
    )
    assert (found["threshold"].type, found["threshold"].nullable) == ("float", True)
    # no annotation: the type of the default's literal, or any value
    assert (found["untyped"].type, found["untyped"].default) == ("int", 3)
    assert (found["anything"].type, found["anything"].nullable) == ("None", True)
    assert (found["computed"].type, found["computed"].default_text) == ("None", "2 ** 10")


def test_inspect_refuses_a_file_that_is_no_notebook(tmp_path):
    path = tmp_path / "x.ipynb"
    path.write_text("not json")
    with pytest.raises(ParameterError, match="cannot read the parameters of"):
        inspect(path)


def test_coerce_converts_text_and_keeps_typed_values(notebook):
    declared = inspect(notebook)
    values = {
        "n_events": "42",
        "energy": 7,
        "label": "a\nb; $(id)",
        "verbose": "TRUE",
        "cuts": "[3, 4.5]",
        "options": {"fast": False},
        "threshold": None,
        "anything": [1, "x"],
    }
    assert coerce(values, declared) == {
        "n_events": 42,
        "energy": 7.0,
        "label": "a\nb; $(id)",
        "verbose": True,
        "cuts": [3, 4.5],
        "options": {"fast": False},
        "threshold": None,
        "anything": [1, "x"],
    }


@pytest.mark.parametrize(
    "values,error",
    [
        pytest.param(
            {"n_events": "abc"}, "parameter 'n_events': expected int, got 'abc'", id="int-text"
        ),
        pytest.param({"n_events": 2.5}, "parameter 'n_events': expected int, got 2.5", id="float"),
        pytest.param({"n_events": True}, "parameter 'n_events': expected int, got True", id="bool"),
        pytest.param({"n_events": None}, "parameter 'n_events': expected int, got None", id="null"),
        pytest.param({"energy": "nan"}, "parameter 'energy': expected float, got 'nan'", id="nan"),
        pytest.param({"label": 5}, "parameter 'label': expected str, got 5", id="str"),
        pytest.param({"verbose": "yes"}, "parameter 'verbose': expected bool, got 'yes'", id="b"),
        pytest.param({"cuts": "[1,"}, "parameter 'cuts': expected list, got '[1,'", id="json"),
        pytest.param({"cuts": {"a": 1}}, "parameter 'cuts': expected list, got {'a': 1}", id="l"),
        pytest.param({"options": "[]"}, "parameter 'options': expected dict, got '[]'", id="dict"),
        pytest.param(
            {"n_event": 1},
            "parameter 'n_event' is not in the notebook's parameters cell (it has: n_events, "
            "energy, label, verbose, cuts, options, threshold, untyped, anything, computed)",
            id="typo",
        ),
        pytest.param(
            {"label": "x" * 5000},
            "parameter 'label': the value is 5002 bytes as JSON, more than the limit of 4096",
            id="too-long",
        ),
    ],
)
def test_coerce_refuses(notebook, values, error):
    with pytest.raises(ParameterError) as caught:
        coerce(values, inspect(notebook))
    assert str(caught.value) == error


def test_unknown_names_allowed_when_asked(notebook):
    assert coerce({"extra": "x"}, inspect(notebook), allow_unknown=True) == {"extra": "x"}
    with pytest.raises(ParameterError, match="not a Python identifier"):
        coerce({"a-b": 1}, inspect(notebook), allow_unknown=True)


@pytest.mark.parametrize(
    "values,error",
    [
        pytest.param(
            {"ok": 1, "x y": 1}, "parameter name 'x y' is not a Python identifier", id="s"
        ),
        pytest.param({"énergie": 1}, "parameter name 'énergie' must be ASCII", id="ascii"),
        pytest.param({"lambda": 1}, "parameter name 'lambda' is a Python keyword", id="kw"),
        pytest.param({1: 1}, "parameter name 1 is not a Python identifier", id="number"),
        pytest.param({"x": math.inf}, "parameter 'x': inf is not a JSON number", id="inf"),
        pytest.param(
            {"x": {1, 2}},
            "parameter 'x': {1, 2} is not a JSON value (quote it to pass a string)",
            id="set",
        ),
        pytest.param({"x": {1: 2}}, "parameter 'x': mapping keys must be strings", id="keys"),
        pytest.param(
            {"x": {"a\x00": 2}}, "parameter 'x': the value contains a NUL character", id="nul-key"
        ),
        pytest.param(
            {"x": list(range(101))},
            "parameter 'x': 101 items, more than the limit of 100",
            id="long-list",
        ),
        pytest.param(
            {f"p{i}": "y" * 4000 for i in range(17)},
            f"the parameters are 68034 bytes as JSON together, more than the limit of "
            f"{MAX_TOTAL_BYTES}",
            id="total",
        ),
        pytest.param([1], "parameters must be a mapping of names to values, not [1]", id="list"),
    ],
)
def test_check_parameters_refuses(values, error):
    with pytest.raises(ParameterError) as caught:
        check_parameters(values)
    assert str(caught.value) == error


def test_check_parameters_accepts_json_values():
    values = {
        "none": None,
        "flag": False,
        "count": -3,
        "ratio": 0.25,
        "text": "x" * 4094,
        "shell": "'; rm -rf / #\n`id`",
        "grid": [[1, 2], [3, 4]],
        "options": {"a": [1, 2], "b": None},
        "match": 1,  # a soft keyword is a valid name
        "_private": 2,
    }
    assert check_parameters(values) == values
