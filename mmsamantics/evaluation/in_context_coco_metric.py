"""COCO box/mask AP over all classes, per class split (e.g. COCO-NOVEL base / novel) and per
class, from one loaded result set and one per-image evaluation per IoU type; and the
open-mode reference-control family derived from the same predictions.

Why derived controls are exact: in open mode every class with references is queried. A
derangement control (:mod:`mmsamantics.datasets.reference_controls`) gives class c the
references of its donor d = pi(c), so the detector is asked the same questions with other
labels: a detector whose detections for a queried class depend only on that class's
references (every in-context detector here: InSAM-DETR decodes each (target, class) pair on
its own; the matcher, PerSAM and SAMIC score each class's prototype; the per-image cut and
class-wise NMS do not look at the label) returns the right run's detections with label d
renamed c. The metric renames them and evaluates again: the control's numbers without
running the model again. ``tools/test.py --ref-control`` runs a control for real; tests
check that both agree.
"""
import contextlib
import io
import json
import os.path as osp
import tempfile
from collections import OrderedDict
from typing import Dict, Iterator, List, Optional, Sequence, Union

import numpy as np
import torch
from mmengine.logging import MMLogger
from terminaltables import AsciiTable

from mmdet.datasets.api_wrappers import COCO
from mmdet.evaluation import CocoMetric
from mmdet.registry import METRICS
from ..datasets.reference_controls import control_donors, expand_controls
from ..utils.rle import pack_masks, pack_rles, unpack_rles
from .coco_backends import evaluate, resolve_backend, summarize

# index of each metric item in COCOeval.stats (mmdet's names)
STATS = {'mAP': 0, 'mAP_50': 1, 'mAP_75': 2, 'mAP_s': 3, 'mAP_m': 4, 'mAP_l': 5,
         'AR@100': 6, 'AR@300': 7, 'AR@1000': 8, 'AR_s@1000': 9, 'AR_m@1000': 10,
         'AR_l@1000': 11}
DEFAULT_ITEMS = ('mAP', 'mAP_50', 'mAP_75', 'mAP_s', 'mAP_m', 'mAP_l')


class _Expanded(Sequence):
    """mmdet's per-image result dicts (a dict per mask RLE) made one at a time from the
    packed records :meth:`InContextCocoMetric.process` keeps, for mmdet's ``results2json``."""

    def __init__(self, preds: Sequence[dict]) -> None:
        self.preds = preds

    def __len__(self) -> int:
        return len(self.preds)

    def __getitem__(self, i: int) -> dict:
        return unpack_result(self.preds[i])

    def __iter__(self) -> Iterator[dict]:
        return (unpack_result(p) for p in self.preds)


def packed_masks(masks: Union[torch.Tensor, Sequence[dict]]) -> dict:
    """The packed form of one image's masks ((N, H, W) tensor, or N RLEs):
    ``mask_counts`` (bytes), ``mask_ends`` (N,) and ``mask_size`` (H, W)."""
    if isinstance(masks, torch.Tensor):
        counts, ends = pack_masks(masks.detach().cpu().numpy())
        size = tuple(masks.shape[-2:])
    else:
        counts, ends = pack_rles(masks)
        size = tuple(masks[0]['size']) if len(masks) else (0, 0)
    return dict(mask_counts=counts, mask_ends=ends, mask_size=size)


def as_str(counts: Union[bytes, str]) -> str:
    """RLE counts as mmdet's result files hold them (``str``)."""
    return counts.decode('ascii') if isinstance(counts, bytes) else counts


def unpack_result(pred: dict) -> dict:
    """A packed record (:meth:`InContextCocoMetric.process`) as mmdet's ``CocoMetric``
    keeps it: ``masks`` a list of RLE dicts."""
    if 'mask_counts' not in pred:
        return pred
    out = {k: v for k, v in pred.items() if k not in ('mask_counts', 'mask_ends', 'mask_size')}
    out['masks'] = unpack_rles(pred['mask_counts'], pred['mask_ends'], pred['mask_size'])
    return out


