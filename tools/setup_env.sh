#!/usr/bin/env bash
# Create (or refresh) the project's virtual environment with the known-good stack:
#   torch 2.14.1 + torchvision 0.29.1, mmcv 2.1.0 WITH ops, mmengine 0.10.7, mmdet 3.3.0,
#   mmpretrain 1.2.0, segment-anything 1.0, sam2 1.1.0, then `pip install -e .`.
#
# Idempotent: a stamp file records the hash of this script and of requirements/; when it
# matches the script, the requirements AND the build kind of mmcv's ops (cpu, or CUDA version
# + GPU architectures), nothing is done. mmcv 2.1.0 is only published as a source
# distribution; it is built once (about 20 min on 2 CPU cores) and the wheel is cached OUTSIDE
# the repository, in $MMSAM_WHEEL_CACHE/torch<version>-cp<python>-cpu/ or
# .../torch<version>-cp<python>-cu<CUDA>-sm<archs>/ (docs/install.md, docs/gpu.md).
#
# Usage:
#   bash tools/setup_env.sh                     set up (or confirm) the environment
#   bash tools/setup_env.sh --cuda              build mmcv's CUDA ops (= MMSAM_FORCE_CUDA=1)
#   bash tools/setup_env.sh --plan              print the build kind, the wheel cache folder
#                                               and whether the stamp is current; change nothing
#   bash tools/setup_env.sh --check-mmcv-source DIR
#       only fetch the mmcv sdist into DIR, patch it and read its metadata with the venv's
#       build tools (no compile): a quick guard that the source route still works
#
# Build kind: CUDA ops when a GPU is visible (nvidia-smi) or MMSAM_FORCE_CUDA=1 (a build node
# without a GPU); they need nvcc. A visible GPU without nvcc stops with the fix (install the
# CUDA toolkit, or MMSAM_FORCE_CPU=1 for CPU ops on purpose).
#
# Environment variables:
#   MMSAM_VENV         venv folder                       (default: <repo>/.venv)
#   MMSAM_PYTHON       python used to create the venv    (default: python3)
#   MMSAM_WHEEL_CACHE  folder of cached mmcv wheels      (default: ~/.cache/mmsamantics/wheels)
#   MMSAM_FORCE_CPU=1  build mmcv CPU ops even when a GPU is present
#   MMSAM_FORCE_CUDA=1 build mmcv CUDA ops even when no GPU is visible (needs nvcc)
#   TORCH_CUDA_ARCH_LIST  GPU architectures of the CUDA build, e.g. "8.0;9.0"
#                      (default: those of the visible GPUs; required without a visible GPU)
#   CXX                C++ compiler for the mmcv build   (default: c++)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${MMSAM_VENV:-$repo/.venv}
py=${MMSAM_PYTHON:-python3}
cache=${MMSAM_WHEEL_CACHE:-$HOME/.cache/mmsamantics/wheels}
cons=$repo/requirements/constraints.txt
cxx=${CXX:-c++}
MMCV_VERSION=2.1.0
TORCH_VERSION=2.14.1

# --- failure reporting: the last line of any failed run says what failed and what to do ----
current_step="starting"
current_hint="read the messages above"
reported=0
step() {
  current_step=$1
  current_hint=${2:-read the messages above}
  printf '\n\033[1m[setup %s] %s\033[0m\n' "$(date +%H:%M:%S)" "$1"
}
die() {
  printf '\n[setup] ERROR: %s\n' "$*" >&2
  reported=1
  exit 1
}
on_exit() {
  local rc=$?
  if [[ $rc != 0 && $reported == 0 ]]; then
    printf '\n[setup] ERROR: step "%s" failed (exit %s); %s, then run `make env` again.\n' \
      "$current_step" "$rc" "$current_hint" >&2
  fi
  [[ -n ${build:-} ]] && rm -rf "$build"
  return 0
}
trap on_exit EXIT
trap 'exit 130' INT

# --- prerequisites, checked before any long step --------------------------------------------
need() {  # need WHAT DEBIAN_PKG RHEL_PKG
  die "$1 is missing: install it (Debian/Ubuntu: sudo apt-get install $2; RHEL/Fedora: sudo dnf install $3)"
}

