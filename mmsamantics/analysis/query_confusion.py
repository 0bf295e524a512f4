"""Query confusion of an open-mode in-context detector: which queried classes fire on an object.

In open mode (:class:`~mmsamantics.datasets.InContextCocoDataset` ``mode='open'``) the
detector is queried with every class's references on each target image and each prediction
is labelled with the class it was queried for. A detector that matches its references
recognises an object only when queried with the object's own class; one that matches a
coarser cue (colour, texture) fires as strongly for the classes that share it. For every
ground-truth object and every queried class q this takes the highest score of q's
detections on the object (box IoU >= ``iou_thr``; 0 when none) and summarises these
per-object scores as a class-by-class matrix, the fraction of objects on which their own
class scores strictly highest, and, for class names of the form ``"<attribute> <kind>"``
(the toy world's ``"red circle"``), by group: the object's own class, the same attribute
with another kind (``"red square"``), the same kind with another attribute (``"blue
circle"``) and the rest.

Shape shorthand: G ground-truth objects of one image, N detections of that image, M
ground-truth objects of all images, C classes (queried classes = ground-truth classes).
"""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from torch import Tensor
from torchvision.ops import box_convert, box_iou

# the groups of queried classes relative to an object's class "<attribute> <kind>"
GROUPS = ('own', 'same_attribute', 'same_kind', 'other')
GROUP_TEXT = dict(own='own class', same_attribute='same attribute, other kind',
                  same_kind='same kind, other attribute', other='other classes')


def gt_by_image(coco_gt: dict, classes: Sequence[str],
                classes_of_gt: Optional[Sequence[str]] = None) -> Dict[int, Tuple[Tensor, Tensor]]:
    """The counted ground-truth objects of each image, grouped once.

    Args:
        coco_gt: a COCO-format dict (``images``, ``annotations`` with ``bbox`` xywh,
            ``categories``).
        classes: the class names the predictions' labels index.
        classes_of_gt: count only objects of these classes (e.g. the base classes);
            default: every class. Crowd annotations are never counted.

    Returns:
        ``{image id: (boxes (G, 4) xyxy float32, labels (G,) int64 indices into classes)}``
        for every image of ``coco_gt`` (G may be 0).

    Raises:
        ValueError: a class of ``classes_of_gt``, or of a counted annotation, is not one
            of ``classes``.
    """
    index = {name: i for i, name in enumerate(classes)}
    wanted = set(classes if classes_of_gt is None else classes_of_gt)
    unknown = sorted(c for c in wanted if c not in index)
    if unknown:
        raise ValueError(f'classes of the ground truth {unknown} are not among the '
                         f'predictions\' classes {list(classes)}')
    cat_name = {c['id']: c['name'] for c in coco_gt.get('categories', [])}
    boxes: Dict[int, List[List[float]]] = {im['id']: [] for im in coco_gt.get('images', [])}
    labels: Dict[int, List[int]] = {i: [] for i in boxes}
    for ann in coco_gt.get('annotations', []):
        if ann.get('iscrowd', 0):
            continue
        name = cat_name.get(ann['category_id'])
        if name not in index and classes_of_gt is None:
            raise ValueError(f'category {name or ann["category_id"]!r} of the annotation '
                             'file is not among the predictions\' classes: give the classes '
                             'the predictions were made with, or count only some '
                             'ground-truth classes (classes_of_gt)')
        if name in wanted:
            boxes.setdefault(ann['image_id'], []).append(ann['bbox'])
            labels.setdefault(ann['image_id'], []).append(index[name])
    return {i: (box_convert(torch.tensor(boxes[i], dtype=torch.float32).reshape(-1, 4),
                            'xywh', 'xyxy'), torch.tensor(labels[i], dtype=torch.int64))
            for i in boxes}


def image_max_scores(gt_boxes: Tensor, pred_boxes: Tensor, scores: Tensor, labels: Tensor,
                     num_classes: int, iou_thr: float = 0.5) -> Tensor:
    """Per object and queried class, the highest score of that class's detections on it.

    Args:
        gt_boxes: (G, 4) xyxy ground-truth boxes.
        pred_boxes: (N, 4) xyxy detections, same coordinates.
        scores: (N,) detection scores (>= 0).
        labels: (N,) the detections' queried classes, in ``[0, num_classes)``.
        num_classes: C.
        iou_thr: a detection is on an object when their box IoU is at least this.

    Returns:
        (G, C) float32: 0 where class q has no detection on the object.
    """
    iou = box_iou(gt_boxes, pred_boxes.float())  # (G, N)
    on = torch.where(iou >= iou_thr, scores.float()[None], iou.new_zeros(()))
    out = iou.new_zeros(len(gt_boxes), num_classes)
    return out.scatter_reduce_(1, labels[None].expand_as(on), on, 'amax')


