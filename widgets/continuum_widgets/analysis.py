"""A sample analysis for Dask Gateway clusters: per-channel RFI statistics of a visibility cube.

A radio interferometer's correlator writes, per integration (``time``), per antenna pair
(``baseline``) and per frequency ``channel``, a visibility; its amplitude, quantized to a few
bits, is what RFI flagging looks at first. This module

* builds a synthetic, seeded visibility-amplitude cube as a chunked :class:`xarray.DataArray`
  (``time × baseline × channel``, integers in ``[0, levels)``) with narrow-band and bursty RFI
  injected at known places,
* computes per channel, on whatever workers the cluster has, the exact histogram of amplitudes
  (each block's histogram on the worker, with **cupy** when that worker sees a GPU and cupy
  imports, **numpy** otherwise),
* derives from the summed histograms the spectrum (mean amplitude), the median, the median
  absolute deviation and the fraction of samples above ``median + k · 1.4826 · MAD``.

Why histograms: block results are integer counts, whose sums do not depend on the order of
additions, on the chunking or on the device; every statistic is then computed once, on the
client, in float64 from those integers. GPU and CPU workers therefore give *identical* results,
not merely close ones (a floating-point sum on a GPU reduces in another order than numpy's).

Typical use in a notebook::

    from dask_gateway import GatewayCluster
    from continuum_widgets.analysis import synthetic_visibilities, rfi_statistics

    cluster = GatewayCluster()          # zero-config inside Continuum Hub
    client = cluster.get_client()
    cluster.scale(4)
    vis = synthetic_visibilities(seed=42)
    stats = rfi_statistics(vis)         # an xarray.Dataset, one row per channel
    stats.flagged_fraction.plot()
"""

from __future__ import annotations

import functools
import importlib
import os
from types import ModuleType
from typing import Any

import dask.array as da
import numpy as np
import xarray as xr

#: quantization levels of the synthetic amplitudes (10 bits, as many correlators write)
LEVELS = 1024
#: MAD → standard deviation of a normal distribution
MAD_TO_SIGMA = 1.4826


#: values of ``CUDA_VISIBLE_DEVICES`` that hide every GPU (Slurm sets ``NoDevFiles`` without gres)
_HIDDEN = ("", "-1", "none", "nodevfiles", "void")


@functools.cache
def device_report() -> tuple[ModuleType, str]:
    """The array module for this process and why: cupy when a GPU is usable, else numpy.

    Decided once per process, and never raises: a process where ``CUDA_VISIBLE_DEVICES`` is unset
    but no GPU is usable (no driver, no device, a driver/toolkit mismatch, cupy missing or
    broken) picks numpy. A GPU counts as usable when ``CUDA_VISIBLE_DEVICES`` does not hide it,
    the CUDA runtime reports at least one device and a first reduction on it succeeds.

    Returns
    -------
    tuple
        The module (:mod:`numpy` or ``cupy``) and a one-line reason for the user.
    """
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip().lower() in _HIDDEN:
        return np, f"numpy: CUDA_VISIBLE_DEVICES={visible!r} hides every GPU"
    try:
        cupy = importlib.import_module("cupy")
    except Exception as error:  # ImportError, or OSError from a wheel missing its CUDA libraries
        return np, f"numpy: cupy is not usable here ({type(error).__name__})"
    try:
        count = int(cupy.cuda.runtime.getDeviceCount())
        if count < 1:
            return np, "numpy: the CUDA runtime sees no GPU"
        cupy.zeros(1).sum()  # a driver/toolkit mismatch only shows on first use
    except Exception as error:  # no driver, no device, busy or broken: no usable GPU here
        return np, f"numpy: no usable GPU ({type(error).__name__}: {error})"[:200]
    return cupy, f"cupy: {count} GPU{'s' if count > 1 else ''} usable"


def array_module() -> ModuleType:
    """The array module for this process: cupy when a GPU is usable, else numpy (never raises)."""
    return device_report()[0]


def array_module_name() -> str:
    """``"cupy"`` or ``"numpy"``: what :func:`array_module` picks here (for ``client.run``)."""
    return array_module().__name__


def device_reason() -> str:
    """Why :func:`array_module` picked its module here (for ``client.run`` and the explorer)."""
    return device_report()[1]


