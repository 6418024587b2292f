"""Continuum Hub in notebooks: Dask Gateway cluster widgets and a sample GPU/CPU analysis.

* :class:`~continuum_widgets.cluster.ClusterLauncher` — the gateway's cluster options as a form
  and a *Create* button; :class:`~continuum_widgets.cluster.ClusterControls` — scale, adapt,
  dashboard link and shutdown of a ``GatewayCluster``.
* :mod:`continuum_widgets.analysis` — per-channel RFI statistics of a synthetic visibility cube
  with xarray + dask, cupy on GPU workers and numpy elsewhere, with identical results.
* :func:`~continuum_widgets.explorer.explore` — a panel app over an xarray dataset larger than
  memory: images aggregated on the cluster's workers (:mod:`continuum_widgets.aggregate`).
* :func:`~continuum_widgets.sharing.share_view` — a revocable link that opens a view of this
  server (e.g. ``explore``'s standalone page) for someone else, through JupyterHub's sharing.

Names are imported on first use, so ``import continuum_widgets`` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ClusterControls": "continuum_widgets.cluster",
    "ClusterLauncher": "continuum_widgets.cluster",
    "explore": "continuum_widgets.explorer",
    "rfi_statistics": "continuum_widgets.analysis",
    "share_view": "continuum_widgets.sharing",
    "synthetic_visibilities": "continuum_widgets.analysis",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'continuum_widgets' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
