"""The energy/CO2e model (:mod:`continuum_spawners.impact`): the Green Algorithms formula, the
defaults from codecarbon's bundled data, and measured energy against the model."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from continuum_spawners import impact
from continuum_spawners.impact import Impact, estimate, job_impact, model_for
from continuum_spawners.ledger import UsageJob
from continuum_spawners.sites import RegistryError, SiteRegistry

pytestmark = pytest.mark.operations


def registry_with(power: dict | None) -> dict:
    """A registry document of one site ``alpha`` with ``power`` (none: ``None``)."""
    site = {
        "name": "alpha",
        "scheduler": "slurm",
        "partitions": [{"name": "p", "max_cores": 4, "max_memory_gb": 8, "max_walltime": "02:00"}],
    }
    return {"sites": [site if power is None else {**site, "power": power}]}


def site_with(power: dict | None):
    return SiteRegistry.from_dict(registry_with(power), environ={}).get("alpha")


def test_green_algorithms_worked_example():
    """The worked example of Green Algorithms (Lannelongue, Grealey and Inouye, "Green
    Algorithms: Quantifying the Carbon Footprint of Computation", Adv. Sci. 2021, 2100707,
    doi:10.1002/advs.202100707), the one its calculator opens with (www.green-algorithms.org):
    a 12-hour run on 12 cores of an Intel Xeon E5-2683 v4 with 64 GB of memory on a local
    server (the paper's PUE 1.67).

    The Xeon E5-2683 v4 has a TDP of 120 W for 16 cores, 7.5 W per core (the paper's table and
    codecarbon's ``cpu_power.csv`` agree); memory draws 0.3725 W/GB.  Energy
    = 12 h × (12 × 7.5 W + 64 × 0.3725 W) × 1.67 / 1000 = 12 × 113.84 × 1.67 / 1000
    = 2.28 kWh, the calculator's "energy needed".  The carbon footprint is that times the grid
    intensity: with the paper's world average of 475 g CO2e/kWh, 1.084 kg CO2e.
    """
    site = site_with(
        {"cpu_model": "Intel Xeon E5-2683 v4", "cpu_cores": 16, "grid_gco2e_per_kwh": 475}
    )
    model = model_for(site)
    assert model.watts_per_core == 7.5
    assert model.pue == 1.67
    assert model.memory_watts_per_gb == 0.3725
    assert model.source == (
        "cores: codecarbon Intel Xeon E5-2683 v4; pue: Green Algorithms default"
    )
    result = estimate(model, cores=12, gpus=0, memory_gb=64, hours=12)
    assert result == Impact(pytest.approx(2.2813536), pytest.approx(1.08364296), False)
    assert round(result.energy_kwh, 2) == 2.28


def test_usage_factor_and_gpus_scale_their_own_terms():
    model = model_for(
        site_with(
            {
                "watts_per_core": 10,
                "watts_per_gpu": 300,
                "memory_watts_per_gb": 0.5,
                "pue": 1.5,
                "grid_gco2e_per_kwh": 200,
            }
        )
    )
    assert model.source == "registry"
    # 2 h × (4 cores × 10 W × 0.5 + 1 GPU × 300 W + 8 GB × 0.5 W) × 1.5 = 972 Wh
    result = estimate(model, cores=4, gpus=1, memory_gb=8, hours=2, core_usage=0.5)
    assert result.energy_kwh == pytest.approx(0.972)
    assert result.co2e_kg == pytest.approx(0.972 * 0.2)


def dataset(*parts: str) -> Path:
    return impact._codecarbon_data().joinpath(*parts)


def test_defaults_come_from_codecarbons_files():
    mix = json.loads(dataset("private_infra", "global_energy_mix.json").read_text())
    world = json.loads(dataset("private_infra", "carbon_intensity_per_source.json").read_text())
    france = model_for(site_with({"country": "FRA"}))
    assert france.grid_gco2e_per_kwh == mix["FRA"]["carbon_intensity"]
    assert france.source == (
        "cores: Green Algorithms default; grid: codecarbon FRA; pue: Green Algorithms default"
    )
    assert (france.watts_per_core, france.pue, france.watts_per_gpu) == (12.0, 1.67, 0.0)
    nothing = model_for(site_with(None))
    assert nothing.grid_gco2e_per_kwh == world["world_average"] == 475
    assert "grid: codecarbon world" in nothing.source
    # numbers in the registry win over the country's
    assert model_for(site_with({"country": "FRA", "grid_gco2e_per_kwh": 1})).grid_gco2e_per_kwh == 1
    assert impact.cpu_tdp("intel xeon e5-2683 V4") == 120.0
    assert impact.cpu_tdp("Abacus 9000") is None
    assert impact.grid_intensity("XXX") is None


@pytest.mark.parametrize(
    "power,message",
    [
        ({"country": "XXX"}, "power/country: XXX is not in codecarbon's data"),
        ({"country": "fr"}, "country"),
        ({"cpu_model": "Abacus 9000", "cpu_cores": 4}, "cpu_model: 'Abacus 9000' is not"),
        ({"cpu_model": "Intel Xeon E5-2683 v4"}, "cpu_cores"),
        ({"pue": 40}, "pue"),
        ({"watts_per_core": -1}, "watts_per_core"),
    ],
    ids=["unknown-country", "alpha-2", "unknown-cpu", "cpu-without-cores", "pue", "negative"],
)
def test_bad_power_entries_are_refused_with_their_place(tmp_path, power, message):
    path = tmp_path / "sites.yaml"
    # JSON is YAML, with one key per line
    path.write_text(json.dumps(registry_with(power), indent=2))
    with pytest.raises(RegistryError, match=message) as caught:
        SiteRegistry.from_file(path)
    assert str(caught.value).startswith(f"{path}:")


def job(**values) -> UsageJob:
    base = {
        "site": "alpha",
        "job_id": "7",
        "kind": "server",
        "label": "",
        "user": "alice",
        "vo": None,
        "partition": "p",
        "submitted_at": datetime(2026, 12, 1, tzinfo=UTC),
        "req_cores": 4,
        "req_gpus": 0,
        "req_memory_gb": 8,
        "req_walltime_minutes": 120,
    }
    return UsageJob(**{**base, **values})


def test_measured_energy_wins_over_the_model():
    model = model_for(site_with({"watts_per_core": 10, "pue": 1.5, "grid_gco2e_per_kwh": 200}))
    done = {"elapsed_s": 1800, "alloc_cores": 2, "alloc_memory_gb": 4, "final": True}
    modelled = job_impact(model, job(**done))
    # half an hour of 2 cores × 10 W + 4 GB × 0.3725 W, times the PUE
    assert modelled == Impact(
        pytest.approx(0.5 * 21.49 * 1.5 / 1000),
        pytest.approx(0.5 * 21.49 * 1.5 / 1000 * 0.2),
        False,
    )
    # the node's meter said 72 kJ = 0.02 kWh; the facility adds its PUE
    measured = job_impact(model, job(**done, consumed_energy_j=72_000))
    assert measured == Impact(pytest.approx(0.03), pytest.approx(0.006), True)
    # not allocated yet: nothing used
    assert job_impact(model, job()).energy_kwh == 0
