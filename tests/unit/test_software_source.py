"""The software catalogue source on the demo registry, with Lmod's real ``spider`` run on the
demo module trees (written to a scratch folder by ``continuum_federation.modules``), and the
registry's ``lmod`` field."""

from __future__ import annotations

from pathlib import Path

import pytest

from continuum_federation.modules import DEMO_MODULES, Module, write_module_trees
from continuum_hub.catalogue.model import make_query
from continuum_hub.catalogue.sources.software import SoftwareSource, words
from continuum_spawners.sites import Lmod, RegistryError, SiteRegistry

pytestmark = pytest.mark.catalogue

DEMO = Path(__file__).resolve().parents[2] / "hub-config" / "sites.demo.yaml"
HEP, RADIO = ["vo.hep.example"], ["vo.radio.example"]


@pytest.fixture
def registry_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The demo registry with its module trees in ``tmp_path/modules``."""
    monkeypatch.setenv("CONTINUUM_SLURM_CONF_ALPHA", "/a")
    monkeypatch.setenv("CONTINUUM_SLURM_CONF_BETA", "/b")
    write_module_trees(tmp_path / "modules")
    text = DEMO.read_text().replace("/opt/continuum-hub/modules", str(tmp_path / "modules"))
    assert str(tmp_path) in text
    path = tmp_path / "sites.yaml"
    path.write_text(text)
    return path


async def search(source: SoftwareSource, text: str, groups: list[str], **filters):
    page = await source.search(make_query(text, groups=groups, **filters))
    return [entry.id for entry in page.entries], page


async def test_which_site_has_root_632_and_a_gpu(registry_file: Path) -> None:
    source = SoftwareSource(name="software", registry_path=str(registry_file))
    await source.start()
    found, _ = await search(source, "root 6.32 gpu", RADIO)
    assert found == ["software:beta/module/root/6.32"]
    entry = await source.get("beta/module/root/6.32", make_query(groups=RADIO))
    assert entry is not None and entry.kind == "software" and entry.sites == ["beta"]
    assert entry.metadata["resources"]["max_gpus"] == 2
    assert entry.metadata["resources"]["gpu_types"] == ["demo"]
    assert entry.metadata["version"] == "6.32" and entry.description.startswith("ROOT")
    assert "module load root/6.32" in entry.access["code"]
    assert entry.access["code"].startswith("%%bash\n")
    # "6.3" is a prefix of both versions of ROOT
    found, page = await search(source, "ROOT 6.3", ["vo.hep.example", "vo.radio.example"])
    assert set(found) == {"software:alpha/module/root/6.30", "software:beta/module/root/6.32"}
    assert page.total == 2


async def test_environments_are_entries_too(registry_file: Path) -> None:
    source = SoftwareSource(name="software", registry_path=str(registry_file))
    found, _ = await search(source, "cupy", RADIO)
    assert found == ["software:beta/env/cupy"]
    entry = await source.get("beta/env/cupy", make_query(groups=RADIO))
    assert entry is not None and entry.format == "environment"
    assert entry.access == {"language": "environment", "site": "beta", "code": "cupy"}


async def test_a_site_software_is_visible_to_its_users_only(registry_file: Path) -> None:
    source = SoftwareSource(name="software", registry_path=str(registry_file))
    # beta is for the radio VO: bob (HEP) sees alpha's ROOT only, even by id
    found, page = await search(source, "root", HEP, with_facets=True)
    assert found == ["software:alpha/module/root/6.30"]
    assert page.facets["site"] == {"alpha": 1}
    assert await source.get("beta/module/root/6.32", make_query(groups=HEP)) is None
    assert await source.get("beta/module/root/6.32", make_query(groups=[])) is None
    # alpha is open to both VOs: either may see it
    alpha = await source.get("alpha/module/gcc/12", make_query(groups=RADIO))
    assert alpha is not None and alpha.visibility == "vo"
    assert sorted(alpha.vos) == ["vo.hep.example", "vo.radio.example"]
    found, _ = await search(source, "", [])
    assert found == []  # carol: no groups, no site, no software


@pytest.mark.parametrize(
    "text",
    ['"root" OR 1=1 --', "root*", "NEAR(root gpu)", "root') ; DROP TABLE x; --", "x" * 512],
)
async def test_query_syntax_is_plain_text(registry_file: Path, text: str) -> None:
    source = SoftwareSource(name="software", registry_path=str(registry_file))
    found, _ = await search(source, text, RADIO)
    # words, never operators: only entries having every word match, e.g. none for "or 1 1"
    assert all(found_id.startswith("software:") for found_id in found)
    assert words('"root"* (gpu)') == ["root", "gpu"]
    if text == "root*":
        assert set(found) >= {"software:beta/module/root/6.32"}
    else:
        assert found == []


async def test_filters(registry_file: Path) -> None:
    source = SoftwareSource(name="software", registry_path=str(registry_file))
    both = ["vo.hep.example", "vo.radio.example"]
    found, _ = await search(source, "python", both, sites=["alpha"])
    assert set(found) == {"software:alpha/module/python/3.11", "software:alpha/env/python"}
    found, _ = await search(source, "python", both, formats=["lmod"])
    assert set(found) == {"software:alpha/module/python/3.11", "software:beta/module/python/3.11"}
    found, _ = await search(source, "python", both, kinds=["dataset"])
    assert found == []
    found, _ = await search(source, "python", both, time_from="2026-01-01")
    assert found == []  # software has no time range
    found, _ = await search(source, "python", both, vos=["vo.hep.example"])
    assert set(found) == {"software:alpha/module/python/3.11", "software:alpha/env/python"}


@pytest.fixture
def broken_beta(registry_file: Path, tmp_path: Path) -> Path:
    """The registry, with beta's Lmod "installed" where there is none: its spider cannot run."""
    text = registry_file.read_text().replace(
        f"{tmp_path}/modules/beta]}}", f"{tmp_path}/modules/beta], lmod_dir: /nonexistent/lmod}}"
    )
    assert "/nonexistent/lmod" in text
    registry_file.write_text(text)
    return registry_file


