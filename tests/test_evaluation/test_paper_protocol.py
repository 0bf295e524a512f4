"""The paper's evaluation protocol in the COCO configs and the k-shot sweep defaults."""
import os.path as osp
import sys

from mmengine.config import Config

from helpers import load_tool
from mmsamantics.engine.preflight import missing_resources

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
MAKE = ('python tools/misc/make_reference_sets.py data/coco/annotations/instances_train2017.json'
        ' --out-dir data/coco/references')


def test_coco_configs_read_the_10_shot_set_and_validate_once():
    for name in ('insam_detr_coco.py', 'insam_detr_coco_novel.py'):
        cfg = Config.fromfile(osp.join(REPO, 'configs', name))
        ds = cfg.test_dataloader.dataset
        assert (ds.ref_set_file, ds.shots, ds.mode) == ('references/refs_seed42.json', 10,
                                                        'oracle')
        assert cfg.train_cfg.val_interval == cfg.train_cfg.max_epochs == 50
        assert cfg.model.test_cfg == dict(max_per_pair=100, max_per_img=100)


def test_missing_set_file_names_the_command_random_only_on_request():
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'insam_detr_coco.py'))
    assert (f'reference set (create: {MAKE}) \'data/coco/references/refs_seed42.json\' '
            '(test_dataloader) not found') in missing_resources(cfg, 'test')
    cfg.merge_from_dict({'test_dataloader.dataset.ref_set_file': None})
    assert not any('reference set' in line for line in missing_resources(cfg, 'test'))


def test_kshot_sweep_defaults_are_the_papers(monkeypatch):
    tool = load_tool('tools/analysis/kshot_eval.py')
    monkeypatch.setattr(sys, 'argv', ['kshot_eval.py', 'CONFIG'])
    args = tool.parse_args()
    assert (args.shots, args.seeds, args.modes) == ([1, 5, 10], [42, 123, 33],
                                                    ['oracle', 'open'])
