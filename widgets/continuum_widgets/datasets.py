"""What ``explore`` accepts: an xarray Dataset or DataArray, checked for something to show.

:func:`as_dataset` turns the argument into a Dataset, :func:`plottable_variables` names the
variables that can be shown as an image (numeric, two dimensions of length ≥ 2) and
:func:`numeric_axis` gives an axis labelled by text a numeric coordinate (its positions),
refusing an axis of too many labels. Each refusal is an :class:`ExploreError` whose message says
what to do instead.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from continuum_widgets.aggregate import ExploreError

#: a plotted axis labelled by more categories than this is refused (unreadable, and costly)
MAX_AXIS_CATEGORIES = 10_000
#: a non-plotted dimension with at most this many labels gets a drop-down, else a slider
MAX_SELECT_OPTIONS = 200


def as_dataset(obj: Any) -> xr.Dataset:
    """``obj`` as a Dataset; :class:`ExploreError` for anything but a Dataset or DataArray."""
    if isinstance(obj, xr.Dataset):
        return obj
    if isinstance(obj, xr.DataArray):
        return obj.to_dataset(name=obj.name if obj.name is not None else "values")
    raise ExploreError(f"explore needs an xarray Dataset or DataArray, not {type(obj).__name__}")


def plottable_variables(dataset: xr.Dataset) -> list[str]:
    """Names of the real-valued variables with at least two dimensions of length ≥ 2."""
    names = [
        str(name)
        for name, var in dataset.data_vars.items()
        if (np.issubdtype(var.dtype, np.number) or var.dtype == bool)
        and not np.issubdtype(var.dtype, np.complexfloating)
        and sum(size >= 2 for size in var.shape) >= 2
    ]
    if not names:
        described = ", ".join(f"{k}{tuple(v.dims)}" for k, v in dataset.data_vars.items())
        raise ExploreError(
            "nothing to show: no numeric variable has two dimensions of length ≥ 2 "
            f"({described or 'the dataset has no variables'})"
        )
    return names


def numeric_axis(array: xr.DataArray, dim: str) -> xr.DataArray:
    """``array`` with a numeric coordinate on ``dim``: positions where it has none or labels."""
    if dim not in array.coords:
        return array.assign_coords({dim: np.arange(array.sizes[dim])})
    coord = array[dim]
    if np.issubdtype(coord.dtype, np.number) and not np.issubdtype(coord.dtype, np.complexfloating):
        return array
    if array.sizes[dim] > MAX_AXIS_CATEGORIES:
        raise ExploreError(
            f"the axis {dim!r} has {array.sizes[dim]:,} categories, too many to label an axis "
            f"(at most {MAX_AXIS_CATEGORIES:,}): plot it by position (obj.drop_vars({dim!r})) "
            "or choose other dimensions with x= and y="
        )
    return array.assign_coords({dim: np.arange(array.sizes[dim])})