def _block_amplitudes(
    block_id: tuple[int, int, int],
    shape: tuple[int, int, int],
    seed: int,
    rfi_channels: tuple[int, ...],
    offsets: tuple[int, int, int],
    levels: int,
) -> np.ndarray:
    """One block of the synthetic cube, reproducible from the seed and the block's position."""
    rng = np.random.default_rng([seed, *block_id])
    n_time, n_baseline, n_channel = shape
    t0, _, c0 = offsets
    # system noise: Rayleigh-distributed amplitudes around a slowly varying bandpass
    channels = np.arange(c0, c0 + n_channel)
    bandpass = 100.0 + 30.0 * np.sin(channels / 23.0)
    amplitude = rng.rayleigh(1.0, size=shape) * bandpass
    # narrow-band RFI: always on in a few channels (e.g. a satellite downlink)
    for channel in rfi_channels:
        if c0 <= channel < c0 + n_channel:
            amplitude[:, :, channel - c0] += 300.0 + rng.normal(0.0, 20.0, (n_time, n_baseline))
    # broadband bursts: every 97th integration lights up all channels (e.g. a spark)
    times = np.arange(t0, t0 + n_time)
    amplitude[times % 97 == 5] += 6.0 * bandpass
    return np.clip(np.rint(amplitude), 0, levels - 1).astype(np.int16)


def synthetic_visibilities(
    n_time: int = 512,
    n_baseline: int = 64,
    n_channel: int = 128,
    *,
    seed: int = 0,
    chunks: tuple[int, int, int] = (128, 64, 64),
    rfi_channels: tuple[int, ...] = (17, 18, 77),
    levels: int = LEVELS,
) -> xr.DataArray:
    """A seeded synthetic visibility-amplitude cube, lazily built block by block on the workers.

    Parameters
    ----------
    n_time, n_baseline, n_channel
        Size of the cube (integrations, antenna pairs, frequency channels).
    seed
        The seed; the same seed and chunks give the same cube on every machine.
    chunks
        Block shape; each block is generated where it is computed.
    rfi_channels
        Channels with persistent narrow-band interference.
    levels
        Quantization levels: amplitudes are integers in ``[0, levels)``.

    Returns
    -------
    xarray.DataArray
        ``int16`` amplitudes, dims ``(time, baseline, channel)``, with a ``frequency`` (MHz)
        coordinate on ``channel``.
    """
    if min(n_time, n_baseline, n_channel) < 1 or min(chunks) < 1:
        raise ValueError("the cube's sizes and chunks must be positive")
    if not 2 <= levels <= 2**15:
        raise ValueError(f"levels must be between 2 and 32768, not {levels}")
    shape = (n_time, n_baseline, n_channel)
    template = da.empty(shape, chunks=chunks, dtype=np.int16)

    def build(block: np.ndarray, block_info: dict[Any, Any] | None = None) -> np.ndarray:
        info = block_info[None]
        offsets = tuple(start for start, _ in info["array-location"])
        return _block_amplitudes(
            tuple(info["chunk-location"]), block.shape, seed, rfi_channels, offsets, levels
        )

    cube = template.map_blocks(build, dtype=np.int16, meta=np.empty((0, 0, 0), np.int16))
    return xr.DataArray(
        cube,
        dims=("time", "baseline", "channel"),
        coords={
            "time": np.arange(n_time),
            "baseline": np.arange(n_baseline),
            "channel": np.arange(n_channel),
            "frequency": ("channel", 1400.0 + 0.5 * np.arange(n_channel)),
        },
        attrs={"seed": seed, "levels": levels, "units": "correlator counts"},
        name="amplitude",
    )


def _block_histogram(block: Any, levels: int) -> np.ndarray:
    """Per-channel histogram of one block, computed with this worker's array module.

    Returns a numpy ``int64`` array of shape ``(1, 1, channels, levels)``.
    """
    xp = array_module()
    values = xp.asarray(block).astype(xp.int64)
    n_channel = values.shape[2]
    # one bincount for all channels: bin = channel * levels + amplitude
    flat = (values + xp.arange(n_channel, dtype=xp.int64) * levels).ravel()
    counts = xp.bincount(flat, minlength=n_channel * levels).reshape(n_channel, levels)
    counts = counts.get() if hasattr(counts, "get") else counts  # cupy → host
    return np.asarray(counts, dtype=np.int64)[np.newaxis, np.newaxis]


def channel_histograms(vis: xr.DataArray) -> xr.DataArray:
    """Exact per-channel amplitude histograms of ``vis`` (lazy; ``int64`` counts).

    Parameters
    ----------
    vis
        Integer amplitudes with dims ``(time, baseline, channel)`` and a ``levels`` attribute.
    """
    levels = int(vis.attrs.get("levels", LEVELS))
    data = vis.transpose("time", "baseline", "channel").data
    if not isinstance(data, da.Array):
        data = da.from_array(data)
    if not np.issubdtype(data.dtype, np.integer):
        raise TypeError(f"amplitudes must be integers, not {data.dtype}")
    blocks = data.map_blocks(
        _block_histogram,
        levels,
        dtype=np.int64,
        new_axis=3,
        chunks=((1,) * data.numblocks[0], (1,) * data.numblocks[1], data.chunks[2], (levels,)),
        meta=np.empty((0, 0, 0, 0), np.int64),
    )
    counts = blocks.sum(axis=(0, 1), dtype=np.int64)
    return xr.DataArray(
        counts,
        dims=("channel", "level"),
        coords={k: v for k, v in vis.coords.items() if set(v.dims) <= {"channel"}},
        name="counts",
    )


