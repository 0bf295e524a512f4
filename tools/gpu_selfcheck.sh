#!/usr/bin/env bash
# One-script GPU self-check for a machine with an NVIDIA GPU and NO internet (docs/gpu.md):
#   1. wheels     the wheel folder made by tools/misc/collect_wheels.sh is complete
#   2. install    a scratch venv (--system-site-packages: the machine's CUDA torch is reused)
#                 gets every wheel of the folder, offline
#   3. mmcv       mmcv 2.1.0 built from the folder's sdist with CUDA ops for the visible GPU
#                 architecture (the wheel is cached, keyed like tools/setup_env.sh:
#                 $MMSAM_WHEEL_CACHE/torch<ver>-cp<py>-cu<CUDA>-sm<archs>/)
#   4. tests      pytest -m gpu (mmcv's kernels on this GPU, the GPU paths of the models)
#   5. benchmark  tools/analysis/benchmark_gpu.py at real geometry, random weights
# Budget on one H100 with 16 cores (each step is stopped at its budget; a summary table
# gives budget and time per step): wheels 10 s + install 60 s + mmcv 240 s (a cached wheel:
# seconds) + tests 60 s + benchmark 120 s = 490 s < 8.5 min. The mmcv compile is the only long
# step; with its wheel cached a run takes about 3.5 minutes.
#
# --dry-run runs every step that needs no GPU, here: the folder is made if missing (needs
# internet) and checked, its wheels are installed for the GPU machine's Python into a
# scratch folder (pip --target), the mmcv sdist is unpacked, patched and its metadata read
# (no compile), the gpu tests are listed, and the benchmark runs at tiny sizes on CPU.
#
# Usage:
#   bash tools/gpu_selfcheck.sh [--dry-run] [--wheels DIR] [--out DIR] [--only STEPS] [--keep]
#     --wheels DIR   the wheel folder                  (default: build/gpu_wheels)
#     --only STEPS   comma-separated steps to run, e.g. wheels,install,mmcv (default: all)
#     --out DIR      log, benchmark table and JSON      (default: work_dirs/gpu_selfcheck)
#     --keep         keep the scratch venv / folder (printed at the end)
# Environment: GPU_PYTHON (default python3), MMSAM_WHEEL_CACHE (~/.cache/mmsamantics/wheels),
#   TORCH_CUDA_ARCH_LIST (default: the visible GPUs'), MAX_JOBS (default: all cores).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
dry=0 keep=0 only=wheels,install,mmcv,tests,benchmark
wheels=$repo/build/gpu_wheels
out=$repo/work_dirs/gpu_selfcheck
while [[ $# -gt 0 ]]; do
  case $1 in
    --dry-run) dry=1 ;;
    --keep) keep=1 ;;
    --only) only=${2:?--only needs steps}; shift ;;
    --wheels) wheels=$(realpath -m "${2:?--wheels needs a folder}"); shift ;;
    --out) out=$(realpath -m "${2:?--out needs a folder}"); shift ;;
    *) echo "usage: tools/gpu_selfcheck.sh [--dry-run] [--wheels DIR] [--out DIR] [--only STEPS] [--keep]" >&2
       exit 2 ;;
  esac
  shift
done
MMCV_VERSION=2.1.0
mkdir -p "$out"
scratch=$(mktemp -d)
log=$out/selfcheck.log
: > "$log"
summary=()
cleanup() { [[ $keep == 1 ]] && echo "[selfcheck] scratch kept: $scratch" || rm -rf "$scratch"; }
trap cleanup EXIT

die() { printf '[selfcheck] ERROR: %s\n' "$*" | tee -a "$log" >&2; exit 1; }
run_step() {  # run_step NAME BUDGET_S FUNCTION: timed, stopped at its budget, logged
  local name=$1 budget=$2 fn=$3 t0 rc=0
  if [[ ,$only, != *,$name,* ]]; then
    summary+=("$(printf '| %-9s | %4ss |    - | skipped |' "$name" "$budget")")
    return 0
  fi
  printf '\n\033[1m[selfcheck %s] %s (budget %ss)\033[0m\n' "$(date +%H:%M:%S)" "$name" "$budget"
  t0=$(date +%s)
  export -f "$fn"
  timeout "$budget" bash -c "set -euo pipefail; $fn" 2>&1 | tee -a "$log" || rc=$?
  summary+=("$(printf '| %-9s | %4ss | %4ss | %s |' "$name" "$budget" "$(( $(date +%s) - t0 ))" \
    "$([[ $rc == 0 ]] && echo ok || { [[ $rc == 124 ]] && echo 'over budget' || echo "failed ($rc)"; })")")
  [[ $rc == 0 ]] || { print_summary; die "step '$name' failed (exit $rc): see $log"; }
}
print_summary() {
  printf '\n| step      | budget | took | result |\n|---|---|---|---|\n'
  printf '%s\n' "${summary[@]}"
}

