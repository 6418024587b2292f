"""``explore`` in JupyterLab in Chromium: a 10^8-element lazy dataset on a Dask Gateway cluster.

A real JupyterLab server (the installed extensions, panel's and pyviz's included) with the
environment a spawned server on ``alpha`` gets (the hub's Dask Gateway, alice's hub token) and a
real kernel: alice's notebook cell asks the hub's gateway for a cluster on ``alpha`` (Slurm
jobs), builds two lazily generated variables of 10^8 elements each (10,000 × 10,000) and calls
``explore``. The image, the histogram and the line naming the cluster and its workers appear;
choosing the other variable shows the progress of its aggregation on the cluster (blocks done
of 16) and then its image; zooming with the mouse wheel re-aggregates at the new extent (the
line's bytes touched shrink).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from lab_support import JOB_ENV, LabServer, isolated_jupyter_env, start_lab_server
from playwright.sync_api import Page, expect

from fixtures.gateway import HubGateway

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.explore,
    pytest.mark.gateway,
    pytest.mark.integration,
    pytest.mark.lab,
]

CODE = """\
import dask.array as da, numpy as np, xarray as xr
from dask_gateway import Gateway
from continuum_widgets import explore
cluster = Gateway().new_cluster(site="alpha", worker_cores=1, worker_memory_gb=1)
cluster.scale(2)
client = cluster.get_client()
client.wait_for_workers(2, timeout=240)
rng = da.random.default_rng(0)
shape, chunks = (10_000, 10_000), (2_500, 2_500)
ds = xr.Dataset(
    {"a": (("y", "x"), rng.random(shape, chunks=chunks)),
     "b": (("y", "x"), rng.normal(5, 1, shape, chunks=chunks))},
    coords={"y": np.arange(10_000.0), "x": np.arange(10_000.0)})
explore(ds)
"""


@pytest.fixture(scope="module")
def lab(gateway: HubGateway, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    """alice's JupyterLab as a server spawned on alpha gets it: the gateway's environment."""
    home = tmp_path_factory.mktemp("explore-lab-gateway")
    env = isolated_jupyter_env(home, **JOB_ENV, **gateway.environment(gateway.token("alice")))
    server = start_lab_server(Path(sys.executable), home, env, app="jupyterlab")
    try:
        yield server
    finally:
        server.process.stop()
        gateway.stop_clusters("alice")


def touched(line: str) -> float:
    """The bytes touched that the cluster line reports, in MB."""
    match = re.search(r"([\d.]+) (kB|MB|GB) touched", line)
    assert match, line
    return float(match[1]) * {"kB": 1e-3, "MB": 1.0, "GB": 1e3}[match[2]]


def test_explore_on_a_gateway_cluster_changes_variable_and_zooms(
    page: Page, lab: LabServer
) -> None:
    page.goto(f"{lab.url}lab?token={lab.token}")
    page.locator('.jp-LauncherCard[data-category="Notebook"]').first.click()
    expect(page.locator(".jp-StatusBar-Widget", has_text="| Idle")).to_be_visible(timeout=60_000)
    cell = page.locator(".jp-Notebook .jp-Cell .cm-content").first
    cell.click()
    page.keyboard.insert_text(CODE)
    page.keyboard.press("Shift+Enter")

    output = page.locator(".jp-Notebook .jp-OutputArea-output").last
    line = output.get_by_text(re.compile(r"aggregating on 2 CPU workers \(numpy\) of cluster"))
    # the cluster's Slurm jobs start on alpha, then the first view is aggregated there
    expect(line).to_be_visible(timeout=240_000)
    assert "· 2 workers ·" in line.inner_text() and "800.0 MB touched" in line.inner_text()
    expect(output.locator("canvas").first).to_be_visible()  # Bokeh draws image and histogram
    progress = output.locator("progress")
    expect(progress).to_be_attached()  # the progress indicator, idle
    expect(output.get_by_text(re.compile(r"^ready: 800\.0 MB in [\d.]+ s$"))).to_be_visible()

    output.locator("select").first.select_option("b")
    # while the workers aggregate b: blocks done of 16, the bar filling
    expect(output.get_by_text(re.compile(r"^computing 800\.0 MB… \d+/16$"))).to_be_visible()
    expect(output.get_by_text(re.compile(r"^ready: 800\.0 MB in [\d.]+ s$"))).to_be_visible(
        timeout=60_000
    )
    expect(line).to_contain_text("800.0 MB touched")
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
    expect(line).not_to_have_text(before, timeout=60_000)
    assert touched(line.inner_text()) < full