def _order_statistic(cumulative: np.ndarray, rank: np.ndarray) -> np.ndarray:
    """Per row, the value at 0-based ``rank`` of the sorted samples, from cumulative counts."""
    return np.array(
        [np.searchsorted(row, r, side="right") for row, r in zip(cumulative, rank, strict=True)]
    )


def _median(counts: np.ndarray) -> np.ndarray:
    """Per-row median of the samples a histogram describes (numpy's definition: the mean of the
    two middle values for an even number of samples)."""
    total = counts.sum(axis=1)
    cumulative = np.cumsum(counts, axis=1)
    low = _order_statistic(cumulative, (total - 1) // 2)
    high = _order_statistic(cumulative, total // 2)
    return (low + high) / 2.0


def statistics_from_histograms(counts: np.ndarray, k: float = 5.0) -> dict[str, np.ndarray]:
    """Spectrum and RFI statistics from per-channel histograms (rows: channels, columns: levels).

    Parameters
    ----------
    counts
        ``int64`` counts, shape ``(channels, levels)``.
    k
        Flagging threshold in robust standard deviations above the median.

    Returns
    -------
    dict
        ``samples``, ``mean_amplitude`` (the spectrum), ``median_amplitude``, ``mad``,
        ``threshold``, ``flagged`` (samples above the threshold: bursts), ``flagged_fraction``
        and ``rfi_channel`` (the channel's median is an outlier of the median spectrum by the
        same rule: narrow-band interference), one value per channel.
    """
    counts = np.asarray(counts, dtype=np.int64)
    levels = np.arange(counts.shape[1], dtype=np.int64)
    samples = counts.sum(axis=1)
    if np.any(samples == 0):
        raise ValueError("every channel needs at least one sample")
    mean = (counts * levels).sum(axis=1) / samples  # exact integer sum, one division
    median = _median(counts)
    # histogram of |x - median| per channel; deviations are multiples of 0.5
    doubled = np.abs(2 * levels[np.newaxis, :] - (2 * median)[:, np.newaxis]).astype(np.int64)
    deviation_counts = np.zeros((counts.shape[0], 2 * counts.shape[1] + 1), dtype=np.int64)
    rows = np.repeat(np.arange(counts.shape[0]), counts.shape[1])
    np.add.at(deviation_counts, (rows, doubled.ravel()), counts.ravel())
    mad = _median(deviation_counts) / 2.0
    threshold = median + k * MAD_TO_SIGMA * mad
    flagged = np.where(levels[np.newaxis, :] > threshold[:, np.newaxis], counts, 0).sum(axis=1)
    # narrow-band RFI lifts a channel's whole distribution: an outlier of the median spectrum
    spectral_median = float(np.median(median))
    spectral_mad = float(np.median(np.abs(median - spectral_median)))
    rfi_channel = median > spectral_median + k * MAD_TO_SIGMA * spectral_mad
    return {
        "samples": samples,
        "mean_amplitude": mean,
        "median_amplitude": median,
        "mad": mad,
        "threshold": threshold,
        "flagged": flagged,
        "flagged_fraction": flagged / samples,
        "rfi_channel": rfi_channel,
    }


def rfi_statistics(vis: xr.DataArray, k: float = 5.0, **compute_kwargs: Any) -> xr.Dataset:
    """Per-channel spectrum and RFI flags of a visibility-amplitude cube, computed with dask.

    The histograms are computed on the current dask scheduler (the cluster's client when one is
    the default); everything after the summed histograms runs here, in float64.

    Parameters
    ----------
    vis
        Amplitudes as made by :func:`synthetic_visibilities` (or real, quantized data).
    k
        Flagging threshold in robust standard deviations above each channel's median.
    **compute_kwargs
        Passed to ``dask.compute`` (e.g. ``scheduler="threads"``).

    Returns
    -------
    xarray.Dataset
        The variables of :func:`statistics_from_histograms` over ``channel`` (with
        ``frequency``).
    """
    histograms = channel_histograms(vis)
    counts = histograms.data.compute(**compute_kwargs)
    stats = statistics_from_histograms(counts, k=k)
    coords = {name: coord for name, coord in histograms.coords.items()}
    dataset = xr.Dataset(
        {name: ("channel", values) for name, values in stats.items()}, coords=coords
    )
    dataset.attrs.update(k=k, levels=counts.shape[1], seed=vis.attrs.get("seed"))
    return dataset