check_python() {
  command -v "$py" >/dev/null || need "Python 3.11 ('$py' not found; or set MMSAM_PYTHON)" python3.11 python3.11
  local v
  v=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  case $v in
    3.10|3.11|3.12) ;;
    *) die "Python $v found ('$py'); the stack needs Python 3.10-3.12 (tested: 3.11): install python3.11 and set MMSAM_PYTHON=python3.11" ;;
  esac
  [[ $v == 3.11 ]] || echo "[setup] note: Python $v; the tested stack is Python 3.11"
  "$py" -c 'import venv, ensurepip' 2>/dev/null \
    || need "Python's venv module (for '$py')" "python$v-venv" "python$v (it ships venv)"
  py_version=$v
}

check_build_tools() {  # only needed when mmcv is compiled here
  command -v "$cxx" >/dev/null || need "a C++ compiler ('$cxx')" g++ gcc-c++
  printf 'template <class T> concept Any = true;\nint main() { return 0; }\n' \
    | "$cxx" -std=c++20 -x c++ - -o /dev/null 2>/dev/null \
    || need "a C++ compiler that accepts -std=c++20 ('$cxx' does not: GCC >= 10 or Clang >= 10)" \
      g++ gcc-c++
  local inc
  inc=$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
  [[ -f $inc/Python.h ]] || need "the Python $py_version headers (Python.h)" \
    "python$py_version-dev" "python$py_version-devel"
}

cached_wheel() {  # prints the cached mmcv wheel for this python/torch/build kind, if any
  ls "$1"/mmcv-$MMCV_VERSION-*.whl 2>/dev/null | head -n1 || true
}

# --- build kind: cpu, or cu<CUDA>-sm<archs> ------------------------------------------------
gpu_visible() { command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; }

nvcc_version() {  # "12.8" from nvcc --version, empty without nvcc
  command -v nvcc >/dev/null || return 0
  nvcc --version 2>/dev/null | sed -n 's/.*release \([0-9][0-9]*\.[0-9][0-9]*\).*/\1/p' | head -n1
}

visible_archs() {  # "8.0;9.0": compute capabilities of the visible GPUs, sorted, unique
  nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null \
    | tr -d ' ' | grep -E '^[0-9]+\.[0-9]+$' | sort -u -V | paste -sd ';' - || true
}

decide_kind() {  # sets cuda_ops (0/1), kind (cpu | cu12.8-sm80_90) and exports the arch list
  local force_cpu=${MMSAM_FORCE_CPU:-0} force_cuda=${MMSAM_FORCE_CUDA:-0} nv archs
  [[ $force_cpu == 1 && $force_cuda == 1 ]] \
    && die "MMSAM_FORCE_CPU=1 and MMSAM_FORCE_CUDA=1 (or --cuda) contradict each other: unset one"
  cuda_ops=0
  kind=cpu
  if [[ $force_cpu == 1 ]] || { [[ $force_cuda != 1 ]] && ! gpu_visible; }; then
    return 0
  fi
  nv=$(nvcc_version)
  [[ -n $nv ]] || die "$([[ $force_cuda == 1 ]] && echo 'MMSAM_FORCE_CUDA=1 (or --cuda) asks for' || echo 'a GPU is visible (nvidia-smi): building') mmcv's CUDA ops, which needs nvcc, and none is on the PATH: install the CUDA toolkit whose version matches torch's (python -c 'import torch; print(torch.version.cuda)') and put its bin/ on the PATH, or set MMSAM_FORCE_CPU=1 to build CPU-only ops on purpose (training on a GPU then needs --allow-pytorch-deform-attn)"
  archs=${TORCH_CUDA_ARCH_LIST:-}
  if [[ -z $archs ]]; then
    archs=$(visible_archs)
    [[ -n $archs ]] || die "no GPU architecture to build mmcv's CUDA ops for: set TORCH_CUDA_ARCH_LIST, e.g. TORCH_CUDA_ARCH_LIST=\"8.0;9.0\" (A100 8.0, L4/L40 8.9, H100/H200 9.0)"
  fi
  export TORCH_CUDA_ARCH_LIST=$archs
  cuda_ops=1
  # "8.0;9.0+PTX" -> sm80_90+PTX: the folder name of the wheel cache
  kind=cu$nv-sm$(echo "$archs" | tr -s ' ;,' '___' | tr -d '.' | sed 's/^_//; s/_$//')
}