async def test_a_failing_spider_shows_in_health_and_search_goes_on(broken_beta: Path) -> None:
    source = SoftwareSource(name="software", registry_path=str(broken_beta))
    health = await source.health()
    assert health.ok  # alpha answers
    assert "beta: module spider failed" in health.message and "alpha" not in health.message
    found, _ = await search(source, "root", RADIO)
    assert found == ["software:alpha/module/root/6.30"]
    found, _ = await search(source, "cupy", RADIO)
    assert found == ["software:beta/env/cupy"]  # beta's environments still come from the registry


async def test_spider_answers_are_cached(registry_file: Path, tmp_path: Path) -> None:
    source = SoftwareSource(name="software", registry_path=str(registry_file))
    assert (await search(source, "hdf5", RADIO))[0] == []
    extra = {"beta": (*DEMO_MODULES["beta"], Module("hdf5", "1.14", "HDF5", "io", ("H", "1")))}
    write_module_trees(tmp_path / "modules", extra)
    assert (await search(source, "hdf5", RADIO))[0] == []  # kept for refresh_interval
    source.refresh_interval = 0
    assert (await search(source, "hdf5", RADIO))[0] == ["software:beta/module/hdf5/1.14"]


def registry(lmod: object) -> dict:
    site = {
        "name": "gamma",
        "scheduler": "slurm",
        "partitions": [{"name": "p", "max_cores": 1, "max_memory_gb": 1, "max_walltime": "1:00"}],
    }
    return {"sites": [{**site, "lmod": lmod}]}


def test_registry_lmod_field() -> None:
    loaded = SiteRegistry.from_dict(registry({"modulepath": ["/opt/mods/a", "/opt/mods/b"]}))
    assert loaded.sites["gamma"].lmod == Lmod(("/opt/mods/a", "/opt/mods/b"))
    assert loaded.sites["gamma"].lmod.lmod_dir == "/usr/share/lmod/lmod"
    custom = SiteRegistry.from_dict(registry({"modulepath": ["/m"], "lmod_dir": "/apps/lmod"}))
    assert custom.sites["gamma"].lmod == Lmod(("/m",), "/apps/lmod")
    for bad, message in [
        ({"modulepath": ["relative/mods"]}, "does not match"),
        ({"modulepath": ["/a b"]}, "does not match"),
        ({"modulepath": []}, "should be non-empty|is too short"),
        ({"lmod_dir": "/x"}, "'modulepath' is a required property"),
        ({"modulepath": ["/m"], "spider": "/bin/sh"}, "Additional properties"),
    ]:
        with pytest.raises(RegistryError, match=message):
            SiteRegistry.from_dict(registry(bad))


@pytest.fixture
def empty_alpha(registry_file: Path, tmp_path: Path) -> Path:
    """The registry, with alpha's module tree an empty folder."""
    (tmp_path / "empty").mkdir()
    text = registry_file.read_text().replace(f"{tmp_path}/modules/alpha", f"{tmp_path}/empty")
    registry_file.write_text(text)
    return registry_file


async def test_a_tree_without_modules_is_no_failure(empty_alpha: Path) -> None:
    source = SoftwareSource(name="software", registry_path=str(empty_alpha))
    health = await source.health()
    assert health.ok and not health.message  # Lmod answers [] for it
    found, _ = await search(source, "root", ["vo.hep.example", "vo.radio.example"])
    assert found == ["software:beta/module/root/6.32"]
