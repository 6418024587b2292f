"""``explore`` in JupyterLab in Chromium: a lazily generated 10^7-element dataset on a Dask cluster.

A real JupyterLab server (the installed extensions, panel's and pyviz's included) and a real
kernel: a notebook cell starts a ``LocalCluster`` and its client, builds two lazy variables of
10^7 elements each and calls ``explore``. The image, the histogram and the line naming the
cluster appear; choosing the other variable and zooming with the mouse wheel re-aggregate on the
cluster (the line's bytes touched shrink with the zoom). The Dask Gateway path (a cluster of the
hub's gateway on ``alpha``) is not part of this test yet.
"""

from __future__ import annotations

import re

import explore_lab
import pytest
from lab_support import LabServer
from playwright.sync_api import Page, expect

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.explore,
    pytest.mark.integration,
    pytest.mark.lab,
]

CODE = """\
import dask.array as da, numpy as np, xarray as xr
from distributed import Client, LocalCluster
from continuum_widgets import explore
client = Client(LocalCluster(n_workers=2, threads_per_worker=1, processes=False, \
dashboard_address=None))
rng = da.random.default_rng(0)
shape, chunks = (4, 1250, 2000), (1, 625, 1000)
ds = xr.Dataset(
    {"a": (("time", "y", "x"), rng.random(shape, chunks=chunks)),
     "b": (("time", "y", "x"), rng.normal(5, 1, shape, chunks=chunks))},
    coords={"time": np.arange(4), "y": np.arange(1250.0), "x": np.arange(2000.0)})
explore(ds)
"""


lab = explore_lab.lab


def touched(line: str) -> float:
    """The bytes touched that the cluster line reports, in MB."""
    match = re.search(r"([\d.]+) (kB|MB|GB) touched", line)
    assert match, line
    return float(match[1]) * {"kB": 1e-3, "MB": 1.0, "GB": 1e3}[match[2]]


def test_explore_shows_changes_variable_and_zooms_on_a_cluster(page: Page, lab: LabServer) -> None:
    page.goto(f"{lab.url}lab?token={lab.token}")
    page.locator('.jp-LauncherCard[data-category="Notebook"]').first.click()
    expect(page.locator(".jp-StatusBar-Widget", has_text="| Idle")).to_be_visible(timeout=60_000)
    cell = page.locator(".jp-Notebook .jp-Cell .cm-content").first
    cell.click()
    page.keyboard.insert_text(CODE)
    page.keyboard.press("Shift+Enter")

    output = page.locator(".jp-Notebook .jp-OutputArea-output").last
    line = output.get_by_text(re.compile(r"aggregating on \d+ CPU workers"))
    expect(line).to_be_visible(timeout=60_000)
    assert "2 workers" in line.inner_text() and "20.0 MB touched" in line.inner_text()
    expect(output.locator("canvas").first).to_be_visible()  # Bokeh draws image and histogram
    expect(output.locator("progress")).to_be_attached()  # the progress indicator, idle
    expect(output.get_by_text(re.compile(r"^ready: 20\.0 MB in [\d.]+ s$"))).to_be_visible()

    output.locator("select").first.select_option("b")
    expect(output.locator(".bk-Canvas").first).to_be_visible()
    expect(line).to_contain_text("20.0 MB touched")
    before = line.inner_text()
    full = touched(before)

    image = output.locator(".bk-Canvas").first
    box = image.bounding_box()
    assert box is not None
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    for _ in range(6):
        page.mouse.wheel(0, -200)
    # the line is redrawn by the re-aggregation at the zoomed extent (inside Bokeh's shadow DOM,
    # which Playwright's locators pierce)
    expect(line).not_to_have_text(before, timeout=30_000)
    assert touched(line.inner_text()) < full
