"""Predictions as plain Python: per-image dicts with RLE masks, COCO results, pictures."""
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
import torch
from mmengine.structures import InstanceData

from mmdet.structures import DetDataSample
from ..utils.rle import decode_mask, masks_to_rle


def select(pred: InstanceData, score_thr: float, max_dets: int) -> InstanceData:
    """Detections with ``score >= score_thr``, the ``max_dets`` best."""
    keep = (pred.scores >= score_thr).nonzero()[:, 0]
    keep = keep[pred.scores[keep].argsort(descending=True)][:max_dets]
    return pred[keep]


def to_result(pred: InstanceData, classes: Sequence[str], img_path: Optional[str],
              index: int, ori_shape: Tuple[int, int],
              work_shape: Optional[Tuple[int, int]] = None) -> dict:
    """One image's result, in original pixels.

    Args:
        pred: detections on the image the model was given (``bboxes`` xyxy, ``scores``,
            ``labels``, optional ``masks`` (N, Hw, Ww)).
        classes: class names by label. img_path: None for an array. index: input position.
        ori_shape: (H0, W0) of the original image.
        work_shape: (Hw, Ww) of the (reduced) image the model was given, when it differs
            from ``ori_shape``: boxes are scaled and masks resized (nearest) to (H0, W0),
            one at a time (see :mod:`mmsamantics.apis.target_images`).

    Returns:
        dict with ``img_path`` (None for an array), ``index`` (position in the inputs),
        ``height``, ``width``, ``boxes`` (N, 4) float32 xyxy in original pixels, ``scores``
        (N,), ``labels`` (N class names), ``label_ids`` (N,) indices into the inferencer's
        classes, ``masks`` (N COCO RLEs, or None when the model predicts boxes only).
    """
    label_ids = pred.labels.cpu().numpy().astype(np.int64)
    boxes = pred.bboxes.cpu().numpy().astype(np.float32)
    h0, w0 = (int(v) for v in ori_shape)
    resized = work_shape is not None and tuple(work_shape) != (h0, w0)
    if resized:
        hw, ww = work_shape
        boxes = np.clip(boxes * np.array([w0 / ww, h0 / hw] * 2, np.float32), 0,
                        [w0, h0, w0, h0]).astype(np.float32)
    masks = None
    if 'masks' in pred:
        m = pred.masks.cpu().numpy().astype(bool)
        masks = ([masks_to_rle(cv2.resize(k.astype(np.uint8), (w0, h0),
                                          interpolation=cv2.INTER_NEAREST)[None])[0]
                  for k in m] if resized else masks_to_rle(m))
    return dict(img_path=img_path, index=index, height=h0, width=w0, boxes=boxes,
                scores=pred.scores.cpu().numpy().astype(np.float32),
                labels=[classes[i] for i in label_ids], label_ids=label_ids, masks=masks)


def coco_results(results: Sequence[dict], image_ids: Sequence[int],
                 category_ids: Dict[str, int]) -> List[dict]:
    """COCO results format: ``image_id``, ``category_id``, ``bbox`` xywh, ``score``,
    ``segmentation`` (RLE with ``counts`` as str) when masks were predicted."""
    out = []
    for res, img_id in zip(results, image_ids):
        masks = res['masks'] or [None] * len(res['scores'])
        for box, score, name, rle in zip(res['boxes'], res['scores'], res['labels'], masks):
            x1, y1, x2, y2 = (float(v) for v in box)
            det = dict(image_id=int(img_id), category_id=int(category_ids[name]),
                       bbox=[round(x1, 2), round(y1, 2), round(x2 - x1, 2), round(y2 - y1, 2)],
                       score=round(float(score), 5))
            if rle is not None:
                det['segmentation'] = rle
            out.append(det)
    return out


def coco_images(results: Sequence[dict], image_ids: Sequence[int], file_names: Sequence[str],
                category_ids: Dict[str, int]) -> dict:
    """A GT-free COCO file (images, categories, no annotations) that results load against."""
    return dict(
        images=[dict(id=int(i), file_name=f, height=r['height'], width=r['width'])
                for r, i, f in zip(results, image_ids, file_names)],
        annotations=[],
        categories=[dict(id=int(c), name=n) for n, c in category_ids.items()])


class Drawer:
    """Draws predictions (masks, boxes, class names, scores) with mmdet's visualizer."""

    def __init__(self, classes: Sequence[str], name: str) -> None:
        from mmdet.visualization import DetLocalVisualizer
        self.vis = DetLocalVisualizer(name=name, alpha=0.5)
        self.vis.dataset_meta = dict(classes=tuple(classes), palette='random')

    def draw(self, img_bgr: np.ndarray, pred: InstanceData, out_file: str) -> str:
        os.makedirs(osp.dirname(osp.abspath(out_file)), exist_ok=True)
        pred = pred.cpu()
        if 'masks' in pred:
            pred.masks = pred.masks.bool()
        ds = DetDataSample(pred_instances=pred)
        self.vis.add_datasample('prediction', np.ascontiguousarray(img_bgr[:, :, ::-1]), ds,
                                draw_gt=False, pred_score_thr=-1.0, out_file=out_file)
        return out_file


def vis_name(path: Optional[str], index: int, taken: set) -> str:
    """A unique PNG name for an input (its file stem, else ``image_<index>``)."""
    stem = osp.splitext(osp.basename(path))[0] if path else f'image_{index:06d}'
    name, n = f'{stem}.png', 1
    while name in taken:
        name, n = f'{stem}_{n}.png', n + 1
    taken.add(name)
    return name


def result_to_instances(result: dict) -> InstanceData:
    """A result dict of the inference API back to predictions: ``bboxes`` (N, 4) xyxy,
    ``scores`` (N,), ``labels`` (N,) and, when the result has masks, ``masks`` (N, H, W)."""
    pred = InstanceData(bboxes=torch.as_tensor(result['boxes']),
                        scores=torch.as_tensor(result['scores']),
                        labels=torch.as_tensor(result['label_ids']))
    if result['masks']:
        pred.masks = torch.as_tensor(np.stack([decode_mask(r) for r in result['masks']])
                                     .astype(np.uint8))  # (N, H, W)
    return pred