def _instances(record: dict, num_classes: int) -> Tuple[Tensor, Tensor, Tensor]:
    """(boxes (N, 4), scores (N,), labels (N,)) of a DumpDetResults record, checked."""
    if not isinstance(record, dict) or 'img_id' not in record or 'pred_instances' not in record:
        raise ValueError('predictions must be the records tools/test.py --out writes (dicts '
                         f'with img_id and pred_instances), got {type(record).__name__}')
    pred = record['pred_instances']
    boxes = torch.as_tensor(pred['bboxes']).reshape(-1, 4)
    scores = torch.as_tensor(pred['scores']).reshape(-1)
    labels = torch.as_tensor(pred['labels']).reshape(-1).long()
    bad = labels[(labels < 0) | (labels >= num_classes)]
    if len(bad):
        raise ValueError(f'image {record["img_id"]}: prediction label {int(bad[0])} is '
                         f'not an index into the {num_classes} classes given: the predictions '
                         'were made with other classes (give the test dataset\'s classes)')
    return boxes, scores, labels


def collect_max_scores(predictions: Sequence[dict], coco_gt: dict, classes: Sequence[str],
                       iou_thr: float = 0.5,
                       classes_of_gt: Optional[Sequence[str]] = None
                       ) -> Tuple[Tensor, Tensor, dict]:
    """Every counted object's per-queried-class max score (see :func:`image_max_scores`).

    Args: as :func:`query_confusion`.

    Returns:
        ``(max_scores (M, C) float32, gt_labels (M,) int64, counts)``; counts:
        ``images`` (with predictions), ``images_without_predictions`` (of ``coco_gt``,
        their objects are not counted).

    Raises:
        ValueError: a record is not a prediction record, names an image twice or an image
            not in ``coco_gt``, or has a label outside ``classes``.
    """
    gt = gt_by_image(coco_gt, classes, classes_of_gt)
    rows, gt_labels, seen = [], [], set()
    for record in predictions:
        boxes, scores, labels = _instances(record, len(classes))
        img_id = record['img_id']
        if img_id not in gt:
            raise ValueError(f'image {img_id} of the predictions is not an image of the '
                             'annotation file: give the annotations of the split tested')
        if img_id in seen:
            raise ValueError(f'image {img_id} appears twice in the predictions')
        seen.add(img_id)
        gt_boxes, gt_lab = gt[img_id]
        rows.append(image_max_scores(gt_boxes, boxes, scores, labels, len(classes), iou_thr))
        gt_labels.append(gt_lab)
    if not rows:
        raise ValueError('the predictions are empty (no image records)')
    counts = dict(images=len(seen), images_without_predictions=len(gt) - len(seen))
    return torch.cat(rows), torch.cat(gt_labels), counts


def _others_max(max_scores: Tensor, keep: Tensor) -> Tensor:
    """(M,) max of ``max_scores`` (M, C) over the columns where ``keep`` (M, C); 0 if none."""
    return torch.where(keep, max_scores, max_scores.new_zeros(())).amax(1)


def attribute_kind_groups(classes: Sequence[str]) -> Optional[Tensor]:
    """(C, C) index into :data:`GROUPS` of queried class q (column) for an object of class
    k (row), or None unless every name is two words ``"<attribute> <kind>"``."""
    words = [name.split() for name in classes]
    if not words or any(len(w) != 2 for w in words):
        return None
    attr = torch.tensor([[a[0] == b[0] for b in words] for a in words])
    kind = torch.tensor([[a[1] == b[1] for b in words] for a in words])
    groups = torch.full((len(classes), len(classes)), GROUPS.index('other'))
    groups[kind] = GROUPS.index('same_kind')
    groups[attr] = GROUPS.index('same_attribute')
    groups[torch.eye(len(classes), dtype=torch.bool)] = GROUPS.index('own')
    return groups


def grouped_summary(max_scores: Tensor, gt_labels: Tensor, groups: Tensor,
                    score_thr: float = 0.3) -> dict:
    """Per group of queried classes, the objects' max score over the group's classes.

    Args:
        max_scores: (M, C) per-object max scores. gt_labels: (M,) object classes.
        groups: (C, C) of :func:`attribute_kind_groups`.
        score_thr: the score counted as a detection in ``frac_above``.

    Returns:
        ``{group: {mean_max_score, frac_above}}`` for each of :data:`GROUPS`, plus
        ``own_beats_same_attribute``: the fraction of objects whose own class scores
        strictly above every class of the same attribute and another kind.
    """
    of_object = groups[gt_labels]  # (M, C)
    best = {g: _others_max(max_scores, of_object == i) for i, g in enumerate(GROUPS)}
    out = {g: dict(mean_max_score=best[g].double().mean().item(),
                   frac_above=(best[g] > score_thr).double().mean().item()) for g in GROUPS}
    out['score_thr'] = score_thr
    out['own_beats_same_attribute'] = (
        best['own'] > best['same_attribute']).double().mean().item()
    return out


