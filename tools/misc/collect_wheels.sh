#!/usr/bin/env bash
# Make a folder of wheels that installs the stack on a GPU machine WITHOUT internet, for
# tools/gpu_selfcheck.sh (docs/gpu.md):
#   - mmengine, mmdet, mmpretrain, segment-anything, sam2, pycocotools, timm, pytest and every
#     package they need, at the versions of this repository's tested venv, as wheels for the
#     GPU machine's Python (binary wheels downloaded for it; packages published only as a
#     source distribution, e.g. sam2 and antlr4, built here into pure-Python wheels);
#   - sam3 (SAM3ExemplarDetector) WITHOUT its declared requirements, as setup_env.sh installs
#     it (--no-deps: its pins would replace tested versions), plus the small packages it
#     imports that nothing else brings: psutil (its package import loads the video
#     predictor), ftfy and regex (its tokenizer; ftfy brings wcwidth);
#   - the mmcv source distribution (compiled there, with CUDA ops for its GPU);
#   - mmsamantics itself as a wheel;
#   - gpu-requirements.txt: what to install, one name==version a line; gpu-target.txt: the
#     Python version and platforms the wheels are for.
# torch (and torchvision, unless GPU_TORCHVISION is set) are NOT included: the GPU machine's
# own CUDA build is reused. Re-running only fetches what is missing.
#
# Usage:
#   bash tools/misc/collect_wheels.sh [OUT_DIR]        (default: build/gpu_wheels)
#
# Environment variables:
#   GPU_PYTHON_VERSION  the GPU machine's Python          (default: 3.12)
#   GPU_PLATFORMS       its wheel platforms               (default: manylinux x86_64 tags)
#   GPU_TORCHVISION     also fetch torchvision==VERSION for it (match its torch: 2.11 -> 0.26.0)
#   PYTHON              the python whose venv holds the tested versions (default: .venv)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
out=${1:-$repo/build/gpu_wheels}
target=${GPU_PYTHON_VERSION:-3.12}
platforms=${GPU_PLATFORMS:-manylinux_2_28_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64}
py=${PYTHON:-$repo/.venv/bin/python}
MMCV_VERSION=2.1.0

die() { printf '[wheels] ERROR: %s\n' "$*" >&2; exit 1; }
[[ -x $py ]] || die "no python at '$py': run 'make env' first (or set PYTHON)"
mkdir -p "$out" || die "cannot create $out"
pip() { "$py" -m pip --disable-pip-version-check "$@"; }
abi=cp${target/./}
plat_args=(--python-version "$target" --implementation cp --abi "$abi")
for p in $platforms; do plat_args+=(--platform "$p"); done

# 1. what to install: the dependency closure of the stack, at the versions installed in the
#    tested venv; torch, torchvision, the CUDA runtime wheels and the GUI opencv excluded
"$py" - "$target" > "$out/gpu-requirements.txt" <<'EOF'
import importlib.metadata as md
import re
import sys

from packaging.requirements import Requirement

ROOTS = ['mmengine', 'mmdet', 'mmpretrain', 'segment-anything', 'sam2', 'sam3', 'psutil',
         'ftfy', 'regex', 'pycocotools', 'opencv-python-headless', 'timm', 'scikit-learn',
         'shapely', 'scipy', 'einops', 'terminaltables', 'mat4py', 'modelindex', 'hydra-core',
         'iopath', 'pytest', 'pytest-timeout', 'setuptools', 'wheel', 'ninja']
SKIP = {'torch', 'torchvision', 'triton', 'opencv-python', 'mmcv'}
NO_DEPS = {'sam3'}  # installed with --no-deps: what it needs is in ROOTS
env = {'python_version': sys.argv[1], 'python_full_version': sys.argv[1] + '.0', 'extra': ''}
seen, todo = {}, list(ROOTS)
while todo:
    name = re.sub(r'[-_.]+', '-', todo.pop()).lower()
    if name in seen or name in SKIP or name.startswith('nvidia-'):
        continue
    try:
        dist = md.distribution(name)
    except md.PackageNotFoundError:
        sys.exit(f'{name} is not installed in the tested venv: run make env first')
    seen[name] = dist.version
    for req in map(Requirement, [] if name in NO_DEPS else dist.requires or []):
        if req.marker is None or req.marker.evaluate(env):
            todo.append(req.name)
print('\n'.join(f'{k}=={v}' for k, v in sorted(seen.items())))
EOF

have() {  # have NAME VERSION: a wheel of it is already in the folder
  ls "$out" | grep -iq "^${1//-/_}-$2-.*\.whl$"
}

# 2. one wheel per requirement: the binary one for the GPU machine's Python, else a pure
#    wheel built here from the source distribution
n=0
built=()
while IFS='=' read -r name _ version; do
  n=$((n + 1))
  have "$name" "$version" && continue
  if ! pip download -q --no-deps --only-binary=:all: "${plat_args[@]}" -d "$out" \
      "$name==$version" 2>/dev/null; then
    SAM2_BUILD_CUDA=0 pip wheel -q --no-deps --no-build-isolation -w "$out" "$name==$version" \
      || die "no wheel of $name==$version for Python $target, and building one failed"
    built+=("$name")
  fi
done < "$out/gpu-requirements.txt"
for name in "${built[@]}"; do  # a wheel built here must not be tied to this machine's Python
  ls "$out"/*.whl | grep -i "/${name//-/_}-" | grep -q -- '-py3-none-any.whl$' \
    || die "the wheel built here for $name is not pure Python: it cannot go to the GPU machine"
done

# 3. torchvision for the GPU machine's torch, when asked
if [[ -n ${GPU_TORCHVISION:-} ]]; then
  pip download -q --no-deps --only-binary=:all: "${plat_args[@]}" -d "$out" \
    "torchvision==$GPU_TORCHVISION" || die "no torchvision==$GPU_TORCHVISION wheel for Python $target"
  echo "torchvision==$GPU_TORCHVISION" >> "$out/gpu-requirements.txt"
fi

# 4. the mmcv source distribution (no build isolation: mmcv's setup.py needs the venv's
#    setuptools<81 for pkg_resources)
[[ -f $out/mmcv-$MMCV_VERSION.tar.gz ]] \
  || pip download -q --no-deps --no-binary :all: --no-build-isolation "mmcv==$MMCV_VERSION" -d "$out" \
  || die "could not download the mmcv $MMCV_VERSION sdist: check that PyPI is reachable"

# 5. mmsamantics itself
rm -f "$out"/mmsamantics-*.whl
pip wheel -q --no-deps --no-build-isolation -w "$out" "$repo" 2>"$out/.mmsamantics-build.log" \
  || die "could not build the mmsamantics wheel (see $out/.mmsamantics-build.log)"
own=$(basename "$(ls "$out"/mmsamantics-*.whl)")
echo "mmsamantics==$(echo "$own" | cut -d- -f2)" >> "$out/gpu-requirements.txt"

# what the folder is for: tools/gpu_selfcheck.sh --dry-run installs it for this target
printf 'python=%s\nplatforms=%s\n' "$target" "$platforms" > "$out/gpu-target.txt"
echo "[wheels] $out: $((n + 1)) packages for Python $target ($(du -sh "$out" | cut -f1)), the mmcv $MMCV_VERSION sdist; built here: ${built[*]:-none}"
