#!/usr/bin/env bash
# gpu_check: the GPU check of issue 14, one command on a fresh machine with the repository and
# the package index:   bash bench/gpu_check.sh
#
# 1. a throwaway virtual environment (removed at exit) with what continuum_widgets' analysis and
#    explore need, plus cupy-cuda12x when an NVIDIA GPU is present;
# 2. CPU half: the analysis and explore unit tests on numpy (CUDA_VISIBLE_DEVICES=-1), the
#    background computation of views (progress, cancellation) included;
# 3. on a machine without an NVIDIA GPU: says so and exits 0 here;
# 4. GPU half: the `gpu` tests (cupy picked; histograms and explore aggregation equal numpy's),
#    then a Dask + cupy reduction's achieved memory bandwidth against the device's peak
#    (bench/gpu_bandwidth.py, goal ≥ 70 %).
# The whole check is bounded to 10 minutes. PYTHON selects the interpreter (≥ 3.11; default
# python3); CHECK_VENV reuses a prepared environment instead of building one.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
deadline=$((SECONDS + 600))
left() { echo $((deadline - SECONDS > 1 ? deadline - SECONDS : 1)); }

has_gpu=0
if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q '^GPU '; then
    has_gpu=1
    nvidia-smi -L
fi

if [[ -n "${CHECK_VENV:-}" ]]; then
    venv="$CHECK_VENV"
else
    scratch="$(mktemp -d /tmp/gpu-check.XXXXXX)"
    trap 'rm -rf "$scratch"' EXIT
    venv="$scratch/venv"
    echo "== throwaway environment in $venv"
    "${PYTHON:-python3}" -m venv "$venv"
    packages=(
        "numpy" "dask[array]>=2026.6" "distributed>=2026.6" "xarray>=2025.1"
        "panel==1.9.4" "holoviews==1.23.2" "datashader==0.19.1" "psutil"
        "pytest>=8" "pytest-asyncio>=0.24" "pytest-timeout>=2.3"
    )
    [[ $has_gpu == 1 ]] && packages+=("cupy-cuda12x")
    timeout "$(left)" "$venv/bin/pip" install --quiet --disable-pip-version-check "${packages[@]}"
fi

# the widgets from the working tree, without building the whole distribution; --noconftest: the
# suite's conftest starts the local federation's fixtures, which these tests do not use
export PYTHONPATH="$PWD/widgets${PYTHONPATH:+:$PYTHONPATH}"
pytest=("$venv/bin/python" -m pytest --noconftest -p no:cacheprovider -q)
unit=(tests/unit/test_analysis.py tests/unit/test_explore_aggregate.py tests/unit/test_explore_app.py
    tests/unit/test_explore_progress.py)

echo "== CPU half: analysis and explore on numpy"
CUDA_VISIBLE_DEVICES=-1 timeout "$(left)" "${pytest[@]}" "${unit[@]}"

if [[ $has_gpu == 0 ]]; then
    echo "== no NVIDIA GPU on this machine (nvidia-smi finds none): the GPU half does not apply"
    exit 0
fi

echo "== GPU half: cupy results equal numpy's"
timeout "$(left)" "${pytest[@]}" -m gpu tests/unit/test_gpu.py
echo "== GPU half: Dask + cupy reduction bandwidth"
timeout "$(left)" "$venv/bin/python" bench/gpu_bandwidth.py
