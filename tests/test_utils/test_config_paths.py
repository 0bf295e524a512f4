"""Config paths mean the same from any working folder: ``data/`` and ``checkpoints/`` paths
written in a project's config file are looked up in the working folder, then the project,
then this checkout; environment variables replace the two folders; command-line options
keep their meaning relative to the working folder."""
import os
import os.path as osp

import pytest

from mmsamantics.utils.config_paths import config_project_root, load_config


@pytest.fixture
def project(tmp_path):
    """A project with a config file naming a checkpoint it has and data it lacks."""
    root = tmp_path / 'proj'
    (root / 'configs' / 'family').mkdir(parents=True)
    (root / 'checkpoints').mkdir()
    (root / 'checkpoints' / 'w.pth').write_bytes(b'x')
    (root / 'configs' / 'family' / 'm.py').write_text(
        "ckpt = 'checkpoints/w.pth'\n"
        "model = dict(backbone=dict(checkpoint=ckpt), stages=[dict(checkpoint=ckpt)])\n"
        "data_root = 'data/world/'\n"
        "work_dir = './work_dirs/m'\n"
        "other = 'annotations/a.json'\n")
    elsewhere = tmp_path / 'elsewhere'
    elsewhere.mkdir()
    return str(root), str(root / 'configs' / 'family' / 'm.py'), str(elsewhere)


def test_paths_resolve_to_the_project_from_another_folder(project, monkeypatch):
    root, config, elsewhere = project
    monkeypatch.delenv('MMSAM_DATA_ROOT', raising=False)
    monkeypatch.delenv('MMSAM_CHECKPOINT_ROOT', raising=False)
    assert config_project_root(config) == root
    monkeypatch.chdir(elsewhere)
    cfg = load_config(config)
    weights = osp.join(root, 'checkpoints', 'w.pth')
    assert cfg.ckpt == weights and cfg.model.backbone.checkpoint == weights
    assert cfg.model.stages[0].checkpoint == weights
    # what no folder has stays as written (the missing-file messages say where it was
    # looked up); outputs and other relative paths are untouched
    assert cfg.data_root == 'data/world/' and cfg.work_dir == './work_dirs/m'
    assert cfg.other == 'annotations/a.json'
    # from the project's folder: as written
    monkeypatch.chdir(root)
    assert load_config(config).ckpt == 'checkpoints/w.pth'


def test_the_working_folder_comes_first_and_options_stay_the_users(project, monkeypatch):
    root, config, elsewhere = project
    monkeypatch.delenv('MMSAM_CHECKPOINT_ROOT', raising=False)
    monkeypatch.chdir(elsewhere)
    os.makedirs('checkpoints')
    open('checkpoints/w.pth', 'wb').close()
    cfg = load_config(config, dict(data_root='data/mine/'))
    assert cfg.ckpt == 'checkpoints/w.pth' and cfg.data_root == 'data/mine/'


def test_environment_variables_replace_the_folders(project, monkeypatch, tmp_path):
    _, config, elsewhere = project
    monkeypatch.setenv('MMSAM_DATA_ROOT', str(tmp_path / 'datasets'))
    monkeypatch.setenv('MMSAM_CHECKPOINT_ROOT', str(tmp_path / 'weights'))
    monkeypatch.chdir(elsewhere)
    cfg = load_config(config)
    assert cfg.data_root == str(tmp_path / 'datasets' / 'world') + '/'
    assert cfg.ckpt == str(tmp_path / 'weights' / 'w.pth')


def test_a_missing_config_names_the_working_folder(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match=f"working folder '{tmp_path}'"):
        load_config('configs/nope.py')


def test_a_tool_started_elsewhere_finds_the_projects_files(toy_root, tmp_path, monkeypatch):
    """tools/test.py's config loading, started from another folder on a project that holds
    its toy SAM weights and toy world: nothing is reported missing, and the paths point into
    the project (a copy of this repository's configs)."""
    import shutil
    from argparse import Namespace

    from helpers import REPO
    from mmsamantics.engine import load_tool_config
    proj = tmp_path / 'proj'
    shutil.copytree(osp.join(REPO, 'configs'), proj / 'configs')
    (proj / 'checkpoints').mkdir()
    (proj / 'checkpoints' / 'sam_tiny_toy.pth').write_bytes(b'')  # checked for existence
    (proj / 'data').mkdir()
    os.symlink(toy_root, proj / 'data' / 'toy_world')
    (tmp_path / 'elsewhere').mkdir()
    monkeypatch.chdir(tmp_path / 'elsewhere')
    monkeypatch.setenv('LOCAL_RANK', '0')
    for var in ('MMSAM_DATA_ROOT', 'MMSAM_CHECKPOINT_ROOT'):
        monkeypatch.delenv(var, raising=False)
    args = Namespace(config=str(proj / 'configs' / 'insam_detr_toy.py'), launcher='none',
                     cfg_options=None, work_dir=None, local_rank=0)
    cfg = load_tool_config(args, 'test')  # exits with the missing files otherwise
    assert cfg.model.backbone.checkpoint == str(proj / 'checkpoints' / 'sam_tiny_toy.pth')
    assert cfg.test_dataloader.dataset.data_root == str(proj / 'data' / 'toy_world') + '/'
    assert cfg.work_dir == './work_dirs/insam-detr_sam-tiny_1xb4-12e_toy-world'
