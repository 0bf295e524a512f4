"""tools/infer.py end to end on the trained ``make demo`` detector: its COCO results, read
back by pycocotools against the toy world's ground truth, score far above zero (a wrong box
format, mask size, image id or category id would score 0)."""
import json
import os.path as osp

from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from helpers import TRAINED_CONFIG, load_tool, toy_overrides, trained_checkpoint, val_paths
from helpers import write_train_refs

cli = load_tool('tools/infer.py')


def _coco_ap(gt_file: str, results_file: str, iou_type: str, cat_ids: list) -> float:
    gt = COCO(gt_file)
    with open(results_file) as f:
        dets = json.load(f)
    ev = COCOeval(gt, gt.loadRes(dets), iou_type)
    ev.params.catIds = cat_ids
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    return float(ev.stats[0])


def test_infer_results_score_with_pycocotools(toy_root, tmp_path):
    ann_file, img_dir = val_paths(toy_root)
    refs = tmp_path / 'refs.json'
    anns = write_train_refs(toy_root, str(refs), num_classes=12, shots=1)
    out = tmp_path / 'out'
    opts = [f'{k}={v}' for k, v in toy_overrides(toy_root).items()]
    assert cli.main([TRAINED_CONFIG, trained_checkpoint(), '--refs', str(refs),
                     '--ref-img-dir', osp.join(toy_root, 'train'), '--img-dir', img_dir,
                     '--image-ids-from', ann_file, '--out-dir', str(out), '--score-thr', '0',
                     '--device', 'cpu', '--no-progress', '--cfg-options', *opts]) == 0
    cat_ids = sorted({a['category_id'] for a in anns})
    assert len(cat_ids) == 12
    box_ap = _coco_ap(ann_file, str(out / 'results.json'), 'bbox', cat_ids)
    mask_ap = _coco_ap(ann_file, str(out / 'results.json'), 'segm', cat_ids)
    assert box_ap > 0.2 and mask_ap > 0.05, (box_ap, mask_ap)
