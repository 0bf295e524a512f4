"""tools/gpu_selfcheck.sh --dry-run, step by step, from a small offline wheel folder.

The whole dry run (73 wheels, the tiny benchmark) takes minutes on 2 cores; here each step
that needs no GPU runs on a folder of one hand-made wheel and a stand-in mmcv sdist, so the
folder checks, the offline install for the GPU machine's Python and the sdist patch are
tested in seconds.
"""
import io
import os
import os.path as osp
import shutil
import subprocess
import tarfile
import zipfile

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SCRIPT = osp.join(REPO, 'tools', 'gpu_selfcheck.sh')

pytestmark = pytest.mark.e2e  # runs the script in a subprocess


def wheel_folder(tmp_path, extra_requirement: str = '') -> str:
    """One pure wheel (gi_demo 0.1), a stand-in mmcv 2.1.0 sdist, the two list files."""
    folder = tmp_path / 'wheels'
    folder.mkdir()
    info = 'gi_demo-0.1.dist-info'
    with zipfile.ZipFile(folder / 'gi_demo-0.1-py3-none-any.whl', 'w') as z:
        z.writestr('gi_demo/__init__.py', 'VALUE = 1\n')
        z.writestr(f'{info}/METADATA', 'Metadata-Version: 2.1\nName: gi-demo\nVersion: 0.1\n')
        z.writestr(f'{info}/WHEEL', 'Wheel-Version: 1.0\nGenerator: test\n'
                   'Root-Is-Purelib: true\nTag: py3-none-any\n')
        z.writestr(f'{info}/RECORD', '')
    setup = (b"# extra_compile_args = ['-std=c++17']\n"
             b"from setuptools import setup\nsetup(name='mmcv', version='2.1.0')\n")
    with tarfile.open(folder / 'mmcv-2.1.0.tar.gz', 'w:gz') as t:
        entry = tarfile.TarInfo('mmcv-2.1.0/setup.py')
        entry.size = len(setup)
        t.addfile(entry, io.BytesIO(setup))
    (folder / 'gpu-requirements.txt').write_text('gi-demo==0.1\n' + extra_requirement)
    (folder / 'gpu-target.txt').write_text('python=3.12\nplatforms=manylinux2014_x86_64\n')
    return str(folder)


def selfcheck(tmp_path, *args, **env):
    return subprocess.run(['bash', SCRIPT, *args, '--out', str(tmp_path / 'out')],
                          capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, **env))


def test_dry_run_steps_without_gpu(tmp_path):
    res = selfcheck(tmp_path, '--dry-run', '--wheels', wheel_folder(tmp_path), '--only',
                    'wheels,install,mmcv', '--keep')
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    out = res.stdout
    assert '1 wheels + the mmcv sdist in' in out
    assert 'installed for Python 3.12 into ' in out and ': 1 distributions' in out
    assert 'mmcv 2.1.0 (sdist unpacked and patched; compiled only on the GPU machine)' in out
    assert '| tests     |  120s |    - | skipped |' in out
    assert out.strip().splitlines()[-2].startswith('[selfcheck] dry run passed')
    scratch = out.split('[selfcheck] scratch kept: ')[1].split()[0]
    try:
        with open(osp.join(scratch, 'site', 'gi_demo', '__init__.py')) as f:
            assert f.read() == 'VALUE = 1\n'
        with open(osp.join(scratch, 'mmcv', 'mmcv-2.1.0', 'setup.py')) as f:
            setup_py = f.read()
        assert '-std=c++20' in setup_py and '-std=c++17' not in setup_py
    finally:
        shutil.rmtree(scratch)


def test_incomplete_folder_is_named(tmp_path):
    res = selfcheck(tmp_path, '--dry-run', '--wheels',
                    wheel_folder(tmp_path, 'mmdet==3.3.0\n'), '--only', 'wheels')
    assert res.returncode == 1
    assert 'missing wheels: mmdet==3.3.0 (re-run tools/misc/collect_wheels.sh)' in res.stdout
    assert res.stderr.strip().endswith("step 'wheels' failed (exit 1): see "
                                       f"{tmp_path}/out/selfcheck.log")


def test_without_gpu_only_the_dry_run(tmp_path):
    res = selfcheck(tmp_path, '--wheels', str(tmp_path), PATH='/usr/bin:/bin')
    assert res.returncode == 1
    assert res.stderr.strip() == ('[selfcheck] ERROR: no GPU visible (nvidia-smi): run with '
                                  '--dry-run on a machine without one')
