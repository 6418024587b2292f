"""gpu_bandwidth: achieved memory bandwidth of a Dask + cupy reduction, as a fraction of peak.

Fills a float32 array in GPU memory (``--gib``, default 8 GiB, chunks of 256 MiB), sums it with
``dask.array`` on cupy blocks (threads scheduler: one GPU, one process) a few times, and prints
the best achieved bandwidth (bytes read / time) against the device's peak, which is read from the
device: ``2 × memoryClockRate × memoryBusWidth / 8`` (double data rate). Exits 1 below the goal
(``--goal``, default 0.70). Needs cupy and a GPU; ``bench/gpu_check.sh`` runs it.
"""

from __future__ import annotations

import argparse
import time

import cupy
import dask
import dask.array as da


def peak_bandwidth(device: int = 0) -> float:
    """The device's theoretical memory bandwidth in bytes per second."""
    props = cupy.cuda.runtime.getDeviceProperties(device)
    return 2.0 * props["memoryClockRate"] * 1e3 * props["memoryBusWidth"] / 8


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gib", type=float, default=8.0, help="array size in GiB")
    parser.add_argument("--repeat", type=int, default=5, help="timed reductions (best counts)")
    parser.add_argument("--goal", type=float, default=0.70, help="fraction of peak to reach")
    args = parser.parse_args()
    n = int(args.gib * 2**30 / 4)
    data = cupy.random.default_rng(0).random(n, dtype=cupy.float32)
    array = da.from_array(data, chunks=2**26, asarray=False)  # 256 MiB blocks, stay on device
    total = array.sum(dtype=cupy.float64)
    with dask.config.set(scheduler="threads"):
        total.compute()  # warm-up: kernels compiled, pools filled
        times = []
        for _ in range(args.repeat):
            cupy.cuda.Device().synchronize()
            start = time.perf_counter()
            float(total.compute())
            cupy.cuda.Device().synchronize()
            times.append(time.perf_counter() - start)
    achieved = data.nbytes / min(times)
    peak = peak_bandwidth()
    name = cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()
    fraction = achieved / peak
    print(
        f"{name}: Dask + cupy sum of {data.nbytes / 2**30:.1f} GiB in {min(times) * 1e3:.1f} ms: "
        f"{achieved / 1e9:.0f} GB/s of a {peak / 1e9:.0f} GB/s peak = {fraction:.0%} "
        f"(goal {args.goal:.0%}: {'met' if fraction >= args.goal else 'NOT met'})"
    )
    return 0 if fraction >= args.goal else 1


if __name__ == "__main__":
    raise SystemExit(main())
