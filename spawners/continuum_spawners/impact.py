"""Energy and emissions of a job: the Green Algorithms model with offline defaults.

One model serves the estimate before submission (spawn form, Dask cluster dialog, batch-run
dialog: :func:`estimate` of what a request asks for) and the usage views afterwards
(:func:`job_impact` of what the scheduler accounted), so a user can compare the two.

The model is Green Algorithms' (Lannelongue, Grealey and Inouye, *Green Algorithms: Quantifying
the Carbon Footprint of Computation*, Adv. Sci. 2021, 2100707)::

    energy (kWh) = hours × (cores × W/core × usage + GPUs × W/GPU + memory GB × W/GB) × PUE / 1000
    CO2e (kg)    = energy × grid intensity (g CO2e/kWh) / 1000

A site's figures come from its registry entry (``power``); what it leaves out comes from the
data that codecarbon 3.3.2 ships (per-country grid intensities of ``global_energy_mix.json``,
its world average, CPU TDPs of ``cpu_power.csv``), read as files: importing codecarbon would
pull in pandas, requests and more for two lookups.  The paper's own constants fill the rest
(0.3725 W per GB of memory, 12 W per core and a PUE of 1.67 when nothing else is known, a usage
factor of 1).  :attr:`PowerModel.source` says where the figures came from.

Energy a site measured (Slurm's ``ConsumedEnergyRaw``) wins over the model for finished jobs;
it is only right for jobs on exclusive nodes (the node's energy, whoever ran there), which is
why :attr:`Impact.measured` labels it.
"""

from __future__ import annotations

import csv
import importlib.util
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the ledger and the sites import nothing from here at run time
    from .ledger import UsageJob
    from .sites import Site

__all__ = [
    "Impact",
    "PowerModel",
    "cpu_tdp",
    "estimate",
    "grid_intensity",
    "job_impact",
    "model_for",
]

# Green Algorithms' constants (Lannelongue et al. 2021): memory power, and its defaults for a
# core of unknown model and a data centre of unknown efficiency
MEMORY_WATTS_PER_GB = 0.3725
DEFAULT_WATTS_PER_CORE = 12.0
DEFAULT_PUE = 1.67
JOULES_PER_KWH = 3_600_000


@dataclass(frozen=True)
class PowerModel:
    """The figures of one site's model, and where they came from (``source``: ``registry``,
    or the defaults used, e.g. ``grid: codecarbon FRA; cores: Green Algorithms default``)."""

    watts_per_core: float
    watts_per_gpu: float
    memory_watts_per_gb: float
    pue: float
    grid_gco2e_per_kwh: float
    source: str

    def as_json(self) -> dict[str, Any]:
        return {
            "watts_per_core": self.watts_per_core,
            "watts_per_gpu": self.watts_per_gpu,
            "memory_watts_per_gb": self.memory_watts_per_gb,
            "pue": self.pue,
            "grid_gco2e_per_kwh": self.grid_gco2e_per_kwh,
            "source": self.source,
        }


@dataclass(frozen=True)
class Impact:
    """Energy (facility included) and emissions of a job; ``measured`` when the energy is the
    site's measurement rather than the model's."""

    energy_kwh: float
    co2e_kg: float
    measured: bool = False


