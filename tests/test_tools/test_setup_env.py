"""tools/setup_env.sh: the mmcv source route and the prerequisite checks.

The source route (download the sdist, patch its C++ standard, read its metadata) is what a
machine without a cached mmcv wheel runs; it is checked here without the 20-minute compile.
The prerequisite checks must stop before any long step with one line naming what is missing.
"""
import os
import os.path as osp
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SCRIPT = osp.join(REPO, 'tools', 'setup_env.sh')

pytestmark = pytest.mark.e2e  # every test runs the setup script in a subprocess


def run_setup(*args, **env):
    return subprocess.run(['bash', SCRIPT, *args], capture_output=True, text=True,
                          env=dict(os.environ, **env), timeout=600)


def last_line(text: str) -> str:
    return text.strip().splitlines()[-1]


def fake_python(tmp_path, version: str, has_venv: bool = True) -> str:
    """An executable answering the two questions check_python asks."""
    path = tmp_path / 'python-fake'
    path.write_text('#!/bin/sh\n'
                    f'case "$2" in *ensurepip*) exit {0 if has_venv else 1};; '
                    f'*) echo {version};; esac\n')
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


def test_mmcv_source_route(tmp_path):
    """Fetch the sdist exactly as the setup does, patch it, read its metadata (no compile)."""
    res = run_setup('--check-mmcv-source', str(tmp_path / 'src'), MMSAM_VENV=sys.prefix)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert last_line(res.stdout) == '[setup] mmcv source route OK: mmcv 2.1.0 (C++20 patch applied)'
    setup_py = (tmp_path / 'src' / 'mmcv-2.1.0' / 'setup.py').read_text()
    assert '-std=c++20' in setup_py and '-std=c++17' not in setup_py


def test_missing_python_is_one_line(tmp_path):
    res = run_setup(MMSAM_VENV=str(tmp_path / 'venv'), MMSAM_PYTHON='python-that-is-not-here')
    assert res.returncode == 1
    assert last_line(res.stderr) == (
        "[setup] ERROR: Python 3.11 ('python-that-is-not-here' not found; or set "
        'MMSAM_PYTHON) is missing: install it (Debian/Ubuntu: sudo apt-get install '
        'python3.11; RHEL/Fedora: sudo dnf install python3.11)')
    assert not (tmp_path / 'venv').exists()


def test_old_python_is_refused(tmp_path):
    res = run_setup(MMSAM_VENV=str(tmp_path / 'venv'), MMSAM_PYTHON=fake_python(tmp_path, '3.8'))
    assert res.returncode == 1
    assert last_line(res.stderr).startswith('[setup] ERROR: Python 3.8 found')
    assert 'set MMSAM_PYTHON=python3.11' in last_line(res.stderr)


def test_python_without_venv_module(tmp_path):
    res = run_setup(MMSAM_VENV=str(tmp_path / 'venv'),
                    MMSAM_PYTHON=fake_python(tmp_path, '3.11', has_venv=False))
    assert res.returncode == 1
    assert "Python's venv module" in last_line(res.stderr)
    assert 'sudo apt-get install python3.11-venv' in last_line(res.stderr)


def test_compiler_without_cxx20(tmp_path):
    """A machine that must build mmcv and has no C++20 compiler stops before the venv."""
    res = run_setup('--check-mmcv-source', str(tmp_path / 'src'),
                    MMSAM_VENV=str(tmp_path / 'venv'), CXX='false')
    assert res.returncode == 1
    assert last_line(res.stderr) == (
        "[setup] ERROR: a C++ compiler that accepts -std=c++20 ('false' does not: GCC >= 10 "
        'or Clang >= 10) is missing: install it (Debian/Ubuntu: sudo apt-get install g++; '
        'RHEL/Fedora: sudo dnf install gcc-c++)')
    assert not (tmp_path / 'venv').exists()


def test_unknown_argument(tmp_path):
    res = run_setup('--frobnicate', MMSAM_VENV=str(tmp_path / 'venv'))
    assert res.returncode == 1
    assert last_line(res.stderr) == ("[setup] ERROR: unknown argument '--frobnicate' (usage: "
                                     'tools/setup_env.sh [--cuda] [--plan] '
                                     '[--check-mmcv-source DIR])')


# --- build kind: CPU or CUDA ops, the wheel cache key and the stamp --------------------------
def fake_tools(tmp_path, nvcc: str = None, gpus=()):
    """A PATH of fake ``nvcc`` / ``nvidia-smi`` (only what is given) and the system tools.

    Args:
        nvcc: the CUDA release nvcc reports (e.g. '12.8'), or None for no nvcc.
        gpus: compute capabilities of the visible GPUs; empty: no nvidia-smi.
    """
    bin_dir = tempfile.mkdtemp(prefix='bin', dir=tmp_path)
    tools = {}
    if nvcc:
        tools['nvcc'] = f'echo "Cuda compilation tools, release {nvcc}, V{nvcc}.1"'
    if gpus:
        listing = ''.join(f'GPU {i}: NVIDIA H100 (UUID: GPU-{i})\\n' for i in range(len(gpus)))
        caps = ''.join(f'{c}\\n' for c in gpus)
        tools['nvidia-smi'] = (f'case "$1" in -L) printf "{listing}";; '
                               f'*) printf "{caps}";; esac')
    for name, body in tools.items():
        path = Path(bin_dir, name)
        path.write_text(f'#!/bin/sh\n{body}\n')
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return f'{bin_dir}:/usr/bin:/bin'