if [[ $dry == 1 ]]; then
  gpy=$repo/.venv/bin/python  # runs the tests' listing and the tiny benchmark here
  [[ -x $gpy ]] || die "no $gpy: run 'make env' first"
else
  gpy=${GPU_PYTHON:-python3}
  command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1 \
    || die "no GPU visible (nvidia-smi): run with --dry-run on a machine without one"
  command -v nvcc >/dev/null || die "nvcc not found: the mmcv build needs the CUDA toolkit (its bin/ on the PATH)"
fi
export repo wheels out scratch gpy dry MMCV_VERSION

# --- 1. the wheel folder ---------------------------------------------------------------------
step_wheels() {
  if [[ ! -f $wheels/gpu-requirements.txt ]]; then
    [[ $dry == 1 ]] || { echo "no wheel folder $wheels: make it with tools/misc/collect_wheels.sh on a machine with internet and copy it here"; exit 1; }
    bash "$repo/tools/misc/collect_wheels.sh" "$wheels"
  fi
  local missing=()
  while IFS='=' read -r name _ version; do
    ls "$wheels" | grep -iq "^${name//-/_}-$version-.*\.whl$" || missing+=("$name==$version")
  done < "$wheels/gpu-requirements.txt"
  [[ ${#missing[@]} == 0 ]] || { echo "missing wheels: ${missing[*]} (re-run tools/misc/collect_wheels.sh)"; exit 1; }
  [[ -f $wheels/mmcv-$MMCV_VERSION.tar.gz ]] || { echo "no mmcv-$MMCV_VERSION.tar.gz in $wheels"; exit 1; }
  echo "$(wc -l < "$wheels/gpu-requirements.txt") wheels + the mmcv sdist in $wheels"
}

# --- 2. install, offline ---------------------------------------------------------------------
step_install() {
  local pipq=(-m pip --disable-pip-version-check install -q --no-index --no-deps
              --find-links "$wheels" -r "$wheels/gpu-requirements.txt")
  if [[ $dry == 1 ]]; then  # for the GPU machine's Python, into a plain folder
    local target platforms args=()
    [[ -f $wheels/gpu-target.txt ]] || { echo "no $wheels/gpu-target.txt: re-run tools/misc/collect_wheels.sh"; exit 1; }
    target=$(sed -n 's/^python=//p' "$wheels/gpu-target.txt")
    platforms=$(sed -n 's/^platforms=//p' "$wheels/gpu-target.txt")
    for p in $platforms; do args+=(--platform "$p"); done
    "$gpy" "${pipq[@]}" --only-binary=:all: --python-version "$target" --implementation cp \
      --abi "cp${target/./}" "${args[@]}" --target "$scratch/site"
    echo "installed for Python $target into $scratch/site: $(ls "$scratch/site" | grep -c 'dist-info$') distributions"
  else
    "$gpy" -m venv --system-site-packages "$scratch/venv"
    "$scratch/venv/bin/python" "${pipq[@]}"
    "$scratch/venv/bin/python" -c 'import torch, torchvision; assert torch.cuda.is_available(), "torch sees no GPU"; print("torch", torch.__version__, "CUDA", torch.version.cuda, torch.cuda.get_device_name())' \
      || { echo "torch/torchvision unusable in the scratch venv: the machine needs a CUDA torch (and torchvision, or GPU_TORCHVISION=<its version> for collect_wheels.sh)"; exit 1; }
  fi
}

# --- 3. mmcv with CUDA ops -------------------------------------------------------------------
step_mmcv() {
  local src=$scratch/mmcv vpy=$scratch/venv/bin/python key cached
  mkdir -p "$src"
  tar -xzf "$wheels/mmcv-$MMCV_VERSION.tar.gz" -C "$src"
  # torch >= 2.14 headers need C++20; mmcv 2.1.0 hard-codes -std=c++17 (as tools/setup_env.sh)
  sed -i "s/-std=c++17/-std=c++20/g" "$src/mmcv-$MMCV_VERSION/setup.py"
  if [[ $dry == 1 ]]; then
    (cd "$src/mmcv-$MMCV_VERSION" && MMCV_WITH_OPS=1 "$gpy" setup.py --name --version 2>/dev/null | tail -n 2 | tr '\n' ' ')
    echo "(sdist unpacked and patched; compiled only on the GPU machine)"
    return 0
  fi
  export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | sort -u | paste -sd ';' -)}
  key=$("$vpy" -c 'import sys, torch; v = torch.__version__.split("+")[0]; print(f"torch{v}-cp{sys.version_info[0]}{sys.version_info[1]}")')
  key=$key-cu$(nvcc --version | sed -n 's/.*release \([0-9.]*\),.*/\1/p')-sm$(echo "$TORCH_CUDA_ARCH_LIST" | tr -s ' ;,' '___' | tr -d '.')
  cached=${MMSAM_WHEEL_CACHE:-$HOME/.cache/mmsamantics/wheels}/$key
  mkdir -p "$cached"
  if ! ls "$cached"/mmcv-$MMCV_VERSION-*.whl >/dev/null 2>&1; then
    echo "building mmcv with CUDA ops for TORCH_CUDA_ARCH_LIST=$TORCH_CUDA_ARCH_LIST ($key)"
    # the venv's ninja on the PATH: without it torch's extension builder compiles serially
    (cd "$src/mmcv-$MMCV_VERSION" && PATH=$scratch/venv/bin:$PATH MMCV_WITH_OPS=1 FORCE_CUDA=1 MAX_JOBS=${MAX_JOBS:-$(nproc)} \
      CFLAGS=-g0 "$vpy" -m pip wheel -q --no-build-isolation --no-deps -w "$cached" .)
  fi
  "$vpy" -m pip install -q --no-index --no-deps --force-reinstall "$cached"/mmcv-$MMCV_VERSION-*.whl
  (cd "$repo" && "$vpy" -c 'from mmsamantics.engine import check_gpu_stack; print("GPU stack:", check_gpu_stack())')
}

# --- 4. the gpu tests ------------------------------------------------------------------------
step_tests() {
  cd "$repo"
  # only the files that mark gpu tests are collected (collecting the suite takes minutes
  # and imports optional packages)
  mapfile -t files < <(grep -rl 'mark.gpu' tests --include='test_*.py' | sort)
  [[ ${#files[@]} -gt 0 ]] || { echo "no test is marked gpu"; exit 1; }
  if [[ $dry == 1 ]]; then
    "$gpy" -m pytest --collect-only -q -p no:cacheprovider -m gpu "${files[@]}" | grep '::'
  else
    "$scratch/venv/bin/python" -m pytest -q -p no:cacheprovider -m gpu "${files[@]}"
  fi
}

# --- 5. the benchmark ------------------------------------------------------------------------
step_benchmark() {
  cd "$repo"
  local name=benchmark_gpu vpy=$scratch/venv/bin/python args=(--iters 3)
  if [[ $dry == 1 ]]; then
    name=benchmark_tiny vpy=$gpy args=(--tiny --device cpu --iters 1)
  fi
  # the table on the terminal; the full output (model logs, warnings) in $name.log
  OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} "$vpy" tools/analysis/benchmark_gpu.py "${args[@]}" \
    --json "$out/$name.json" > "$out/$name.log" 2>&1 \
    || { tail -n 20 "$out/$name.log"; exit 1; }
  sed -n '/^Device:/,$p' "$out/$name.log" | tee "$out/$name.md"
}

# budgets: GPU machine | dry run here (2 slow cores; the folder may have to be downloaded)
run_step wheels "$([[ $dry == 1 ]] && echo 600 || echo 10)" step_wheels
run_step install "$([[ $dry == 1 ]] && echo 240 || echo 60)" step_install
run_step mmcv "$([[ $dry == 1 ]] && echo 30 || echo 240)" step_mmcv
run_step tests "$([[ $dry == 1 ]] && echo 120 || echo 60)" step_tests
run_step benchmark "$([[ $dry == 1 ]] && echo 400 || echo 120)" step_benchmark
print_summary | tee -a "$log"
echo "[selfcheck] $([[ $dry == 1 ]] && echo 'dry run' || echo 'GPU self-check') passed; log, table and JSON in $out"
