"""``import mmsamantics`` loads the plugin only: the toy experiments live in ``mmsamantics_toy``.

The toy-world generator, the toy classification set and the toy encoders' pretraining are
used by tools/ and tests/ only; importing the package, each of its subpackages and what the
configs' ``custom_imports`` name (as a Runner does) must load none of them. Checked in a
fresh interpreter, so no other test's imports count. Both packages are installed by
``setup.py``.
"""
import json
import os
import os.path as osp
import runpy
import subprocess
import sys

import pytest

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
SUBPACKAGES = ('analysis', 'apis', 'app', 'datasets', 'engine', 'evaluation', 'models',
               'probing', 'prompt_study', 'structures', 'utils', 'wsss')
# toy configs of each family: their custom_imports and registered types, as a Runner loads them
CONFIGS = ('configs/insam_detr_toy.py', 'configs/matcher_toy.py', 'configs/persam_toy.py',
           'configs/samic_toy.py',
           'configs/linear_probe/linear-probe_sam-tiny_1xb16-10e_toy-cls.py')
TOY_WORDS = ('toy_world', 'pretraining', 'toy_classification')

# run in a fresh interpreter: prints the loaded toy modules as a JSON list
SCRIPT = r'''
import importlib, importlib.util, json, os.path as osp, sys
repo, subpackages, configs, words = json.loads(sys.argv[1])
import mmsamantics
for name in subpackages:
    importlib.import_module('mmsamantics.' + name)
if importlib.util.find_spec('fastapi') is not None:
    importlib.import_module('mmsamantics.app.server')
from mmdet.utils import register_all_modules
from mmengine.config import Config
from mmengine.registry import DATASETS, MODELS, init_default_scope
from mmengine.utils import import_modules_from_strings
register_all_modules(init_default_scope=False)
for path in configs:
    cfg = Config.fromfile(osp.join(repo, path))
    import_modules_from_strings(**cfg.get('custom_imports', dict(imports=[])))
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    for root, kind in ((MODELS, cfg.model.type), (DATASETS, cfg.test_dataloader.dataset.type)):
        with root.switch_scope_and_registry(None) as registry:  # as the Runner builds
            assert registry.get(kind) is not None, f'{path}: {kind} not registered'
toy = sorted(m for m in sys.modules if m.split('.')[0] == 'mmsamantics_toy'
             or any(w in m for w in words))
print(json.dumps(dict(toy=toy, package=osp.dirname(mmsamantics.__file__))))
'''


def loaded_toy_modules(tmp_path) -> dict:
    """The toy modules a fresh interpreter holds after the imports above (run in
    ``tmp_path``, this checkout first on the path)."""
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join([REPO] + [p for p in [env.get('PYTHONPATH')] if p])
    out = subprocess.run(
        [sys.executable, '-c', SCRIPT, json.dumps([REPO, SUBPACKAGES, CONFIGS, TOY_WORDS])],
        cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-4000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.e2e
def test_importing_the_package_loads_no_toy_module(tmp_path):
    found = loaded_toy_modules(tmp_path)
    assert osp.realpath(found['package']) == osp.realpath(osp.join(REPO, 'mmsamantics'))
    assert found['toy'] == [], (
        'import mmsamantics (or a subpackage, or a config\'s custom_imports) loaded toy '
        f'modules: {found["toy"]}; they belong to mmsamantics_toy, imported by tools/tests')


def test_setup_installs_both_packages(monkeypatch):
    """``pip install`` ships mmsamantics_toy and its subpackages, not only the plugin."""
    import setuptools
    captured = {}
    monkeypatch.setattr(setuptools, 'setup', lambda **kw: captured.update(kw))
    monkeypatch.chdir(REPO)
    runpy.run_path(osp.join(REPO, 'setup.py'), run_name='__main__')
    packages = set(captured['packages'])
    for pkg in ('mmsamantics', 'mmsamantics.datasets', 'mmsamantics_toy',
                'mmsamantics_toy.pretraining'):
        assert pkg in packages, f'{pkg} missing from setup.py packages'
    assert not {p for p in packages if p.split('.')[0] in ('tests', 'tools', 'configs')}
