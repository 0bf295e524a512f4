"""The ``mmsam`` command (``python -m mmsamantics``): each subcommand is its tool."""
import json
import os
import os.path as osp
import re
import shutil
import subprocess
import sys

import pytest

from helpers import REPO, TOY_CONFIG, toy_overrides, val_images, write_train_refs
from mmsamantics import cli


@pytest.mark.parametrize('name', list(cli.COMMANDS))
def test_each_subcommand_shows_its_tools_help(name, capsys):
    assert cli.main([name, '--help']) == 0
    out = capsys.readouterr().out
    assert out.startswith('usage: ') and f'{cli.COMMANDS[name][0]}' in out.splitlines()[0]


def test_usage_and_mistakes(capsys):
    assert cli.main(['--help']) == 0
    out = capsys.readouterr().out
    assert all(f'  {name} ' in out for name in cli.COMMANDS)
    assert cli.main([]) == 2 and 'usage: mmsam' in capsys.readouterr().err
    assert cli.main(['inferr']) == 2
    assert "unknown subcommand 'inferr'; choose one of infer, annotate" in \
        capsys.readouterr().err
    assert cli.main(['--version']) == 0
    assert re.fullmatch(r'mmsamantics \S+\n', capsys.readouterr().out)
    # a tool's own errors keep their exit status (argparse: 2)
    assert cli.main(['infer', 'configs/matcher_toy.py']) == 2
    assert 'the following arguments are required: --out-dir' in capsys.readouterr().err


def test_setup_installs_the_command():
    with open(osp.join(REPO, 'setup.py')) as f:
        assert "'mmsam=mmsamantics.cli:main'" in f.read()


def _command() -> list:
    """The installed ``mmsam`` script beside this Python, else ``python -m mmsamantics``."""
    script = osp.join(osp.dirname(sys.executable), 'mmsam')
    return [script] if os.access(script, os.X_OK) else [sys.executable, '-m', 'mmsamantics']


@pytest.mark.e2e
def test_toy_inference_through_the_command(toy_root, tmp_path):
    """One toy inference through the command, run from a folder other than the checkout."""
    refs = tmp_path / 'refs.json'
    write_train_refs(toy_root, str(refs))
    imgs = tmp_path / 'imgs'
    imgs.mkdir()
    for p in val_images(toy_root)[:2]:
        shutil.copy(p, imgs)
    opts = [f'{k}={v}' for k, v in toy_overrides(toy_root).items()]
    cmd = _command() + ['infer', TOY_CONFIG, '--random-weights', '--refs', str(refs),
                        '--ref-img-dir', osp.join(toy_root, 'train'), '--img-dir', str(imgs),
                        '--out-dir', str(tmp_path / 'out'), '--device', 'cpu', '--no-progress',
                        '--cfg-options', *opts]
    p = subprocess.run(cmd, cwd=str(tmp_path), capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    assert '2 images, ' in p.stdout
    summary = json.loads((tmp_path / 'out' / 'summary.json').read_text())
    assert summary['images'] == 2 and summary['references'] == 4
