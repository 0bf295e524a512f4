"""InSAM-DETR on SAM 3 through the tools, as a user runs them: tools/train.py on the toy
world, the leaderboard on the trained checkpoint (a reference set, the test loop), a
reference bank from tools/misc/encode_references.py read by tools/test.py. SAM 3's weights
come from one file in the released ``sam3.pt`` layout (random toy-preset weights)."""
import json
import os.path as osp

import pytest

from helpers import PY, REPO, assert_same_dumped_predictions, cli_options, dumped_predictions
from helpers import run_tool as run
from sam3_helpers import released_layout

pytestmark = pytest.mark.e2e

CONFIG = osp.join(REPO, 'configs', 'insam_detr', 'insam-detr_sam3-toy_1xb4-12e_toy-world.py')


def sam3_options(toy_root: str, sam3: str, **extra) -> list:
    """``--cfg-options`` on the toy world with ``sam3`` in the three places that read it."""
    o = cli_options(toy_root, **extra)
    for key in ('model.backbone.checkpoint', 'model.mask_head.decoder.checkpoint'):
        o[o.index(f'{key}=None')] = f'{key}={sam3}'
    return o + [f'model.reference_sources.1.checkpoint={sam3}']


@pytest.fixture(scope='module')
def trained(toy_root, tmp_path_factory):
    d = tmp_path_factory.mktemp('sam3_e2e')
    sam3 = str(d / 'sam3_toy.pth')
    released_layout('toy', sam3)
    rc, log = run([PY, 'tools/train.py', CONFIG, '--work-dir', str(d / 'train'),
                   *sam3_options(toy_root, sam3)])
    assert rc == 0, log[-3000:]
    assert 'loss_cls' in log and osp.isfile(d / 'train' / 'epoch_1.pth')
    return sam3, str(d / 'train' / 'epoch_1.pth'), d


def test_leaderboard_and_bank_through_test_tool(trained, toy_root):
    sam3, ckpt, d = trained
    refs = d / 'refs'
    rc, log = run([PY, 'tools/misc/make_reference_sets.py',
                   osp.join(toy_root, 'annotations/instances_train.json'), '--out-dir',
                   str(refs), '--seeds', '42', '--max-shots', '1', '--min-area', '256',
                   '--border', '4'])
    assert rc == 0, log[-2000:]
    rc, log = run([PY, 'tools/analysis/leaderboard.py', f'{CONFIG}:{ckpt}', '--ref-dir',
                   str(refs), '--seeds', '42', '--modes', 'open', '--data-root', toy_root,
                   '--work-dir', str(d / 'board'), *sam3_options(toy_root, sam3)])
    assert rc == 0, log[-3000:]
    stem = osp.splitext(osp.basename(CONFIG))[0]
    with open(d / 'board' / 'runs' / stem / 'seed42_1shot_open.json') as f:
        board = json.load(f)
    assert board['params_frozen'] > board['params_trainable'] > 0
    bank = str(d / 'bank.pth')
    rc, log = run([PY, 'tools/misc/encode_references.py', CONFIG, ckpt, '--ref-set',
                   str(refs / 'refs_seed42.json'), '--shots', '1', '--out', bank,
                   *sam3_options(toy_root, sam3)])
    assert rc == 0, log[-3000:]
    # the same test run from the reference images and from the bank: the same detections
    preds = {}
    for name, extra in (('images', []), ('bank', ['--ref-bank', bank])):
        out = str(d / f'{name}.pkl')
        rc, log = run([PY, 'tools/test.py', CONFIG, ckpt, '--mode', 'open', '--ref-set',
                       str(refs / 'refs_seed42.json'), '--shots', '1', *extra, '--out', out,
                       '--work-dir', str(d / name), *sam3_options(toy_root, sam3)])
        assert rc == 0, log[-3000:]
        preds[name] = dumped_predictions(out)
    assert sum(len(p[1]) for p in preds['images'].values()) > 0
    assert_same_dumped_predictions(preds['images'], preds['bank'])
