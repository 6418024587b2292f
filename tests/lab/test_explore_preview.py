"""The standalone view: a notebook ending in ``explore(...).servable()`` as a page of its own.

panel's Jupyter server extension (installed with panel, enabled in the environment's
``jupyter_server_config.d``) serves ``<server>/panel-preview/render/<notebook>`` behind the
server's own authentication: a request without the server's token is sent to its login page,
one with it gets the app's page (its document then arrives over a websocket from a kernel).
"""

from __future__ import annotations

import explore_lab
import nbformat
import pytest
import requests
from lab_support import LabServer

pytestmark = [pytest.mark.explore, pytest.mark.integration, pytest.mark.lab]

NOTEBOOK = """\
import numpy as np, xarray as xr
from continuum_widgets import explore
cube = xr.DataArray(np.random.default_rng(0).random((3, 200, 300)), dims=("t", "y", "x"), name="v")
explore(cube).servable()
"""


lab = explore_lab.lab


def test_the_view_is_served_behind_the_servers_own_login(lab: LabServer) -> None:
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(NOTEBOOK)])
    saved = requests.put(
        f"{lab.url}api/contents/view.ipynb",
        json={"type": "notebook", "content": notebook},
        headers={"Authorization": f"token {lab.token}"},
        timeout=30,
    )
    assert saved.status_code == 201, saved.text
    url = f"{lab.url}panel-preview/render/view.ipynb"
    anonymous = requests.get(url, allow_redirects=False, timeout=60)
    assert anonymous.status_code == 302
    assert anonymous.headers["Location"].startswith("/user/alice/login?next=")
    # the page is rendered by running the notebook: slower than lab.get's 10 s under load
    page = requests.get(url, headers={"Authorization": f"token {lab.token}"}, timeout=120)
    assert page.status_code == 200
    assert "<title>Panel Application</title>" in page.text and "Bokeh" in page.text