def _codecarbon_data() -> Path:
    spec = importlib.util.find_spec("codecarbon")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("codecarbon (its bundled data) is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


@cache
def _energy_mix() -> dict[str, Any]:
    path = _codecarbon_data() / "private_infra" / "global_energy_mix.json"
    return json.loads(path.read_text())


@cache
def _world_intensity() -> float:
    path = _codecarbon_data() / "private_infra" / "carbon_intensity_per_source.json"
    return float(json.loads(path.read_text())["world_average"])


@cache
def _cpu_tdps() -> dict[str, float]:
    path = _codecarbon_data() / "hardware" / "cpu_power.csv"
    tdps: dict[str, float] = {}
    with path.open(newline="") as stream:
        for row in csv.DictReader(stream):
            try:
                tdp = float(row["TDP"])
            except (TypeError, ValueError):  # a few scraped rows are garbled ("27.29.5")
                continue
            tdps.setdefault(row["Name"].strip().casefold(), tdp)
    return tdps


def grid_intensity(country: str | None) -> float | None:
    """The grid's carbon intensity (g CO2e/kWh) of ``country`` (ISO 3166 alpha-3) in
    codecarbon's data, the world average for ``None``, ``None`` for a country not there."""
    if country is None:
        return _world_intensity()
    entry = _energy_mix().get(country.upper())
    return None if entry is None else float(entry["carbon_intensity"])


def cpu_tdp(model: str) -> float | None:
    """The TDP (W) of the CPU ``model`` as codecarbon names it (``Intel Xeon E5-2683 v4``;
    case does not matter), or ``None``."""
    return _cpu_tdps().get(model.strip().casefold())


def model_for(site: Site) -> PowerModel:
    """The power model of ``site``: its registry ``power`` figures, defaults for the rest.

    Per figure, first match wins: the number in the registry; for the cores, the TDP of
    ``cpu_model`` divided by ``cpu_cores`` (codecarbon); for the grid, the intensity of
    ``country`` (codecarbon), else codecarbon's world average; else the paper's default.
    The registry loader has checked the country and CPU model exist in the data.
    """
    power = site.power
    defaults: list[str] = []
    watts_per_core = power.watts_per_core if power else None
    if watts_per_core is None and power and power.cpu_model and power.cpu_cores:
        tdp = cpu_tdp(power.cpu_model)
        if tdp is not None:
            watts_per_core = tdp / power.cpu_cores
            defaults.append(f"cores: codecarbon {power.cpu_model}")
    if watts_per_core is None:
        watts_per_core = DEFAULT_WATTS_PER_CORE
        defaults.append("cores: Green Algorithms default")
    grid = power.grid_gco2e_per_kwh if power else None
    if grid is None:
        country = power.country if power else None
        grid = grid_intensity(country)
        if grid is None:  # a country codecarbon lost in an update: say so, use the world's
            country = None
            grid = grid_intensity(None)
        defaults.append(f"grid: codecarbon {country or 'world'}")
    pue = power.pue if power else None
    if pue is None:
        pue = DEFAULT_PUE
        defaults.append("pue: Green Algorithms default")
    memory = power.memory_watts_per_gb if power else None
    return PowerModel(
        watts_per_core=watts_per_core,
        watts_per_gpu=(power.watts_per_gpu if power else None) or 0.0,
        memory_watts_per_gb=MEMORY_WATTS_PER_GB if memory is None else memory,
        pue=pue,
        grid_gco2e_per_kwh=float(grid or 0.0),
        source="; ".join(defaults) or "registry",
    )


def estimate(
    model: PowerModel,
    cores: float,
    gpus: float,
    memory_gb: float,
    hours: float,
    core_usage: float = 1.0,
) -> Impact:
    """Energy and emissions of ``cores``, ``gpus`` and ``memory_gb`` held for ``hours``
    (Green Algorithms; ``core_usage`` is the paper's usage factor, 1 = cores busy all along)."""
    watts = (
        cores * model.watts_per_core * core_usage
        + gpus * model.watts_per_gpu
        + memory_gb * model.memory_watts_per_gb
    )
    energy = hours * watts * model.pue / 1000
    return Impact(energy, energy * model.grid_gco2e_per_kwh / 1000, measured=False)


def job_impact(model: PowerModel, job: UsageJob) -> Impact:
    """The impact of an accounted job: the site's measured energy (joules, times the PUE for
    the facility) when it has one, else the model over the elapsed time with what was
    allocated (what was requested while nothing was allocated yet)."""
    if job.consumed_energy_j:
        energy = job.consumed_energy_j / JOULES_PER_KWH * model.pue
        return Impact(energy, energy * model.grid_gco2e_per_kwh / 1000, measured=True)
    return estimate(
        model,
        cores=job.alloc_cores or job.req_cores,
        gpus=job.alloc_gpus or job.req_gpus,
        memory_gb=job.alloc_memory_gb or job.req_memory_gb,
        hours=job.elapsed_s / 3600,
    )
