#!/usr/bin/env bash
# Create (or refresh) the project's virtual environment with the known-good stack:
#   torch 2.14.1 + torchvision 0.29.1, mmcv 2.1.0 WITH ops, mmengine 0.10.7, mmdet 3.3.0,
#   mmpretrain 1.2.0, segment-anything 1.0, sam2 1.1.0, then `pip install -e .`.
#
# Idempotent: a stamp file records the hash of this script and of requirements/; when it
# matches, nothing is done. mmcv 2.1.0 is only published as a source distribution; it is built
# once (about 20 min on 2 CPU cores) and the wheel is cached OUTSIDE the repository.
#
# Environment variables:
#   MMSAM_VENV         venv folder                       (default: <repo>/.venv)
#   MMSAM_PYTHON       python used to create the venv    (default: python3)
#   MMSAM_WHEEL_CACHE  folder of cached mmcv wheels      (default: ~/.cache/mmsamantics/wheels)
#   MMSAM_FORCE_CPU=1  build mmcv CPU ops even when nvcc and a GPU are present
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${MMSAM_VENV:-$repo/.venv}
py=${MMSAM_PYTHON:-python3}
cache=${MMSAM_WHEEL_CACHE:-$HOME/.cache/mmsamantics/wheels}
cons=$repo/requirements/constraints.txt

step() { printf '\n\033[1m[setup %s] %s\033[0m\n' "$(date +%H:%M:%S)" "$*"; }
die() { printf '\n[setup] ERROR: %s\n' "$*" >&2; exit 1; }

stamp_hash=$(cat "$0" "$repo"/requirements/*.txt "$repo/setup.py" | sha256sum | cut -c1-16)
stamp=$venv/.mmsamantics-setup-$stamp_hash
if [[ -f $stamp ]]; then
  echo "[setup] environment $venv is up to date (stamp $stamp_hash)"
  exit 0
fi

command -v "$py" >/dev/null || die "'$py' not found; set MMSAM_PYTHON to a Python 3.9-3.12 interpreter"
step "virtual environment: $venv"
[[ -x $venv/bin/python ]] || "$py" -m venv "$venv" || die "could not create a venv with $py (is the venv module installed?)"
vpy=$venv/bin/python
pip() { "$vpy" -m pip --disable-pip-version-check "$@"; }

step "pip, setuptools<81 (mmcv's setup.py imports pkg_resources), wheel, ninja"
pip install -q -U pip wheel ninja -c "$cons" "setuptools<81"

step "torch 2.14.1 + torchvision 0.29.1 (standard CUDA builds; they also run on CPU)"
pip install -q torch==2.14.1 torchvision==0.29.1 -c "$cons"

step "runtime dependencies (requirements/runtime.txt, tests.txt, optional.txt)"
pip install -q -r "$repo/requirements/runtime.txt" -r "$repo/requirements/tests.txt" -c "$cons"
# HQ-SAM is an optional backbone; its absence must not break the install.
pip install -q --no-deps -r "$repo/requirements/optional.txt" -c "$cons" \
  || echo "[setup] warning: optional packages could not be installed (HQ-SAM backbone disabled)"

step "mmengine, mmdet, mmpretrain, segment-anything (--no-deps: they declare GUI opencv)"
pip install -q --no-deps mmengine==0.10.7 mmdet==3.3.0 mmpretrain==1.2.0 segment-anything==1.0

step "sam2 1.1.0 (SAM2_BUILD_CUDA=0, no build isolation so it does not pull another torch)"
SAM2_BUILD_CUDA=0 pip install -q --no-deps --no-build-isolation sam2==1.1.0

# --- mmcv 2.1.0 with ops -----------------------------------------------------------------
torch_tag=$("$vpy" - <<'EOF'
import sys, torch
print(f"torch{torch.__version__.split('+')[0]}-cp{sys.version_info[0]}{sys.version_info[1]}")
EOF
)
cuda_ops=0
if [[ ${MMSAM_FORCE_CPU:-0} != 1 ]] && command -v nvcc >/dev/null && "$vpy" -c "import torch,sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  cuda_ops=1
fi
flavour=$([[ $cuda_ops == 1 ]] && echo cuda || echo cpu)
wdir=$cache/$torch_tag-$flavour
mkdir -p "$wdir"
# Seed the cache with the wheel the project's shared folder ships (same build recipe).
seed=$repo/../shared/wheels/mmcv-2.1.0-cp311-cp311-linux_x86_64.whl
if [[ $flavour == cpu && $torch_tag == torch2.14.1-cp311 && -f $seed && ! -f $wdir/$(basename "$seed") ]]; then
  step "seeding the mmcv wheel cache from $seed"
  cp "$seed" "$wdir/"
fi
if "$vpy" -c "import mmcv, mmcv.ops; assert mmcv.__version__ == '2.1.0'" 2>/dev/null; then
  echo "[setup] mmcv 2.1.0 with ops already installed"
else
  whl=$(ls "$wdir"/mmcv-2.1.0-*.whl 2>/dev/null | head -n1 || true)
  if [[ -z $whl ]]; then
    step "building mmcv 2.1.0 from source with $flavour ops (about 20 min on 2 cores, once; cached in $wdir)"
    build=$(mktemp -d)
    trap 'rm -rf "$build"' EXIT
    pip download -q --no-deps --no-binary :all: --no-build-isolation mmcv==2.1.0 -d "$build" || die "could not download the mmcv 2.1.0 sdist"
    tar -xzf "$build"/mmcv-2.1.0.tar.gz -C "$build"
    # torch >= 2.14 headers need C++20; mmcv 2.1.0 hard-codes -std=c++17 (ENV.md).
    sed -i "s/-std=c++17/-std=c++20/g" "$build/mmcv-2.1.0/setup.py"
    grep -q -- "-std=c++20" "$build/mmcv-2.1.0/setup.py" || die "could not patch mmcv's C++ standard flag"
    (cd "$build/mmcv-2.1.0" && MMCV_WITH_OPS=1 FORCE_CUDA=$cuda_ops MAX_JOBS=${MAX_JOBS:-$(nproc)} CFLAGS=-g0 \
      "$vpy" -m pip wheel --no-build-isolation --no-deps -w "$wdir" .) || die "mmcv build failed (see the compiler output above)"
    whl=$(ls "$wdir"/mmcv-2.1.0-*.whl | head -n1)
  fi
  step "installing $whl"
  pip install -q --no-deps --force-reinstall "$whl"
fi

step "mmsamantics (editable)"
pip install -q --no-deps --no-build-isolation -e "$repo"

step "checking the stack"
"$vpy" - <<'EOF' || die "the installed stack does not import; see the traceback above"
import torch, torchvision, mmcv, mmengine, mmdet, segment_anything, sam2
from mmcv.ops import nms, MultiScaleDeformableAttention  # compiled ops present
import mmsamantics
print(f"torch {torch.__version__} (cuda available: {torch.cuda.is_available()}), "
      f"mmcv {mmcv.__version__}, mmengine {mmengine.__version__}, mmdet {mmdet.__version__}, "
      f"mmsamantics {mmsamantics.__version__}")
EOF
rm -f "$venv"/.mmsamantics-setup-*
touch "$stamp"
step "done: activate with 'source $venv/bin/activate'"
