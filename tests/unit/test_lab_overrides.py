"""Our JupyterLab defaults (``extensions/jupyter-config/lab-settings``), as JupyterLab reads them.

The wheel installs the folder as ``<env>/share/jupyter/lab/settings``; jupyterlab_server's own
loader merges ``overrides.d/*.json`` (ours) and then a facility's ``overrides.json``.
"""

from __future__ import annotations

import json
import shutil
import sys
import tomllib
from pathlib import Path

import jsonschema
import pytest
from jupyterlab_server.settings_utils import _get_overrides

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = ROOT / "extensions/jupyter-config/lab-settings"
OURS = SETTINGS / "overrides.d/continuum-hub.json"
SCHEMAS = Path(sys.prefix) / "share/jupyter/lab/schemas"
NEWS = "@jupyterlab/apputils-extension:notification"


def test_the_wheel_installs_them_where_jupyterlab_reads_settings() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    shared = pyproject["tool"]["hatch"]["build"]["targets"]["wheel"]["shared-data"]
    assert shared["extensions/jupyter-config/lab-settings"] == "share/jupyter/lab/settings"
    installed = Path(sys.prefix) / "share/jupyter/lab/settings/overrides.d/continuum-hub.json"
    assert json.loads(installed.read_text()) == json.loads(OURS.read_text())


@pytest.mark.parametrize("plugin", sorted(json.loads(OURS.read_text())))
def test_each_default_is_a_valid_setting_of_the_installed_jupyterlab(plugin: str) -> None:
    package, name = plugin.split(":")
    schema = json.loads((SCHEMAS / package / f"{name}.json").read_text())
    values = json.loads(OURS.read_text())[plugin]
    assert set(values) <= set(schema["properties"]), "a key JupyterLab does not know"
    jsonschema.validate(values, schema)


def test_the_news_prompt_is_off_and_a_facility_overrides_win(tmp_path: Path) -> None:
    settings = tmp_path / "settings"
    shutil.copytree(SETTINGS, settings)
    overrides, error = _get_overrides(str(settings))
    assert not error
    assert overrides[NEWS]["fetchNews"] == "false"  # "none" would ask every new user
    assert overrides[NEWS]["checkForUpdates"] is False

    (settings / "overrides.json").write_text(json.dumps({NEWS: {"fetchNews": "true"}}))
    overrides, error = _get_overrides(str(settings))
    assert not error
    assert overrides[NEWS] == {"fetchNews": "true", "checkForUpdates": False}
