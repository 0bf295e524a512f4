"""The package carries its configs the OpenMMLab way: ``mmsamantics/.mim`` holds configs/,
tools/ and model-index.yml; ``mmsamantics::`` names load from any folder, as configs to run
and as ``_base_`` of a downstream config, whose components resolve through the
``mmsamantics`` registry scope; the model index lists every family's metafile."""
import glob
import os.path as osp

import pytest
import yaml
from mmengine.config import Config

from helpers import REPO


def test_the_package_holds_configs_tools_and_the_model_index():
    from mmengine.config.utils import MODULE2PACKAGE
    from mmengine.utils import get_installed_path
    import mmsamantics  # noqa: F401  (tells mmengine how to find the package)
    mim = osp.join(get_installed_path(MODULE2PACKAGE['mmsamantics']), '.mim')
    for name in ('configs', 'tools', 'model-index.yml'):
        assert osp.samefile(osp.join(mim, name), osp.join(REPO, name)), name


def test_model_index_lists_every_family_and_mmengine_reads_it():
    from mmengine.config.utils import MODULE2PACKAGE, _get_cfg_metainfo
    from mmengine.utils import get_installed_path
    with open(osp.join(REPO, 'model-index.yml')) as f:
        index = yaml.safe_load(f)
    families = sorted(osp.relpath(p, REPO) for p in glob.glob(
        osp.join(REPO, 'configs', '*', 'metafile.yml')))
    assert sorted(index['Import']) == families
    assert len(families) == len([d for d in glob.glob(osp.join(REPO, 'configs', '*'))
                                 if osp.isdir(d) and not d.endswith('_base_')])
    package = get_installed_path(MODULE2PACKAGE['mmsamantics'])
    # the lookup mmengine makes for `mmsamantics::` names (by the index, before the folder)
    meta = _get_cfg_metainfo(package, 'insam_detr/insam-detr_sam-vit-b_16xb3-50e_coco.py')
    assert meta['Name'] == 'insam-detr_sam-vit-b_16xb3-50e_coco'
    assert osp.isfile(osp.join(REPO, meta['Config']))


def test_mmsamantics_names_load_from_any_folder(tmp_path, monkeypatch):
    from mmsamantics.utils import load_config
    monkeypatch.chdir(tmp_path)
    short = load_config('mmsamantics::insam_detr_coco.py')
    full = load_config('mmsamantics::insam_detr/insam-detr_sam-vit-b_16xb3-50e_coco.py')
    assert short.to_dict() == full.to_dict() and full.model.num_queries == 300
    from mmengine.hub import get_config  # mmengine's own loader of PACKAGE::folder/file names
    assert get_config('mmsamantics::insam_detr/insam-detr_sam-vit-b_16xb3-50e_coco.py'
                      ).to_dict() == full.to_dict()
    try:
        load_config('mmsamantics::insam_detr/nope.py')
    except FileNotFoundError as e:
        assert "no 'insam_detr/nope.py' in" in str(e) and '.mim' in str(e)
    else:
        raise AssertionError('a missing mmsamantics:: config was accepted')


def test_a_downstream_config_inherits_ours(tmp_path, monkeypatch):
    """``_base_ = 'mmsamantics::...'`` from a folder outside the repository: the components
    of the base carry the ``mmsamantics`` scope and build through its registries."""
    import torch
    from mmdet.registry import MODELS
    import mmsamantics  # noqa: F401
    (tmp_path / 'my_config.py').write_text(
        "_base_ = 'mmsamantics::insam_detr/insam-detr_sam-tiny_1xb4-12e_toy-world.py'\n"
        "model = dict(num_queries=12, backbone=dict(checkpoint=None),\n"
        "             mask_head=dict(decoder=dict(checkpoint=None)))\n")
    monkeypatch.chdir(tmp_path)
    cfg = Config.fromfile('my_config.py')
    assert cfg.model._scope_ == 'mmsamantics' and cfg.train_dataloader.dataset._scope_ == \
        'mmsamantics'
    with torch.device('meta'):
        model = MODELS.build(cfg.model)
    assert type(model).__name__ == 'InSAMDETR' and model.num_queries == 12


def test_mim_reads_the_model_index():
    """The index as mim reads it (``modelindex.load`` on the package's ``.mim`` copy):
    every family's collection with its paper, every model with its config and weights."""
    import modelindex
    from mmengine.config.utils import MODULE2PACKAGE
    from mmengine.utils import get_installed_path
    package = get_installed_path(MODULE2PACKAGE['mmsamantics'])
    index = modelindex.load(osp.join(package, '.mim', 'model-index.yml'))
    assert len(index.collections) == 6 and all(c.paper for c in index.collections)
    names = [m.name for m in index.models]
    listed = []  # every model entry of every family's metafile, read as plain YAML
    for path in glob.glob(osp.join(REPO, 'configs', '*', 'metafile.yml')):
        with open(path) as f:
            listed += [m['Name'] for m in yaml.safe_load(f).get('Models', [])]
    assert len(names) == len(set(names)) and sorted(names) == sorted(listed)
    assert len(names) >= 40
    for m in index.models:
        config = m.config if isinstance(m.config, str) else m.config.filepath
        assert osp.isfile(osp.join(package, '.mim', config)), m.name
        assert isinstance(m.data['Required Weights'], list), m.name


@pytest.mark.e2e
def test_a_wheel_built_in_an_editable_checkout_leaves_its_links(tmp_path):
    """``pip wheel .`` copies configs/, tools/ and the model index into the wheel's
    ``mmsamantics/.mim`` and gives the checkout its links back, so an editable install never
    reads stale copies (a copy of this checkout, with the links an editable install makes)."""
    import os
    import shutil
    import subprocess
    import sys
    import zipfile
    src = tmp_path / 'checkout'
    skip = shutil.ignore_patterns('__pycache__', '.mim', '*.egg-info')
    for name in ('mmsamantics', 'mmsamantics_toy', 'configs', 'tools', 'requirements'):
        shutil.copytree(osp.join(REPO, name), src / name, ignore=skip)
    for name in ('setup.py', 'README.md', 'model-index.yml'):
        shutil.copyfile(osp.join(REPO, name), src / name)
    mim = src / 'mmsamantics' / '.mim'
    mim.mkdir()
    for name in ('configs', 'tools', 'model-index.yml'):
        os.symlink(osp.join('..', '..', name), mim / name)
    subprocess.run([sys.executable, '-m', 'pip', 'wheel', '-q', '.', '--no-deps',
                    '--no-build-isolation', '-w', str(tmp_path / 'dist')], cwd=src,
                   check=True, capture_output=True)
    assert all(osp.islink(mim / n) for n in ('configs', 'tools', 'model-index.yml'))
    wheel = zipfile.ZipFile(next((tmp_path / 'dist').glob('mmsamantics-*.whl')))
    packed = wheel.read('mmsamantics/.mim/configs/insam_detr_coco.py')
    assert packed == (src / 'configs' / 'insam_detr_coco.py').read_bytes()
    assert 'mmsamantics/.mim/model-index.yml' in wheel.namelist()
    assert 'mmsamantics/.mim/tools/demo.py' in wheel.namelist()
