"""The box-prompt study: IoU bookkeeping with known masks, the SAM prompter, the CLI."""
import json
import os.path as osp

import numpy as np
import pytest
import torch

from helpers import REPO, load_tool, val_paths
from mmsamantics.prompt_study import (SAMBoxPrompter, load_coco, run_box_prompt_study,
                                      summarize_study)
from mmsamantics.utils import MissingResourceError

TOOL = osp.join(REPO, 'tools', 'analysis', 'box_prompt_study.py')


def rect(box, shape):
    """A filled rectangle mask of an xyxy box (rounded to whole pixels)."""
    m = np.zeros(shape, bool)
    x1, y1, x2, y2 = np.round(box).astype(int)
    m[y1:y2, x1:x2] = True
    return m


class RectSegmenter:
    """A 'SAM' whose mask is the filled box: the expected IoU is computable by hand."""

    def __init__(self):
        self.calls = []

    def __call__(self, img, boxes):
        self.calls.append(len(boxes))
        return (np.stack([rect(b, img.shape[:2]) for b in boxes]),
                np.ones(len(boxes), np.float32))


def test_iou_bookkeeping_with_known_masks(toy_root):
    ann, img_dir = val_paths(toy_root)
    coco = load_coco(ann)
    seg = RectSegmenter()
    records = run_box_prompt_study(coco, img_dir, seg, loosen=0.2)
    n_inst = len([a for a in coco.dataset['annotations'] if not a.get('iscrowd')])
    assert len(records) == n_inst and len(seg.calls) == len(coco.imgs)
    # one decoder call per image holding tight AND loose boxes
    assert sum(seg.calls) == 2 * n_inst
    for r in records:
        a = coco.anns[r['ann_id']]
        info = coco.imgs[a['image_id']]
        h, w = info['height'], info['width']
        x, y, bw, bh = a['bbox']
        loose = [max(0, x - 0.2 * bw), max(0, y - 0.2 * bh),
                 min(w, x + 1.2 * bw), min(h, y + 1.2 * bh)]
        np.testing.assert_allclose(r['box_loose'], loose)
        gt = coco.annToMask(a).astype(bool)
        for g, box in (('tight', [x, y, x + bw, y + bh]), ('loose', loose)):
            m = rect(box, (h, w))
            assert r[f'iou_{g}'] == pytest.approx((m & gt).sum() / (m | gt).sum())
    s = summarize_study(records, coco)
    for row in s['per_class']:
        mine = [r['iou_loose'] for r in records if r['category_id'] == row['category_id']]
        assert row['instances'] == len(mine) and row['iou_loose'] == pytest.approx(np.mean(mine))
    assert s['miou_tight'] == pytest.approx(np.mean([r['iou_tight'] for r in s['per_class']]))
    assert s['instance_iou_loose'] == pytest.approx(np.mean([r['iou_loose'] for r in records]))
    # a filled box covers more background once loosened
    assert s['miou_loose'] < s['miou_tight']


@pytest.mark.parametrize('preset', ['tiny', 'sam2_tiny'])
def test_prompter_batches_boxes_like_single_calls(preset):
    torch.manual_seed(0)
    sam = SAMBoxPrompter(preset)
    img = np.random.default_rng(0).integers(0, 255, (90, 140, 3), dtype=np.uint8)
    boxes = np.array([[10, 10, 60, 50], [0, 0, 140, 90], [70, 20, 130, 85]], np.float32)
    emb, meta = sam.embed(img)
    masks, iou = sam.segment(emb, meta, boxes)
    assert masks.shape == (3, 90, 140) and masks.dtype == bool and iou.shape == (3,)
    for i in range(3):
        single, _ = sam(img, boxes[i:i + 1])
        assert (single[0] == masks[i]).mean() > 0.9999


def test_prompter_errors(tmp_path):
    with pytest.raises(KeyError, match='unknown SAM preset'):
        SAMBoxPrompter('vit_x')
    with pytest.raises(MissingResourceError, match='pretrain_toy_sam'):
        SAMBoxPrompter('tiny', str(tmp_path / 'sam_tiny_toy.pth'))
    with pytest.raises(MissingResourceError, match='sam_vit_h_4b8939'):
        SAMBoxPrompter('vit_h', str(tmp_path / 'sam_vit_h.pth'))


@pytest.mark.e2e
def test_cli_on_toy_world_with_random_tiny_sam(toy_root, tmp_path, capsys):
    ann, img_dir = val_paths(toy_root)
    out = tmp_path / 'study'
    torch.manual_seed(0)  # the random tiny SAM the tool builds
    load_tool(TOOL).main(['--ann-file', ann, '--img-dir', img_dir, '--sam-preset', 'tiny',
                          '--loosen', '0.2', '--out-dir', str(out)])
    for ext in ('md', 'json', 'png'):
        assert (out / f'box_prompt_study.{ext}').stat().st_size > 0
    res = json.loads((out / 'box_prompt_study.json').read_text())
    s, recs = res['summary'], res['records']
    assert s['sam_checkpoint'] == 'RANDOM weights' and s['num_images'] == 8
    assert s['miou_tight'] == pytest.approx(np.mean([r['iou_tight'] for r in s['per_class']]))
    # fixed-seed values (the random tiny SAM of torch.manual_seed(0) above)
    assert len(recs) == 34
    assert s['miou_tight'] == pytest.approx(0.024926, abs=1e-4)
    assert s['miou_loose'] == pytest.approx(0.024450, abs=1e-4)
    md = (out / 'box_prompt_study.md').read_text()
    assert f'**{s["miou_tight"]:.3f}**' in md and f'**{s["miou_loose"]:.3f}**' in md
    assert len([ln for ln in md.splitlines() if ln.startswith('|')]) == len(s['per_class']) + 4
    assert 'mIoU tight' in capsys.readouterr().out


def _write(tmp_path, data):
    p = tmp_path / 'ann.json'
    p.write_text(json.dumps(data))
    return str(p)


@pytest.mark.e2e
def test_cli_errors(toy_root, tmp_path):
    ann, img_dir = val_paths(toy_root)
    main = load_tool(TOOL).main
    base = ['--sam-preset', 'tiny', '--out-dir', str(tmp_path / 'o')]
    with pytest.raises(SystemExit, match='checkpoint file not found|SAM checkpoint not found'):
        main(['--ann-file', ann, '--img-dir', img_dir, '--sam-checkpoint',
              str(tmp_path / 'missing.pth')] + base)
    with pytest.raises(SystemExit, match='annotation file not found'):
        main(['--ann-file', str(tmp_path / 'no.json'), '--img-dir', img_dir] + base)
    data = json.load(open(ann))
    empty = dict(data, annotations=[])
    with pytest.raises(SystemExit, match='no instance to study'):
        main(['--ann-file', _write(tmp_path, empty), '--img-dir', img_dir] + base)
    data['images'][0]['file_name'] = 'missing.png'
    with pytest.raises(SystemExit, match="image not found: .*missing.png"):
        main(['--ann-file', _write(tmp_path, data), '--img-dir', img_dir] + base)
