"""The COCOeval implementations :class:`InContextCocoMetric` can run, and COCO's summary
numbers over any subset of the evaluated categories.

``'pycocotools'`` is the reference implementation (what mmdet's ``CocoMetric`` runs);
``'faster'`` is faster-coco-eval's ``COCOeval_faster`` (per-image matching and accumulation
in C++, the same rules; its numbers equal pycocotools' to the printed precision, tested).
Both fill ``eval['precision']`` (T x R x K x A x M: IoU thresholds, recall thresholds,
categories, area ranges, max detections) and ``eval['recall']`` (T x K x A x M); the summary
numbers are always pycocotools' ``summarize`` over a slice of those along K, so that both
backends report the same items (faster-coco-eval's own summary reads other max-detection
counts when they are not COCO's 1/10/100) and a class split costs a slice, not an evaluation.
Accumulation treats each category on its own, so the slice equals evaluating the subset alone.
"""
import contextlib
import importlib.util
import io
from typing import Sequence

import numpy as np

from mmdet.datasets.api_wrappers import COCO, COCOeval

BACKENDS = ('auto', 'faster', 'pycocotools')


def faster_available() -> bool:
    """Whether faster-coco-eval is installed."""
    try:
        return importlib.util.find_spec('faster_coco_eval') is not None
    except ValueError:  # in sys.modules as None: made unimportable on purpose
        return False


def resolve_backend(backend: str) -> str:
    """``'faster'`` or ``'pycocotools'`` for ``backend`` (``'auto'``: faster when installed).

    Raises:
        ValueError: an unknown name. ImportError: ``'faster'`` without faster-coco-eval.
    """
    if backend not in BACKENDS:
        raise ValueError(f'unknown COCO evaluation backend {backend!r}: use one of {BACKENDS}')
    if backend == 'pycocotools':
        return backend
    if faster_available():
        return 'faster'
    if backend == 'faster':
        raise ImportError("backend='faster' needs faster-coco-eval: pip install "
                          "faster-coco-eval (pinned in requirements/constraints.txt; make "
                          "env installs it), or use backend='pycocotools'")
    return 'pycocotools'


def evaluate(backend: str, coco_gt: COCO, coco_dt: COCO, iou_type: str,
             cat_ids: Sequence[int], img_ids: Sequence[int], max_dets: Sequence[int],
             iou_thrs: np.ndarray):
    """Per-image evaluation and accumulation of ``coco_dt`` against ``coco_gt`` with
    ``backend`` (``'faster'`` or ``'pycocotools'``); the evaluator, with ``eval`` filled and
    ``params.catIds`` sorted (the K order of ``eval``)."""
    if backend == 'faster':
        from faster_coco_eval import COCOeval_faster
        ev = COCOeval_faster(coco_gt, coco_dt, iou_type, print_function=lambda *a: None)
    else:
        ev = COCOeval(coco_gt, coco_dt, iou_type)
    ev.params.catIds, ev.params.imgIds = list(cat_ids), list(img_ids)
    ev.params.maxDets, ev.params.iouThrs = list(max_dets), np.asarray(iou_thrs)
    ev.evaluate()
    ev.accumulate()
    return ev


def summarize(ev, cat_ids: Sequence[int], quiet: bool = False) -> np.ndarray:
    """pycocotools' 12 summary numbers (``COCOeval.stats``) of an accumulated evaluator
    ``ev`` restricted to ``cat_ids`` (a subset of the evaluated categories).

    Raises:
        KeyError: a category that was not evaluated.
    """
    pos = {c: k for k, c in enumerate(ev.params.catIds)}
    missing = [c for c in cat_ids if c not in pos]
    if missing:
        raise KeyError(f'categories {missing} were not evaluated (evaluated: '
                       f'{list(ev.params.catIds)})')
    k = [pos[c] for c in cat_ids]
    shell = COCOeval(iouType=ev.params.iouType)  # pycocotools' summarize on the slice
    for name in ('iouThrs', 'recThrs', 'maxDets', 'areaRng', 'areaRngLbl'):
        setattr(shell.params, name, getattr(ev.params, name))
    shell.params.catIds = list(cat_ids)
    shell.eval = dict(precision=ev.eval['precision'][:, :, k],
                      recall=ev.eval['recall'][:, k])
    with contextlib.redirect_stdout(io.StringIO()) if quiet else contextlib.nullcontext():
        shell.summarize()
    return shell.stats