@METRICS.register_module()
class InContextCocoMetric(CocoMetric):
    """mmdet's ``CocoMetric`` for all classes, each class split and (``classwise``) each class.

    Keys: the usual ``bbox_mAP``, ``segm_mAP_50``, ... for all classes, then
    ``{split}_bbox_mAP`` ... for each split (e.g. ``base_bbox_mAP_50``, ``novel_segm_mAP``),
    with ``classwise=True`` ``bbox_mAP/<class>`` and ``bbox_mAP_50/<class>`` (per-class AP
    and AP50 of every class with ground truth), and ``reference_control`` (``'none'`` or the
    control of an in-context dataset: :mod:`mmsamantics.datasets.reference_controls`).
    The detections are loaded once per IoU type, each image evaluated and the result
    accumulated once; each split and class is summarized from its slice of the accumulated
    precision, so its numbers equal evaluating the split on its own (tested), at the cost of
    one evaluation (:mod:`.coco_backends`).

    Each rank keeps its detections packed (numpy arrays and, per image, the masks' RLE
    counts in one ``bytes``), encoded once where they are predicted: what mmengine collects
    from the ranks (``collect_device``) is a few objects per image, not a dict per mask.

    With ``derived_controls`` (open mode, no control in the dataset), every key is also
    reported for each derangement control as ``<control>/<key>`` (``cyclic/bbox_mAP_50``,
    ``same-kind/base_bbox_mAP_50``, ``random-0/bbox_mAP_50/red circle``), derived from the
    same predictions (module docstring).

    Args:
        class_splits: ``{split name: [class names]}``; or
        class_splits_file: a JSON file with that mapping (the toy world's splits.json).
        derived_controls: derangement controls to derive (``'family'``, ``'random'``,
            ``'cyclic'``, ``'random-<seed>'``, ``'same-attribute'``, ``'same-kind'``;
            :func:`~mmsamantics.datasets.reference_controls.expand_controls`).
        control_seeds: the seeds of ``'random'`` / ``'family'``.
        derived_metrics: the IoU types the derived controls are evaluated on (default
            ``('bbox',)``: the control table compares box AP; mask AP costs more).
        backend: the COCOeval implementation: ``'faster'`` (faster-coco-eval, C++),
            ``'pycocotools'`` (mmdet's), or ``'auto'`` (default: faster when installed).
            Both give the same numbers (:mod:`.coco_backends`).
        **kwargs: :class:`mmdet.evaluation.CocoMetric` arguments.
    """

    def __init__(self,
                 class_splits: Optional[Dict[str, Sequence[str]]] = None,
                 class_splits_file: Optional[str] = None,
                 derived_controls: Sequence[str] = (),
                 control_seeds: Sequence[int] = (0, 1, 2),
                 derived_metrics: Sequence[str] = ('bbox',),
                 backend: str = 'auto',
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.backend = resolve_backend(backend)
        self.derived_controls = expand_controls(derived_controls, control_seeds)
        self.derived_metrics = [m for m in self.metrics if m in derived_metrics]
        if self.derived_controls and not self.derived_metrics:
            raise ValueError(f'derived_metrics {list(derived_metrics)} are not among the '
                             f'metric\'s {self.metrics}')
        if 'blank' in self.derived_controls:
            raise ValueError("the 'blank' control changes the references themselves and "
                             'cannot be derived: run it with tools/test.py --ref-control blank')
        if self.derived_controls and self.format_only:
            raise ValueError('derived_controls need an evaluation: format_only=False')
        if class_splits is None and class_splits_file is not None:
            try:
                with open(class_splits_file) as f:
                    class_splits = json.load(f)
            except FileNotFoundError as e:
                raise FileNotFoundError(
                    f'class_splits_file not found: {class_splits_file!r}') from e
        self.class_splits = dict(class_splits or {})
        self._label_cat_ids: Optional[List[int]] = None

    def process(self, data_batch: dict, data_samples: Sequence[dict]) -> None:
        """mmdet's ``CocoMetric.process`` with the masks packed (class docstring)."""
        for sample in data_samples:
            pred = sample['pred_instances']
            if 'masks' not in pred:
                super().process(data_batch, [sample])
                continue
            rest = {k: v for k, v in pred.items() if k != 'masks'}
            super().process(data_batch, [dict(sample, pred_instances=rest)])
            self.results[-1][1].update(packed_masks(pred['masks']))

    def label_cat_ids(self) -> List[int]:
        """The category id of each label: labels always map through ALL classes, whatever
        subset is being evaluated."""
        if self._label_cat_ids is None:
            self._label_cat_ids = self._coco_api.get_cat_ids(
                cat_names=self.dataset_meta['classes'])
        return self._label_cat_ids

    def results2json(self, results: Sequence[dict], outfile_prefix: str) -> dict:
        """mmdet's result files (written when ``outfile_prefix`` or ``format_only`` asks
        for them; the evaluation itself reads :meth:`coco_records`)."""
        subset, self.cat_ids = self.cat_ids, self.label_cat_ids()
        try:
            return super().results2json(_Expanded(results), outfile_prefix)
        finally:
            self.cat_ids = subset

    def coco_records(self, preds: Sequence[dict], metric: str) -> List[dict]:
        """The COCO result records of ``metric`` (``'bbox'`` or ``'segm'``), as mmdet's
        ``results2json`` writes them, built in memory for ``loadRes`` (a JSON round trip
        costs more than the evaluation with the faster backend). Segm records carry no box,
        so COCOeval's area ranges use the mask's area, not the box's."""
        cat_ids = np.asarray(self.label_cat_ids())
        out: List[dict] = []
        for pred in preds:
            # float64 before subtracting: mmdet subtracts Python floats
            b = np.asarray(pred['bboxes'], np.float64).reshape(-1, 4)
            cats = cat_ids[np.asarray(pred['labels'], np.int64)].tolist()
            if metric == 'bbox':
                boxes = np.concatenate([b[:, :2], b[:, 2:] - b[:, :2]], 1).tolist()
                out += [dict(image_id=pred['img_id'], bbox=box, score=s, category_id=c)
                        for box, s, c in zip(boxes, pred['scores'].tolist(), cats)]
                continue
            scores = pred.get('mask_scores', pred['scores']).tolist()
            rles = unpack_result(pred)['masks']
            out += [dict(image_id=pred['img_id'], score=s, category_id=c,
                         segmentation=dict(size=r['size'], counts=as_str(r['counts'])))
                    for r, s, c in zip(rles, scores, cats)]
        return out

    def compute_metrics(self, results: list) -> Dict[str, float]:
        if 'segm' in self.metrics and results and any(
                'masks' not in r and 'mask_counts' not in r for _, r in results):
            raise ValueError("the 'segm' metric needs masks, but the model predicted boxes only "
                             '(e.g. model.with_mask=False): evaluate boxes alone with '
                             "--cfg-options test_evaluator.metric=bbox, or predict masks")
        if self.format_only or any(m not in ('bbox', 'segm') for m in self.metrics):
            if self.derived_controls:
                raise ValueError('derived_controls need the bbox / segm metrics, got '
                                 f'{self.metrics}')
            # proposals, or nothing to evaluate: mmdet's own path, on mmdet's records
            out = self._per_subset([(gt, unpack_result(p)) for gt, p in results])
        else:
            with tempfile.TemporaryDirectory() as tmp:
                prefix = self.outfile_prefix or osp.join(tmp, 'results')
                out = self._evaluate_once(results, prefix)
                out.update(self._derived_controls(results, prefix))
        meta = self.dataset_meta or {}
        if 'reference_control' in meta:
            out['reference_control'] = meta['reference_control']
        if meta.get('query_classes') is not None:
            out['query_classes'] = list(meta['query_classes'])
        if meta.get('shot_index') is not None:  # one shot of a k-shot draw, not the draw
            out['shot_index'] = int(meta['shot_index'])
        return out

    def _per_subset(self, results: list) -> Dict[str, float]:
        """mmdet's evaluation once for all classes and once per split (proposal metrics)."""
        out = OrderedDict(super().compute_metrics(results))
        all_ids = self.cat_ids
        try:
            for split, cat_ids in self._split_cat_ids().items():
                self.cat_ids = cat_ids
                out.update({f'{split}_{k}': v
                            for k, v in super().compute_metrics(results).items()})
        finally:
            self.cat_ids = all_ids
        return out

    def _split_cat_ids(self) -> Dict[str, List[int]]:
        classes = list(self.dataset_meta['classes'])
        out = {}
        for split, names in self.class_splits.items():
            names = [n for n in names if n in classes]
            if names:
                out[split] = self._coco_api.get_cat_ids(cat_names=names)
        return out

    def _evaluate_once(self, results: list, outfile_prefix: str,
                       quiet: bool = False) -> Dict[str, float]:
        logger = MMLogger.get_current_instance()
        gts, preds = zip(*results)
        if self._coco_api is None:
            logger.info('Converting ground truth to coco format...')
            self._coco_api = COCO(self.gt_to_coco_json(gt_dicts=gts,
                                                       outfile_prefix=outfile_prefix))
        if self.cat_ids is None:
            self.cat_ids = self._coco_api.get_cat_ids(cat_names=self.dataset_meta['classes'])
        if self.img_ids is None:
            self.img_ids = self._coco_api.get_img_ids()
        if self.outfile_prefix:  # the user asked for the result files
            self.results2json(preds, outfile_prefix)
        items = list(self.metric_items or DEFAULT_ITEMS)
        unknown = [i for i in items if i not in STATS]
        if unknown:
            raise KeyError(f'metric items {unknown} are not supported: use {list(STATS)}')
        splits = self._split_cat_ids()
        out: Dict[str, float] = OrderedDict()
        for metric in self.metrics:
            if not quiet:
                logger.info(f'Evaluating {metric}...')
            dets = self.coco_records(preds, metric)
            if not dets:
                logger.error('The testing results of the whole dataset is empty.')
                break
            coco_dt = self._coco_api.loadRes(dets)
            del dets  # loadRes indexes the same records
            ev = evaluate(self.backend, self._coco_api, coco_dt, metric, self.cat_ids,
                          self.img_ids, self.proposal_nums, self.iou_thrs)
            for split, cat_ids in [('', self.cat_ids)] + list(splits.items()):
                # the summary table of all classes printed, as mmdet does
                stats = summarize(ev, cat_ids, quiet=quiet or bool(split))
                prefix = f'{split}_' if split else ''
                out.update({f'{prefix}{metric}_{i}': float(f'{round(stats[STATS[i]], 3)}')
                            for i in items})
                if split:
                    continue
                if not quiet:
                    logger.info(f'{metric}_mAP_copypaste: ' + ' '.join(
                        f'{stats[STATS[i]]:.3f}' for i in DEFAULT_ITEMS))
                if self.classwise:
                    out.update(self._per_class(ev, metric, None if quiet else logger))
            del ev, coco_dt  # before the next IoU type's detections are loaded
        return out

    def _derived_controls(self, results: list, outfile_prefix: str) -> Dict[str, float]:
        """``<control>/<key>`` for every derived control: the predictions with each label d
        renamed c, where d is the donor of c (module docstring)."""
        if not self.derived_controls:
            return {}
        meta = self.dataset_meta or {}
        if meta.get('query_mode') != 'open' or meta.get('reference_control', 'none') != 'none' \
                or meta.get('query_classes') is not None or 'reference_labels' not in meta:
            raise ValueError(
                'derived_controls are exact only for an open-mode run with the right '
                'references and every class with references queried (this dataset: '
                f"mode={meta.get('query_mode')!r}, ref_control="
                f"{meta.get('reference_control')!r}, query_classes="
                f"{meta.get('query_classes')!r}); run the control itself with "
                'tools/test.py --ref-control instead')
        logger, out = MMLogger.get_current_instance(), OrderedDict()
        for control in self.derived_controls:
            donors = control_donors(control, meta['reference_labels'], meta['classes'])
            rename = np.arange(len(meta['classes']))
            for c, d in donors.items():
                rename[d] = c
            moved = [(gt, dict(pred, labels=rename[np.asarray(pred['labels'], np.int64)]))
                     for gt, pred in results]
            metrics, self.metrics = self.metrics, self.derived_metrics
            try:
                with contextlib.redirect_stdout(io.StringIO()):  # COCOeval's summaries
                    res = self._evaluate_once(moved, f'{outfile_prefix}.{control}', quiet=True)
            finally:
                self.metrics = metrics
            out.update({f'{control}/{k}': v for k, v in res.items()})
            ap50 = ', '.join(f'{k} {v:.3f}' for k, v in res.items()
                             if k.endswith('mAP_50') and '/' not in k)
            logger.info(f'[control] {control} (derived from the open-mode predictions): {ap50}')
        return out

    def _per_class(self, ev, metric: str, logger) -> Dict[str, float]:
        """AP and AP50 of every class with ground truth (``{metric}_mAP/<class>``), from the
        accumulated precision of ``ev`` (IoU, recall, class, area, max dets) at area 'all'
        and the largest max-dets, as COCOeval's own AP; a table in the log."""
        prec = ev.eval['precision']
        iou50 = np.flatnonzero(np.isclose(ev.params.iouThrs, 0.5))
        out, rows = OrderedDict(), [['category', 'mAP', 'mAP_50']]
        for k, cat_id in enumerate(ev.params.catIds):
            name = self._coco_api.cats[int(cat_id)]['name']
            ap = [prec[:, :, k, 0, -1]] + [prec[i, :, k, 0, -1] for i in iou50[:1]]
            ap = [p[p > -1] for p in ap]
            if not ap[0].size:  # no ground truth of this class in the evaluated images
                continue
            vals = [round(float(np.mean(p)), 3) for p in ap]
            for item, v in zip(('mAP', 'mAP_50'), vals):
                out[f'{metric}_{item}/{name}'] = v
            rows.append([name] + [f'{v:.3f}' for v in vals])
        if logger is not None:
            logger.info(f'{metric} per class:\n' + AsciiTable(rows).table)
        return out
