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
                              'tools/setup_env.sh [--check-mmcv-source DIR])')
