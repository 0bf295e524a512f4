"""Where the box prompts of the pseudo-labels come from: GT boxes or any mmdet detector.

Shape shorthand: N boxes of one image. Every source returns, per image, ``boxes`` (N, 4)
xyxy in original-image pixels, ``labels`` (N,) label values of the dataset (1..K, see
:func:`coco_classes`) and ``scores`` (N,).

The WSSS report (Sun et al., "An Alternative to WSSS? An Empirical Study of the Segment
Anything Model (SAM) on Weakly-Supervised Semantic Segmentation Problems") grounds the
image-level class names with Grounding DINO (text prompt = the image's class names joined
by full stops) and maps every grounded phrase back to its class: ``text_prompt=True`` does
this with any mmdet grounding model; closed-set detectors map their class names to the
dataset's by name (``class_map`` renames them first).
"""
import os.path as osp
from typing import Dict, List, Optional, Tuple

import numpy as np
from pycocotools.coco import COCO

from ..prompt_study.box_loosening import xywh_to_xyxy

BoxesLabelsScores = Tuple[np.ndarray, np.ndarray, np.ndarray]


class GTBoxSource:
    """Tight GT boxes of the non-crowd annotations, with score 1.

    Args:
        coco: the dataset.
        cat_to_label: category id -> label value (:func:`coco_classes`).
    """

    def __init__(self, coco: COCO, cat_to_label: Dict[int, int]) -> None:
        self.coco, self.cat_to_label = coco, cat_to_label

    def __call__(self, img_id: int, img_path: str, img: np.ndarray) -> BoxesLabelsScores:
        anns = [a for a in self.coco.loadAnns(self.coco.getAnnIds(imgIds=[img_id],
                                                                   iscrowd=False))
                if a['bbox'][2] > 0 and a['bbox'][3] > 0]
        unknown = sorted({a['category_id'] for a in anns} - set(self.cat_to_label))
        if unknown:
            raise ValueError(f'image {img_id} has annotations of category ids {unknown} that '
                             'are not in the "categories" list of the annotation file')
        boxes = xywh_to_xyxy([a['bbox'] for a in anns]).astype(np.float32)
        labels = np.array([self.cat_to_label[a['category_id']] for a in anns], np.int64)
        return boxes, labels, np.ones(len(anns), np.float32)


class DetectorBoxSource:
    """Boxes of an mmdet detector (any config + checkpoint), above a score threshold.

    Args:
        config: mmdet config file of the detector.
        checkpoint: its weights (the class names are read from the checkpoint's
            ``meta.dataset_meta.classes``, else the config's ``metainfo``).
        class_names: the dataset's names, index = label value (``[0]`` = background).
        score_thr: keep detections scoring at least this.
        class_map: detector class name -> dataset class name, for names that differ.
        drop_unmapped: drop detections of detector classes with no dataset class (default:
            such classes are an error, so nothing is dropped unnoticed).
        text_prompt: a grounding model (Grounding DINO / GLIP): prompt each image with the
            names of the classes it holds (its image-level labels, from ``coco``).
        coco: the dataset (needed with ``text_prompt``).
        device: torch device.
    """

    def __init__(self, config: str, checkpoint: str, class_names: List[str],
                 score_thr: float = 0.3, class_map: Optional[Dict[str, str]] = None,
                 drop_unmapped: bool = False, text_prompt: bool = False,
                 coco: Optional[COCO] = None, device: str = 'cpu') -> None:
        from mmdet.apis import init_detector
        for path, what in ((config, 'detector config'), (checkpoint, 'detector checkpoint')):
            if not osp.isfile(path):
                raise FileNotFoundError(f'{what} not found: {path!r}')
        if text_prompt and coco is None:
            raise ValueError('text_prompt needs the annotation file for image-level labels')
        # palette='random': do not build the config's test dataset just for its palette
        self.model = init_detector(config, checkpoint, palette='random', device=device)
        self.score_thr, self.text_prompt, self.coco = score_thr, text_prompt, coco
        self.class_names = list(class_names)
        self.name_to_label = {n: k for k, n in enumerate(class_names) if k > 0}
        self.class_map = dict(class_map or {})
        unknown = sorted(set(self.class_map.values()) - set(self.name_to_label))
        if unknown:
            raise ValueError(f'class_map targets {unknown} are not dataset classes '
                             f'({class_names[1:]})')
        self.drop_unmapped = drop_unmapped
        self.det_to_label = None if text_prompt else self._label_lut(
            list(self.model.dataset_meta.get('classes', ())))

    def _label_lut(self, det_classes: List[str]) -> np.ndarray:
        """(C_det,) dataset label of each detector class; 0 = unmapped (dropped)."""
        if not det_classes:
            raise ValueError('the detector has no class names (checkpoint meta '
                             'dataset_meta.classes): cannot map its labels to the dataset')
        names = [self.class_map.get(n, n) for n in det_classes]
        unknown = [n for n in names if n not in self.name_to_label]
        if unknown and not self.drop_unmapped:
            raise ValueError(
                f'detector classes {unknown[:20]} are not dataset classes '
                f'({self.class_names[1:][:20]}...): rename them with --class-map '
                '"det_name=dataset_name" or drop them with --drop-unmapped')
        return np.array([self.name_to_label.get(n, 0) for n in names], np.int64)

    def __call__(self, img_id: int, img_path: str, img: np.ndarray) -> BoxesLabelsScores:
        from mmdet.apis import inference_detector
        if self.text_prompt:
            cats = sorted({a['category_id'] for a in self.coco.loadAnns(
                self.coco.getAnnIds(imgIds=[img_id], iscrowd=False))})
            entities = [self.coco.cats[c]['name'] for c in cats]
            if not entities:
                return (np.zeros((0, 4), np.float32), np.zeros(0, np.int64),
                        np.zeros(0, np.float32))
            res = inference_detector(self.model, img_path, text_prompt=' . '.join(entities),
                                     custom_entities=True)
            lut = self._label_lut(entities)
        else:
            res = inference_detector(self.model, img_path)
            lut = self.det_to_label
        pred = res.pred_instances
        keep = (pred.scores >= self.score_thr).cpu().numpy()
        boxes = pred.bboxes.cpu().numpy()[keep].astype(np.float32)
        labels = lut[pred.labels.cpu().numpy()[keep]]
        scores = pred.scores.cpu().numpy()[keep].astype(np.float32)
        mapped = labels > 0  # only with drop_unmapped can a label be 0 here
        return boxes[mapped], labels[mapped], scores[mapped]