def plan(tmp_path, *args, nvcc=None, gpus=(), **env):
    env = dict(MMSAM_VENV=str(tmp_path / 'venv'), MMSAM_PYTHON=sys.executable,
               MMSAM_WHEEL_CACHE=str(tmp_path / 'wheels'),
               PATH=fake_tools(tmp_path, nvcc, gpus), **env)
    for var in ('MMSAM_FORCE_CPU', 'MMSAM_FORCE_CUDA', 'TORCH_CUDA_ARCH_LIST'):
        env.setdefault(var, '')
    return run_setup('--plan', *args, **env)


def py_tag() -> str:
    return f'cp{sys.version_info.major}{sys.version_info.minor}'


def test_cpu_plan_keeps_the_cpu_cache(tmp_path):
    """No GPU: CPU ops, cached where CI seeds the CPU wheel (torch<ver>-cp<py>-cpu)."""
    res = plan(tmp_path)
    assert res.returncode == 0, res.stderr
    line = last_line(res.stdout)
    assert line.startswith(f'[setup] plan: mmcv ops cpu; wheel cache {tmp_path}/wheels/'
                           f'torch2.14.1-{py_tag()}-cpu; stamp {tmp_path}/venv/.mmsamantics-setup-')
    assert line.endswith('-cpu (missing: the next run sets up)')


def test_visible_gpu_keys_the_cache_by_cuda_and_arch(tmp_path):
    res = plan(tmp_path, nvcc='12.8', gpus=('9.0', '8.0', '9.0'))
    assert res.returncode == 0, res.stderr
    assert f'mmcv ops cu12.8-sm80_90 (TORCH_CUDA_ARCH_LIST=8.0;9.0); wheel cache ' \
        f'{tmp_path}/wheels/torch2.14.1-{py_tag()}-cu12.8-sm80_90; stamp ' in res.stdout


def test_forced_cuda_honours_the_arch_list(tmp_path):
    res = plan(tmp_path, '--cuda', nvcc='13.0', TORCH_CUDA_ARCH_LIST='8.0;9.0+PTX')
    assert res.returncode == 0, res.stderr
    assert f'torch2.14.1-{py_tag()}-cu13.0-sm80_90+PTX;' in res.stdout


def test_forced_cuda_without_gpu_needs_an_arch_list(tmp_path):
    res = plan(tmp_path, nvcc='13.0', MMSAM_FORCE_CUDA='1')
    assert res.returncode == 1
    assert last_line(res.stderr) == (
        "[setup] ERROR: no GPU architecture to build mmcv's CUDA ops for: set "
        'TORCH_CUDA_ARCH_LIST, e.g. TORCH_CUDA_ARCH_LIST="8.0;9.0" (A100 8.0, L4/L40 8.9, '
        'H100/H200 9.0)')


def test_visible_gpu_without_nvcc_stops_with_the_fix(tmp_path):
    """Never a silent CPU build on a GPU machine; CPU ops only when asked for."""
    res = plan(tmp_path, gpus=('9.0', ))
    assert res.returncode == 1
    assert last_line(res.stderr).startswith(
        "[setup] ERROR: a GPU is visible (nvidia-smi): building mmcv's CUDA ops, which needs "
        'nvcc, and none is on the PATH: install the CUDA toolkit')
    assert 'or set MMSAM_FORCE_CPU=1' in last_line(res.stderr)
    assert not (tmp_path / 'venv').exists()
    forced = plan(tmp_path, gpus=('9.0', ), MMSAM_FORCE_CPU='1')
    assert forced.returncode == 0 and 'mmcv ops cpu;' in forced.stdout


def test_contradicting_switches(tmp_path):
    res = plan(tmp_path, '--cuda', MMSAM_FORCE_CPU='1')
    assert res.returncode == 1
    assert 'contradict each other' in last_line(res.stderr)


def test_cpu_stamp_does_not_skip_a_gpu_run(tmp_path):
    """A venv set up with CPU ops is current for CPU runs only."""
    stamp = last_line(plan(tmp_path).stdout).split('; stamp ')[1].split(' ')[0]
    (tmp_path / 'venv').mkdir()
    open(stamp, 'w').close()
    assert last_line(plan(tmp_path).stdout).endswith('-cpu (current)')
    env = dict(MMSAM_VENV=str(tmp_path / 'venv'), MMSAM_PYTHON=sys.executable,
               MMSAM_FORCE_CPU='', MMSAM_FORCE_CUDA='', TORCH_CUDA_ARCH_LIST='')
    cpu = run_setup(PATH=fake_tools(tmp_path, None, ()), **env)
    assert cpu.returncode == 0
    assert last_line(cpu.stdout).startswith(f'[setup] environment {tmp_path}/venv is up to date')
    gpu = run_setup(PATH=fake_tools(tmp_path, None, ('9.0', )), **env)
    assert gpu.returncode == 1 and 'a GPU is visible' in last_line(gpu.stderr)
