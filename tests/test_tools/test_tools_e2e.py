"""The tools, end to end on the toy world: train, test, resume, 2-process gloo, bad configs.

The comparisons (test tool vs the training run's validation, one process vs two) run on the
trained ``make demo`` detector fine-tuned for an epoch, so that what they compare is far from
zero: an untrained model scores 0 everywhere, and any two of its runs look equal.
"""
import os.path as osp
import shutil

import pytest

from helpers import PY, REPO, TOY_CONFIG, TRAINED_CONFIG, cli_options
from helpers import log_metrics as metrics
from helpers import run_tool as run
from helpers import assert_same_dumped_predictions, dumped_predictions, trained_checkpoint

pytestmark = pytest.mark.e2e  # every test runs the tools in subprocesses


@pytest.fixture(scope='module')
def trained(toy_root, tmp_path_factory):
    """(work dir, log) of one epoch of ``TRAINED_CONFIG`` from the trained fixture."""
    wd = str(tmp_path_factory.mktemp('train'))
    rc, log = run([PY, 'tools/train.py', TRAINED_CONFIG, '--work-dir', wd,
                   *cli_options(toy_root, epochs=1, load_from=trained_checkpoint())])
    assert rc == 0, log[-3000:]
    return wd, log


def test_train_evaluates_base_and_novel(trained):
    wd, log = trained
    assert osp.isfile(osp.join(wd, 'epoch_1.pth'))
    keys = {f'coco/{k}' for k in ('bbox_mAP', 'segm_mAP', 'base_bbox_mAP_50',
                                   'novel_bbox_mAP_50', 'base_segm_mAP', 'novel_segm_mAP')}
    assert keys <= metrics(log, 'val').keys()  # values: test_test_tool_and_resume


def test_test_tool_and_resume(trained, toy_root, tmp_path):
    wd, train_log = trained
    ckpt = osp.join(wd, 'epoch_1.pth')
    val = metrics(train_log, 'val')
    assert val['coco/bbox_mAP'] > 0.2 and val['coco/segm_mAP_50'] > 0.2, val
    rc, log = run([PY, 'tools/test.py', TRAINED_CONFIG, ckpt, '--work-dir', wd + '/test',
                   *cli_options(toy_root)])
    assert rc == 0, log[-3000:]
    oracle = metrics(log)
    # the same weights on the same data (test_dataloader/test_evaluator are the val ones):
    # the training run's validation after epoch 1
    assert oracle == val
    rc, log = run([PY, 'tools/test.py', TRAINED_CONFIG, ckpt, '--mode', 'open',
                   '--work-dir', wd + '/test_open', *cli_options(toy_root)])
    assert rc == 0, log[-3000:]
    assert 'coco/novel_bbox_mAP' in metrics(log) and oracle.keys() == metrics(log).keys()
    # resume with torch.load(weights_only=True) semantics: continue from epoch 1 to 2
    # (in a copy: the other tests use the epoch-1 checkpoint, which max_keep_ckpts removes)
    wd = shutil.copytree(wd, tmp_path / 'resume')
    rc, log = run([PY, 'tools/train.py', TRAINED_CONFIG, '--work-dir', str(wd), '--resume',
                   *cli_options(toy_root, epochs=2)])
    assert rc == 0, log[-3000:]
    assert 'resumed epoch: 1' in log
    assert osp.isfile(osp.join(wd, 'epoch_2.pth'))
    assert 'Epoch(train) [1]' not in log.split('resumed epoch')[1]


def test_two_process_gloo_train_and_test_match_single_process(trained, toy_root, tmp_path):
    wd, _ = trained
    rc, log = run(['bash', 'tools/dist_train.sh', TOY_CONFIG, '2', '--work-dir',
                   str(tmp_path / 'dist'), *cli_options(toy_root)],
                  env=dict(PORT='29517', PYTHON=PY))
    assert rc == 0, log[-3000:]
    assert osp.isfile(tmp_path / 'dist' / 'epoch_1.pth')
    ckpt = osp.join(wd, 'epoch_1.pth')  # the fine-tuned trained detector
    # batch size 1: each image is computed alone in both runs, so the float arithmetic (and
    # with it every score) is the same however the images are split between processes
    opts = cli_options(toy_root, **{'test_dataloader.batch_size': 1})
    rc, single = run([PY, 'tools/test.py', TRAINED_CONFIG, ckpt, '--work-dir',
                      str(tmp_path / 's'), '--out', str(tmp_path / 's.pkl'), *opts])
    assert rc == 0, single[-3000:]
    assert metrics(single)['coco/bbox_mAP'] > 0.2, metrics(single)
    rc, dist = run(['bash', 'tools/dist_test.sh', TRAINED_CONFIG, ckpt, '2', '--work-dir',
                    str(tmp_path / 'd'), '--out', str(tmp_path / 'd.pkl'), *opts],
                   env=dict(PORT='29518', PYTHON=PY))
    assert rc == 0, dist[-3000:]
    assert metrics(dist) == metrics(single)
    # every image's predictions, from both processes, gathered in the one file
    single_preds = dumped_predictions(str(tmp_path / 's.pkl'))
    assert len(single_preds) == 8 and all(len(p[1]) for p in single_preds.values())
    assert_same_dumped_predictions(dumped_predictions(str(tmp_path / 'd.pkl')),
                                   single_preds)
    # the metric's packed detections gathered by all_gather instead of per-rank files
    # (collect_device='gpu'; over gloo on the CPU): the same numbers
    rc, gathered = run(['bash', 'tools/dist_test.sh', TRAINED_CONFIG, ckpt, '2', '--work-dir',
                        str(tmp_path / 'g'), *opts, 'test_evaluator.collect_device=gpu'],
                       env=dict(PORT='29519', PYTHON=PY))
    assert rc == 0, gathered[-3000:]
    assert metrics(gathered) == metrics(single)


def test_real_config_without_weights_or_coco_says_so(tmp_path):
    rc, log = run([PY, 'tools/train.py', osp.join(REPO, 'configs/insam_detr_coco.py'),
                   '--work-dir', str(tmp_path)], timeout=120)
    assert rc != 0
    assert 'Traceback' not in log
    assert "checkpoints/sam_vit_b_01ec64.pth" in log
    assert 'dl.fbaipublicfiles.com/segment_anything/sam_vit_b_01ec64.pth' in log
    assert 'data/coco/annotations/instances_train2017.json' in log