# --- the mmcv source route ------------------------------------------------------------------
fetch_mmcv_source() {  # fetch_mmcv_source DIR: sdist downloaded, unpacked and patched in DIR
  local dir=$1
  step "fetching the mmcv $MMCV_VERSION source distribution" \
    "check that PyPI is reachable (pip download mmcv==$MMCV_VERSION) and that the venv holds setuptools<81"
  # --no-build-isolation: pip prepares the sdist's metadata with the venv's setuptools<81;
  # an isolated build env would take the newest setuptools, which has no pkg_resources,
  # and mmcv's setup.py imports it.
  pip download -q --no-deps --no-binary :all: --no-build-isolation "mmcv==$MMCV_VERSION" -d "$dir" \
    || die "could not download or prepare the mmcv $MMCV_VERSION sdist (see pip's message above): check that PyPI is reachable and that '$venv' holds setuptools<81 (delete the venv and run 'make env' again)"
  tar -xzf "$dir/mmcv-$MMCV_VERSION.tar.gz" -C "$dir"
  # torch >= 2.14 headers need C++20; mmcv 2.1.0 hard-codes -std=c++17 for its extension.
  sed -i "s/-std=c++17/-std=c++20/g" "$dir/mmcv-$MMCV_VERSION/setup.py"
  grep -q -- "-std=c++20" "$dir/mmcv-$MMCV_VERSION/setup.py" \
    || die "could not patch mmcv's C++ standard flag in $dir/mmcv-$MMCV_VERSION/setup.py (has the sdist changed?)"
  grep -q -- "-std=c++17" "$dir/mmcv-$MMCV_VERSION/setup.py" \
    && die "mmcv's setup.py still asks for -std=c++17 after patching"
  return 0
}

check_mmcv_source() {  # the guard: fetch, patch, read the metadata; no compile
  local dir=$1 meta
  mkdir -p "$dir"
  fetch_mmcv_source "$dir"
  step "reading the patched mmcv metadata with the venv's build tools" \
    "the venv's setuptools cannot read mmcv's setup.py"
  meta=$(cd "$dir/mmcv-$MMCV_VERSION" && MMCV_WITH_OPS=1 "$vpy" setup.py --name --version 2>/dev/null | tail -n 2 | tr '\n' ' ')
  [[ $meta == "mmcv $MMCV_VERSION " ]] || die "the patched mmcv sdist reports '$meta', expected 'mmcv $MMCV_VERSION'"
  echo "[setup] mmcv source route OK: $meta(C++20 patch applied)"
}

build_mmcv() {  # build_mmcv WHEEL_DIR CUDA_OPS
  local wdir=$1 cuda_ops=$2
  build=$(mktemp -d)
  fetch_mmcv_source "$build"
  step "building mmcv $MMCV_VERSION from source with $kind ops (about 20 min on 2 cores, once; cached in $wdir)" \
    "read the compiler output above (a missing header or compiler feature); or build the wheel on another machine and copy it into $wdir (docs/install.md)"
  (cd "$build/mmcv-$MMCV_VERSION" && MMCV_WITH_OPS=1 FORCE_CUDA=$cuda_ops MAX_JOBS=${MAX_JOBS:-$(nproc)} \
    CFLAGS=-g0 CXX="$cxx" "$vpy" -m pip wheel -q --no-build-isolation --no-deps -w "$wdir" .) \
    || die "the mmcv build failed (see the compiler output above): fix the missing tool it names, or copy a wheel built elsewhere into $wdir (docs/install.md), then run 'make env' again"
}