def query_confusion(predictions: Sequence[dict], coco_gt: dict, classes: Sequence[str],
                    iou_thr: float = 0.5, classes_of_gt: Optional[Sequence[str]] = None,
                    score_thr: float = 0.3) -> dict:
    """How strongly each queried class fires on the ground-truth objects of each class.

    Args:
        predictions: mmdet ``DumpDetResults`` records (``tools/test.py --mode open --out``):
            dicts with ``img_id`` and ``pred_instances`` = ``{'bboxes': (N, 4) xyxy in
            original image pixels, 'scores': (N,), 'labels': (N,) indices into classes}``.
        coco_gt: the COCO-format annotations of the tested images.
        classes: the class names of the labels (the test dataset's classes).
        iou_thr: box IoU at which a detection is on an object.
        classes_of_gt: count only the objects of these classes (e.g. the base classes);
            default every class. Crowd objects are skipped.
        score_thr: the score counted as a detection in the grouped summary.

    Returns:
        A JSON-ready dict: ``classes``; ``iou_thr``; ``objects`` {class: count};
        ``matrix`` (C x C lists, row = ground-truth class, column = queried class: the mean
        over the row's objects of the column class's max score; None rows for classes
        without objects); ``own_wins`` {class: fraction of its objects on which their own
        class scores strictly highest (None without objects)}; ``own_wins_all``;
        ``images``, ``images_without_predictions``; ``groups``: :func:`grouped_summary`
        or None unless every class name is ``"<attribute> <kind>"``.
    """
    if not classes:
        raise ValueError('no classes given: give the class names of the labels')
    max_scores, gt_labels, counts = collect_max_scores(predictions, coco_gt, classes,
                                                       iou_thr, classes_of_gt)
    num = len(classes)
    n = torch.bincount(gt_labels, minlength=num)
    sums = torch.zeros(num, num, dtype=torch.float64).index_add_(0, gt_labels,
                                                                  max_scores.double())
    rows = torch.arange(len(gt_labels))
    own = max_scores[rows, gt_labels]
    rest = max_scores.clone()
    rest[rows, gt_labels] = 0  # a class never beats itself; 0 = no detection
    wins = (own > rest.amax(1)).double()
    win_sums = torch.zeros(num, dtype=torch.float64).index_add_(0, gt_labels, wins)
    groups = attribute_kind_groups(classes)
    return dict(
        classes=list(classes), iou_thr=iou_thr,
        objects={c: int(n[k]) for k, c in enumerate(classes)},
        matrix=[(sums[k] / n[k]).tolist() if n[k] else None for k in range(num)],
        own_wins={c: (win_sums[k] / n[k]).item() if n[k] else None
                  for k, c in enumerate(classes)},
        own_wins_all=wins.mean().item() if len(wins) else None, **counts,
        groups=None if groups is None or not len(gt_labels) else grouped_summary(
            max_scores, gt_labels, groups, score_thr))


def confusion_table(result: dict) -> str:
    """A readable text table of :func:`query_confusion`'s result.

    One row per ground-truth class with objects: its count, its own class's mean max score,
    the own-wins fraction and the queried class that fires most on it besides its own; then
    the grouped summary when there is one.
    """
    classes = result['classes']
    width = max([len(c) for c in classes] + [len('ground truth')])
    lines = [f'{"ground truth":<{width}} {"n":>5} {"own":>6} {"wins":>6}  strongest other '
             f'queried class (mean max score, IoU >= {result["iou_thr"]})']
    for k, (name, row) in enumerate(zip(classes, result['matrix'])):
        if row is None:
            continue
        rival = max((q for q in range(len(classes)) if q != k), key=row.__getitem__,
                    default=None)
        other = '-' if rival is None else f'{classes[rival]} ({row[rival]:.3f})'
        lines.append(f'{name:<{width}} {result["objects"][name]:>5} {row[k]:>6.3f} '
                     f'{result["own_wins"][name]:>6.3f}  {other}')
    lines.append(f'{"all":<{width}} {sum(result["objects"].values()):>5} {"":>6} '
                 f'{result["own_wins_all"] or 0:>6.3f}')
    groups = result.get('groups')
    if groups:
        lines += ['', f'{"queried classes":<28} {"mean max score":>14} '
                  f'{"frac > " + str(groups["score_thr"]):>10}']
        lines += [f'{GROUP_TEXT[g]:<28} {groups[g]["mean_max_score"]:>14.3f} '
                  f'{groups[g]["frac_above"]:>10.3f}' for g in GROUPS]
        lines.append('own beats same attribute, other kind: '
                     f'{groups["own_beats_same_attribute"]:.3f}')
    return '\n'.join(lines)
