"""Harvesting STAC catalogues and lists, the ``continuum-hub catalogue harvest`` command, and
the demo archive (issue 11): real files, the real SQLite store, the installed command.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pystac
import pytest

from continuum_federation import demo_archive as demo
from continuum_hub.catalogue.harvest import HarvestError, harvest
from continuum_hub.catalogue.index.store import CatalogueStore
from continuum_hub.catalogue.model import visible

pytestmark = pytest.mark.catalogue

RADIO, HEP = "vo.radio.example", "vo.hep.example"
COMMAND = str(Path(sys.executable).parent / "continuum-hub")


@pytest.fixture
def store(tmp_path: Path) -> CatalogueStore:
    return CatalogueStore(tmp_path / "catalogue.sqlite")


def stac_catalogue(folder: Path, items: int = 3) -> Path:
    catalog = pystac.Catalog(id="tiles", description="test tiles")
    for index in range(items):
        image = folder / f"t{index}.fits"
        folder.mkdir(parents=True, exist_ok=True)
        demo.write_fits(image, np.random.default_rng(index), 10.0 + index, 0, demo.EPOCH, "tile")
        item = pystac.Item(
            id=f"t{index}",
            geometry=demo.box_geometry([9.0 + index, -1, 11.0 + index, 1]),
            bbox=[9.0 + index, -1, 11.0 + index, 1],
            datetime=demo.EPOCH + dt.timedelta(days=index),
            properties={
                "title": f"Tile {index}",
                "continuum:visibility": "vo" if index else "public",
            },
        )
        item.add_asset("image", pystac.Asset(href=str(image), media_type="image/fits"))
        item.add_asset("preview", pystac.Asset(href=str(image), media_type="image/fits"))
        catalog.add_item(item)
    catalog.normalize_hrefs(str(folder))
    catalog.save(catalog_type=pystac.CatalogType.SELF_CONTAINED)
    return folder / "catalog.json"


def test_stac_items_become_entries_with_assets_as_replicas(
    tmp_path: Path, store: CatalogueStore
) -> None:
    root = stac_catalogue(tmp_path / "stac")
    report = harvest(store, {"path": root, "site": "beta", "kind": "stac", "vo": RADIO})
    assert (report.seen, report.new, report.problems) == (3, 3, 0)
    tile = store.get("beta/tiles/t1")
    assert tile is not None and (tile.kind, tile.format, tile.title) == (
        "dataset",
        "fits",
        "Tile 1",
    )
    assert (tile.vo, tile.visibility) == (RADIO, "vo")
    assert [r.path for r in tile.replicas] == [str(tmp_path / "stac" / "t1.fits")] * 2
    assert tile.time_start == "2024-03-02T00:00:00Z" and tile.metadata["bbox"] == [
        10.0,
        -1,
        12.0,
        1,
    ]
    assert (
        harvest(store, {"path": root, "site": "beta", "kind": "stac", "vo": RADIO}).unchanged == 3
    )
    # an item gone from the catalogue is removed
    catalog = pystac.Catalog.from_file(str(root))
    catalog.remove_item("t2")
    catalog.save(catalog_type=pystac.CatalogType.SELF_CONTAINED)
    again = harvest(store, {"path": root, "site": "beta", "kind": "stac", "vo": RADIO})
    assert (again.removed, again.unchanged) == (1, 2)


def test_stac_links_out_of_the_catalogue_are_refused(tmp_path: Path, store: CatalogueStore) -> None:
    root = stac_catalogue(tmp_path / "stac", items=1)
    data = json.loads(root.read_text())
    data["links"].append({"rel": "child", "href": "http://169.254.169.254/latest/catalog.json"})
    root.write_text(json.dumps(data))
    report = harvest(store, {"path": root, "site": "beta", "kind": "stac"})
    assert report.problems == 1 and "URL refused" in report.problem_list[0]
    assert report.truncated and store.count() == 0
    data["links"][-1]["href"] = "../../etc/catalog.json"
    root.write_text(json.dumps(data))
    report = harvest(store, {"path": root, "site": "beta", "kind": "stac"})
    assert "out of the catalogue's folder" in report.problem_list[0]
    (tmp_path / "not-stac.json").write_text("[]")
    with pytest.raises(HarvestError, match="not a STAC catalogue"):
        harvest(store, {"path": tmp_path / "not-stac.json", "site": "beta", "kind": "stac"})


def test_lists_in_csv_and_yaml(tmp_path: Path, store: CatalogueStore) -> None:
    csv_file = tmp_path / "holdings.csv"
    csv_file.write_text(
        "identifier,title,vo,visibility,site,path,size,time_start,keywords,telescope\n"
        f"survey-a,Survey A,{RADIO},public,alpha,/data/a,100,2024-01-01,radio;survey,LOFAR\n"
        f"survey-a,Survey A,{RADIO},public,beta,/data/a,100,2024-01-01,radio;survey,LOFAR\n"
        f"secret-b,Secret B,{RADIO},vo,beta,/data/b,5,,,\n"
        "../escape,Bad,,public,alpha,/x,1,,,\n"
        "bad-size,Bad size,,public,alpha,/x,lots,,,\n"
    )
    report = harvest(store, {"path": csv_file, "site": "alpha", "kind": "list"})
    assert (report.seen, report.new, report.problems) == (2, 2, 2)
    survey = store.get("alpha/holdings/survey-a")
    assert survey is not None and survey.sites == ["alpha", "beta"]
    assert survey.time_start == "2024-01-01T00:00:00Z" and survey.metadata["telescope"] == "LOFAR"
    assert survey.metadata["keywords"] == ["radio", "survey"]
    secret = store.get("alpha/holdings/secret-b")
    assert secret is not None and not visible(secret, [HEP]) and visible(secret, [RADIO])
    yaml_file = tmp_path / "more.yaml"
    yaml_file.write_text(
        "datasets:\n"
        "  - {identifier: run-1, title: Run 1, kind: collection, size: 10, keywords: [hep]}\n"
        "  - {identifier: run-2, kind: spaceship}\n"
    )
    report = harvest(store, {"path": yaml_file, "site": "alpha", "kind": "list", "vo": HEP})
    assert (report.new, report.problems) == (1, 1)
    run = store.get("alpha/more/run-1")
    assert run is not None and (run.kind, run.vo, run.size) == ("collection", HEP, 10)
    # an unchanged row is not written again; a dropped row is removed
    assert harvest(store, {"path": csv_file, "site": "alpha", "kind": "list"}).unchanged == 2
    csv_file.write_text(csv_file.read_text().splitlines()[0] + "\n")
    assert harvest(store, {"path": csv_file, "site": "alpha", "kind": "list"}).removed == 2


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [COMMAND, "catalogue", "harvest", *args], capture_output=True, text=True, timeout=120
    )


def test_harvest_command_end_to_end(tmp_path: Path) -> None:
    root = tmp_path / "archive" / "radio"
    root.mkdir(parents=True)
    for index in range(3):
        demo.write_fits(
            root / f"obs-{index}.fits", np.random.default_rng(index), 1, 2, demo.EPOCH, "x"
        )
    db = tmp_path / "db" / "catalogue.sqlite"
    first = run_cli(
        str(root), "--site", "beta", "--db", str(db), "--vo", RADIO, "--visibility", "vo"
    )
    assert first.returncode == 0, first.stderr
    assert "3 seen, 3 new" in first.stdout and "0 problem(s)" in first.stdout
    assert (db.stat().st_mode & 0o777) == 0o600
    (root / "obs-1.fits").unlink()
    (root / "broken.fits").write_text("not FITS")
    second = run_cli(str(root), "--site", "beta", "--db", str(db), "--vo", RADIO, "--json")
    assert second.returncode == 1, second.stderr
    report = json.loads(second.stdout)
    assert {k: report[k] for k in ("seen", "unchanged", "removed", "problems")} == {
        "seen": 3,
        "unchanged": 2,
        "removed": 1,
        "problems": 1,
    }
    assert report["problem_list"][0].startswith("broken.fits: ")
    entry = CatalogueStore(db).get("beta/radio/obs-0.fits")
    assert entry is not None and (entry.vo, entry.visibility) == (RADIO, "vo")
    for bad, message in (
        ((str(tmp_path / "missing"), "--site", "beta"), "is not a folder"),
        ((str(root), "--site", "beta", "--visibility", "vo"), "needs a vo"),
        ((str(root), "--site", "beta", "--db", str(tmp_path)), "cannot harvest"),
    ):
        result = run_cli(*bad)
        assert result.returncode == 2 and message in result.stderr, result.stderr
        assert "Traceback" not in result.stderr


def test_demo_archive(tmp_path: Path, store: CatalogueStore) -> None:
    started = time.monotonic()
    archive = demo.generate(tmp_path / "archive")
    assert time.monotonic() - started < 20
    assert archive["files"] == {"alpha": 140, "beta": 122, "total": 262}
    assert all(
        (path.stat().st_mode & 0o755) == (0o755 if path.is_dir() else 0o644)
        for path in (tmp_path / "archive").rglob("*")
    )
    reports = [harvest(store, spec) for spec in archive["specs"]]
    assert [r.problems for r in reports] == [0, 0, 0, 0]
    assert [r.new for r in reports] == [140, 122, 8, 4]
    assert store.count() == 140 + 122 - archive["shared"] + 8 + 4
    files_per_s = sum(r.seen for r in reports[:2]) / sum(r.seconds for r in reports[:2])
    print(f"demo archive harvest: {files_per_s:.0f} files/s")
    shared = store.get("alpha/archive/radio/shared/calibrator-000.fits")
    assert shared is not None and shared.sites == ["alpha", "beta"]
    private = [
        store.get(f"beta/archive/radio/private/deep-{index:03d}.fits") for index in range(10)
    ]
    assert all(e is not None and e.visibility == "vo" and e.vo == RADIO for e in private)
    assert not any(visible(e, [HEP]) for e in private if e is not None)
    hep = store.get("alpha/archive/hep/run-2024-01/events-000.root")
    assert hep is not None and hep.vo == HEP and hep.title == "Golden run 1, first part"
    # a second generation leaves the files alone: the re-harvest finds nothing changed
    mtime = os.stat(shared.replicas[1].path).st_mtime
    assert demo.generate(tmp_path / "archive")["seconds"] == 0.0
    assert os.stat(shared.replicas[1].path).st_mtime == mtime
    assert all(
        harvest(store, spec).unchanged == spec_r.seen
        for spec, spec_r in zip(archive["specs"], reports, strict=True)
    )