# --- main -----------------------------------------------------------------------------------
usage="usage: tools/setup_env.sh [--cuda] [--plan] [--check-mmcv-source DIR]"
mode=setup
while [[ $# -gt 0 ]]; do
  case $1 in
    --check-mmcv-source)
      mode=check
      [[ -n ${2:-} ]] || die "usage: tools/setup_env.sh --check-mmcv-source DIR"
      check_dir=$2
      shift ;;
    --cuda) MMSAM_FORCE_CUDA=1 ;;
    --plan) mode=plan ;;
    *) die "unknown argument '$1' ($usage)" ;;
  esac
  shift
done

# the stamp names the build kind: a venv set up with CPU ops is not "up to date" for a later
# run that sees a GPU (or is asked for CUDA ops)
cuda_ops=0
kind=cpu
[[ $mode == check ]] || decide_kind
stamp_hash=$(cat "$0" "$repo"/requirements/*.txt "$repo/setup.py" | sha256sum | cut -c1-16)
stamp=$venv/.mmsamantics-setup-$stamp_hash-$kind
if [[ $mode == setup && -f $stamp ]]; then
  echo "[setup] environment $venv is up to date (stamp $stamp_hash, mmcv ops: $kind)"
  exit 0
fi

step "checking prerequisites" "install what the line above names"
check_python
torch_tag=torch$TORCH_VERSION-cp${py_version/./}
wdir=$cache/$torch_tag-$kind
if [[ $mode == plan ]]; then
  archs_note=$([[ $cuda_ops == 1 ]] && echo " (TORCH_CUDA_ARCH_LIST=$TORCH_CUDA_ARCH_LIST)" || true)
  echo "[setup] plan: mmcv ops $kind$archs_note; wheel cache $wdir; stamp $stamp $([[ -f $stamp ]] && echo '(current)' || echo '(missing: the next run sets up)')"
  exit 0
fi
# the kind of the installed mmcv, written after a successful run; CUDA ops are reused only
# when built for the same CUDA version and architectures
kind_file=$venv/.mmsamantics-mmcv-kind
have_mmcv=0
[[ -x $venv/bin/python ]] && "$venv/bin/python" -c "import mmcv, mmcv.ops; assert mmcv.__version__ == '$MMCV_VERSION'" 2>/dev/null && have_mmcv=1
if [[ $have_mmcv == 1 && $cuda_ops == 1 && $(cat "$kind_file" 2>/dev/null) != "$kind" ]]; then
  have_mmcv=0
fi
if [[ $mode == check || ( $have_mmcv == 0 && -z $(cached_wheel "$wdir") ) ]]; then
  check_build_tools
fi
echo "[setup] $py (Python $py_version); mmcv: $([[ $have_mmcv == 1 ]] && echo installed || { [[ -n $(cached_wheel "$wdir") ]] && echo "cached wheel in $wdir" || echo "to build from source ($kind ops)"; })"

step "virtual environment: $venv" "check that '$py -m venv' works and that the folder is writable"
[[ -x $venv/bin/python ]] || "$py" -m venv "$venv" || die "could not create a venv in $venv with $py: install python$py_version-venv (Debian/Ubuntu) and check the folder is writable"
vpy=$venv/bin/python
pip() { "$vpy" -m pip --disable-pip-version-check "$@"; }

if [[ $mode == setup || ! -x $venv/bin/ninja ]]; then
  step "pip, setuptools<81 (mmcv's setup.py imports pkg_resources), wheel, ninja" \
    "check that PyPI is reachable from this machine"
  pip install -q -U pip wheel ninja -c "$cons" "setuptools<81"
fi
"$venv/bin/ninja" --version >/dev/null 2>&1 || command -v ninja >/dev/null \
  || need "ninja (the pip package did not install a working binary)" ninja-build ninja-build

if [[ $mode == check ]]; then
  check_mmcv_source "$check_dir"
  exit 0
fi

step "torch $TORCH_VERSION + torchvision 0.29.1 (standard CUDA builds; they also run on CPU)" \
  "check that PyPI is reachable and the disk has ~6 GB free"
pip install -q "torch==$TORCH_VERSION" torchvision==0.29.1 -c "$cons"

step "runtime dependencies (requirements/runtime.txt, tests.txt, optional.txt)" \
  "check that PyPI is reachable; the package pip names above could not be installed"
pip install -q -r "$repo/requirements/runtime.txt" -r "$repo/requirements/tests.txt" -c "$cons"
# HQ-SAM is an optional backbone; its absence must not break the install.
pip install -q --no-deps -r "$repo/requirements/optional.txt" -c "$cons" \
  || echo "[setup] warning: optional packages could not be installed (HQ-SAM backbone disabled)"

step "mmengine, mmdet, mmpretrain, segment-anything (--no-deps: they declare GUI opencv)" \
  "check that PyPI is reachable"
pip install -q --no-deps mmengine==0.10.7 mmdet==3.3.0 mmpretrain==1.2.0 segment-anything==1.0

step "sam2 1.1.0 and sam3 0.1.4 (SAM2_BUILD_CUDA=0, no build isolation so it does not pull another torch)" \
  "check that PyPI is reachable and the venv holds setuptools<81"
SAM2_BUILD_CUDA=0 pip install -q --no-deps --no-build-isolation sam2==1.1.0 sam3==0.1.4

# --- mmcv 2.1.0 with ops ---------------------------------------------------------------------
mkdir -p "$wdir" || die "cannot create the wheel cache $wdir: set MMSAM_WHEEL_CACHE to a writable folder"
if [[ $have_mmcv == 1 ]]; then
  echo "[setup] mmcv $MMCV_VERSION with ops already installed"
else
  whl=$(cached_wheel "$wdir")
  if [[ -z $whl ]]; then
    build_mmcv "$wdir" "$cuda_ops"
    whl=$(cached_wheel "$wdir")
  fi
  step "installing $whl" "the wheel may be broken: delete it and run 'make env' again to rebuild"
  pip install -q --no-deps --force-reinstall "$whl"
fi

step "mmsamantics (editable)" "read pip's message above"
pip install -q --no-deps --no-build-isolation -e "$repo"

step "checking the stack" "a package above did not install correctly: delete $venv and run 'make env' again"
"$vpy" - <<'EOF' || die "the installed stack does not import (see the traceback above): delete $venv and run 'make env' again; if mmcv is the cause, also delete the cached wheel in $wdir"
import torch, torchvision, mmcv, mmengine, mmdet, segment_anything, sam2
from mmcv.ops import nms, MultiScaleDeformableAttention  # compiled ops present
import mmsamantics, mmsamantics_toy  # the plugin and the toy package setup.py installs
print(f"torch {torch.__version__} (cuda available: {torch.cuda.is_available()}), "
      f"mmcv {mmcv.__version__}, mmengine {mmengine.__version__}, mmdet {mmdet.__version__}, "
      f"mmsamantics {mmsamantics.__version__}")
EOF
if [[ $cuda_ops == 1 ]]; then
  # CUDA ops really compiled in; with a GPU visible to torch, one deformable-attention op
  # runs on it against the PyTorch path (a wheel of another architecture fails here)
  "$vpy" - <<'EOF' || die "mmcv's CUDA ops do not work here (see the message above): delete the wheel in $wdir and run this script again (set TORCH_CUDA_ARCH_LIST to this GPU's architecture if the message names one)"
import sys
import torch
from mmsamantics.engine.gpu_stack import GPUStackError, check_gpu_stack, mmcv_cuda_version
if mmcv_cuda_version() is None:
    sys.exit('mmcv was built without CUDA ops')
try:  # 'cpu' on a build node without a GPU; raises when torch cannot use a visible GPU
    what = check_gpu_stack()
except GPUStackError as e:
    sys.exit(str(e))
print(f'GPU check: {what} on {torch.cuda.get_device_name()}' if what != 'cpu' else
      f'mmcv CUDA ops (CUDA {mmcv_cuda_version()}) built; no GPU here to run them on')
EOF
fi
echo "$kind" > "$venv/.mmsamantics-mmcv-kind"
rm -f "$venv"/.mmsamantics-setup-*
touch "$stamp"
step "done: activate with 'source $venv/bin/activate'"
