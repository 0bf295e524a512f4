"""t-SNE of InSAM-DETR reference features and of pooled backbone features (paper Fig. 5).

Re-implements the analysis of Espinosa et al., "There is no SAMantics!" (§5.2, Fig. 5):
reference instances are embedded (1) BEFORE the token-merge MLP (SAM's T mask tokens,
flattened), (2) AFTER it (the E-dim embedding added to the DETR queries) and (3) as frozen
backbone features mask-averaged over the instance (SAM / DINOv2 / CLIP), then projected
with t-SNE and coloured by class, base classes as circles and novel ones as crosses. A
cosine silhouette score in the ORIGINAL feature space gives each picture a number.

Shape shorthand: N instances, S model input side, T tokens, D token width, E MLP output,
C backbone channels, h x w feature map, H x W padded input.
"""
import json
import os.path as osp
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.config import Config
from torch import Tensor, nn

from mmdet.registry import MODELS
from ..utils.config_paths import load_config
from ..utils.images import decode_coco_mask, load_resized, preprocess_images, resize_mask

MIN_POINTS = 5  # t-SNE and a silhouette score mean little below this


@dataclass
class Instance:
    """One annotated instance. ``bbox`` is xyxy in original pixels; ``label`` indexes
    :attr:`InstanceSet.class_names`; ``ann`` is the raw COCO annotation (for its mask)."""
    img_path: str
    img_hw: Tuple[int, int]
    bbox: Tuple[float, float, float, float]
    label: int
    ann: dict

    @property
    def key(self) -> str:
        return f'tsne:{self.img_path}:{self.ann["id"]}'


@dataclass
class InstanceSet:
    instances: List[Instance]
    class_names: List[str]
    novel_classes: List[str] = field(default_factory=list)

    @property
    def labels(self) -> np.ndarray:
        """(N,) int labels."""
        return np.array([i.label for i in self.instances], np.int64)


def load_instances(ann_file: str, img_dir: str, per_class: int = 30,
                   min_area: float = 32 ** 2, seed: int = 0,
                   splits_file: Optional[str] = None) -> InstanceSet:
    """Up to ``per_class`` non-crowd instances of area >= ``min_area`` per class.

    Novel classes come from ``splits_file`` (``{"base": [...], "novel": [...]}``), else
    from a ``split`` field of the COCO categories (the toy world has one), else none.
    Classes with fewer than 2 instances are skipped with a warning.

    Raises:
        FileNotFoundError: missing annotation file, image folder or splits file.
        ValueError: fewer than :data:`MIN_POINTS` instances remain.
    """
    for path, what, ok in ((ann_file, 'annotation file', osp.isfile),
                           (img_dir, 'image folder', osp.isdir),
                           (splits_file, 'splits file', osp.isfile)):
        if path is not None and not ok(path):
            raise FileNotFoundError(f'{what} not found: {path!r}')
    with open(ann_file) as f:
        coco = json.load(f)
    imgs = {im['id']: im for im in coco['images']}
    cats = sorted(coco['categories'], key=lambda c: c['id'])
    if splits_file is not None:
        with open(splits_file) as f:
            novel = set(json.load(f).get('novel', []))
    else:
        novel = {c['name'] for c in cats if c.get('split') == 'novel'}
    by_cat: Dict[int, List[dict]] = {c['id']: [] for c in cats}
    for a in sorted(coco['annotations'], key=lambda a: a['id']):
        if not a.get('iscrowd', 0) and a['area'] >= min_area and a['category_id'] in by_cat:
            by_cat[a['category_id']].append(a)
    rng = np.random.default_rng(seed)
    instances, names = [], []
    for c in cats:
        anns = by_cat[c['id']]
        if len(anns) < 2:
            warnings.warn(f'class {c["name"]!r} has {len(anns)} instance(s) with area >= '
                          f'{min_area}: skipped (t-SNE needs at least 2 per class)')
            continue
        if len(anns) > per_class:
            anns = [anns[i] for i in sorted(rng.choice(len(anns), per_class, replace=False))]
        for a in anns:
            im = imgs[a['image_id']]
            x, y, w, h = a['bbox']
            instances.append(Instance(osp.join(img_dir, im['file_name']),
                                      (im['height'], im['width']),
                                      (x, y, x + w, y + h), len(names), a))
        names.append(c['name'])
    if len(instances) < MIN_POINTS:
        raise ValueError(f'only {len(instances)} instances in {ann_file!r} pass the filters '
                         f'(non-crowd, area >= {min_area}, >= 2 per class); t-SNE needs at '
                         f'least {MIN_POINTS}: lower --min-area or use more annotations')
    return InstanceSet(instances, names, [n for n in names if n in novel])


def model_input_size(model: nn.Module) -> int:
    """S, the side the model's backbone expects (``backbone.img_size`` or the pad divisor)."""
    size = getattr(getattr(model, 'backbone', None), 'img_size', None)
    if size is None:
        size = getattr(model.data_preprocessor, 'pad_size_divisor', 1)
        if size <= 1:
            raise ValueError('cannot tell the model input size: its backbone has no img_size '
                             'and its data preprocessor no pad_size_divisor')
    return int(max(size) if isinstance(size, (tuple, list)) else size)


@torch.no_grad()
def reference_features(model: nn.Module, instances: Sequence[Instance], img_size: int,
                       batch_size: int = 8) -> Tuple[Tensor, Tensor]:
    """Reference features of an InSAM-DETR before and after its token-merge MLP.

    Each instance is read as a reference is (longest side resized to ``img_size``, the
    backbone's input size; then ``model.data_preprocessor``) and encoded with its box by
    the model's own ``encode_references``: one SAM pass per image, shared by all the
    instances it holds (nothing is added to the model's reference cache).

    Returns:
        tokens (N, T'*D) flattened reference tokens (the SAM mask tokens, and the region
        tokens with ``reference_encoder='sam_tokens+regions'``), embeds (N, E)
        ``model.token_merge`` outputs.
    """
    if img_size != model.backbone.img_size:
        raise ValueError(f'img_size {img_size} differs from the backbone input size '
                         f'{model.backbone.img_size}')
    refs = [dict(img_path=i.img_path, bbox=i.bbox, key=i.key) for i in instances]
    _, tok = model.encode_references(refs, batch_size=batch_size)  # (N, T, D)
    device = next(model.token_merge.parameters()).device
    embeds = [model.token_merge(t.to(device)).float().cpu() for t in tok.split(256)]
    return tok.flatten(1).float(), torch.cat(embeds)


def instance_mask(inst: Instance, resized_hw: Tuple[int, int]) -> np.ndarray:
    """(h_r, w_r) bool mask of the instance in the resized image; its box without a mask."""
    h, w = inst.img_hw
    hr, wr = resized_hw
    seg = inst.ann.get('segmentation')
    m = None
    if seg:
        m = resize_mask(decode_coco_mask(seg, h, w), (hr, wr)).astype(bool)
    if m is None or not m.any():
        sx, sy = wr / w, hr / h
        x1, y1, x2, y2 = inst.bbox
        m = np.zeros((hr, wr), bool)
        m[int(y1 * sy):max(int(np.ceil(y2 * sy)), int(y1 * sy) + 1),
          int(x1 * sx):max(int(np.ceil(x2 * sx)), int(x1 * sx) + 1)] = True
    return m


def masked_average(feat: Tensor, mask: Tensor) -> Tensor:
    """Average of a feature map over a mask given at input resolution.

    Args:
        feat: (C, h, w) features covering the whole (H, W) padded input.
        mask: (H, W) bool/float mask; each feature cell is weighted by the fraction of its
            input pixels inside the mask (area resize), so tiny instances still count.

    Returns:
        (C,) the weighted mean.
    """
    m = mask.float().to(feat.device)
    w = F.interpolate(m[None, None], size=feat.shape[-2:], mode='area')[0, 0]
    if w.sum() <= 0:
        raise ValueError('empty instance mask')
    return (feat * w).sum((-2, -1)) / w.sum()


def pick_output(outs, index: Optional[int] = None) -> Tensor:
    """Backbone output ``index`` of a tuple (or the tensor itself): (B, C, h, w) or (B, C).

    ``index=None`` takes the last output that is a tensor: SAM 2's and SAM 3's interactive
    image encoders end their outputs with the mask decoder's embedding, a tuple of tensors
    (``(image_embed, feat_s0, feat_s1)``), which is not a feature map to pool.
    """
    if isinstance(outs, (tuple, list)):
        tensors = [o for o in outs if isinstance(o, Tensor)]
        out = outs[index] if index is not None else tensors[-1] if tensors else None
        if not isinstance(out, Tensor):
            raise ValueError(f'backbone output {index} is a {type(out).__name__} (the SAM '
                             'decoder\'s embedding of an interactive image encoder), not a '
                             'feature map: pick a feature level, or omit the index to take '
                             'the last tensor output')
    else:
        out = outs
    if out.dim() not in (2, 4):
        raise ValueError(f'backbone output {index} has shape {tuple(out.shape)}; expected '
                         '(B, C, h, w) or (B, C) (mmpretrain ViT: out_type="featmap")')
    return out


@torch.no_grad()
def backbone_features(backbone: nn.Module, preprocessor: nn.Module,
                      instances: Sequence[Instance], img_size: int,
                      output_index: Optional[int] = None,
                      batch_size: int = 8) -> Tensor:
    """(N, C) per-instance features: mask average of one backbone output.

    Each image is read once (longest side resized to ``img_size``, then ``preprocessor``),
    and the chosen output (B, C, h, w) is averaged over every instance mask of the image
    (see :func:`masked_average`); a (B, C) output (e.g. a CLS token) is taken as it is.
    """
    by_img: 'OrderedDict[str, List[int]]' = OrderedDict()
    for n, inst in enumerate(instances):
        by_img.setdefault(inst.img_path, []).append(n)
    out: List[Optional[Tensor]] = [None] * len(instances)
    paths = list(by_img)
    for s in range(0, len(paths), batch_size):
        chunk = paths[s:s + batch_size]
        imgs = [load_resized(p, img_size)[0] for p in chunk]
        inputs = preprocess_images(preprocessor, imgs)
        feats = pick_output(backbone(inputs), output_index).float()
        for b, p in enumerate(chunk):
            for n in by_img[p]:
                if feats.dim() == 2:
                    out[n] = feats[b].cpu()
                    continue
                m = torch.zeros(inputs.shape[-2:], dtype=torch.bool)
                r = instance_mask(instances[n], imgs[b].shape[:2])
                m[:r.shape[0], :r.shape[1]] = torch.from_numpy(r)
                out[n] = masked_average(feats[b], m).cpu()
    return torch.stack(out)


def build_backbone(spec: str, default_preprocessor: dict,
                   default_img_size: int) -> Tuple[nn.Module, nn.Module, int]:
    """Build any registered backbone from ``--backbone-cfg``.

    Args:
        spec: a config file with ``backbone=dict(...)`` or ``model=dict(backbone=...)`` (and
            optionally a ``data_preprocessor`` and ``img_size``), or the text of a python
            dict, e.g. ``"dict(type='mmpretrain.VisionTransformer', arch='b')"``. Types
            are looked up in mmdet's MODELS (``scope.Type`` reaches other OpenMMLab
            packages; a config's ``default_scope`` is honoured). Weights come from the
            backbone's own ``checkpoint`` or ``init_cfg``.
        default_preprocessor: preprocessor config used when the spec gives none (its
            ``pad_size_divisor`` is set to the image size).
        default_img_size: side used when neither the spec nor the backbone gives one.

    Returns:
        (backbone, data preprocessor, input side S).
    """
    if osp.isfile(spec):
        cfg = load_config(spec)
    elif spec.endswith('.py'):
        raise FileNotFoundError(f'backbone config not found: {spec!r}')
    else:
        try:
            cfg = Config.fromstring(f'backbone = {spec}\n', '.py')
        except Exception as e:
            raise ValueError(f'--backbone-cfg {spec!r} is neither a config file nor a '
                             f'python dict: {e}') from e
    model = cfg.get('model') or {}
    bb_cfg = cfg.get('backbone') or model.get('backbone')
    if not isinstance(bb_cfg, dict) or 'type' not in bb_cfg:
        raise ValueError(f'{spec!r} defines no backbone=dict(type=...)')
    pre_cfg = cfg.get('data_preprocessor') or model.get('data_preprocessor')
    scope = cfg.get('default_scope')
    for c in (bb_cfg, pre_cfg):
        if scope and isinstance(c, dict):
            c.setdefault('_scope_', scope)
    backbone = MODELS.build(bb_cfg)
    if getattr(backbone, 'init_cfg', None):
        backbone.init_weights()
    size = cfg.get('img_size') or getattr(backbone, 'img_size', None) or default_img_size
    size = int(max(size) if isinstance(size, (tuple, list)) else size)
    if pre_cfg is None:
        pre_cfg = dict(default_preprocessor, pad_size_divisor=size)
    backbone.eval()  # not chained: some backbones' train() returns None
    return backbone, MODELS.build(pre_cfg), size


def run_tsne(features: np.ndarray, seed: int = 0, perplexity: float = 30.0,
             metric: str = 'cosine') -> np.ndarray:
    """(N, F) features -> (N, 2) t-SNE points.

    The perplexity is clipped to (N - 1) / 3, below N, so that the 3 x perplexity neighbours
    t-SNE looks at exist. The metric defaults to cosine, the silhouette's, so picture and
    number agree. Exact gradients up to 1000 points (Barnes-Hut is slower there), then
    Barnes-Hut.
    """
    from sklearn.manifold import TSNE
    x = np.asarray(features, np.float64)
    if len(x) < MIN_POINTS:
        raise ValueError(f't-SNE needs at least {MIN_POINTS} points, got {len(x)}')
    perplexity = float(min(perplexity, (len(x) - 1) / 3))
    return TSNE(n_components=2, perplexity=perplexity, metric=metric, init='pca',
                method='exact' if len(x) <= 1000 else 'barnes_hut',
                random_state=seed).fit_transform(x)


def _silhouette(x: np.ndarray, labels: np.ndarray) -> Optional[float]:
    from sklearn.metrics import silhouette_score
    k = len(np.unique(labels))
    if not 2 <= k <= len(x) - 1:
        return None
    return float(silhouette_score(x, labels, metric='cosine'))


def silhouette_report(features: np.ndarray, labels: np.ndarray, class_names: Sequence[str],
                      novel_classes: Sequence[str] = ()) -> Dict[str, object]:
    """Cosine silhouette scores of (N, F) features grouped by class, in [-1, 1].

    Returns:
        ``all`` (every class), ``base`` / ``novel`` (only the points of those classes,
        scored among themselves; None with fewer than 2 such classes) and ``per_class``
        (mean per-point silhouette of each class within all classes).
    """
    from sklearn.metrics import silhouette_samples
    x, labels = np.asarray(features, np.float64), np.asarray(labels)
    is_novel = np.isin(labels, [i for i, n in enumerate(class_names) if n in novel_classes])
    rep = dict(all=_silhouette(x, labels), base=_silhouette(x[~is_novel], labels[~is_novel]),
               novel=_silhouette(x[is_novel], labels[is_novel]), per_class={})
    if rep['all'] is not None:
        s = silhouette_samples(x, labels, metric='cosine')
        rep['per_class'] = {class_names[c]: float(s[labels == c].mean())
                            for c in np.unique(labels)}
    return rep


def nearest_neighbour_accuracy(features: np.ndarray, labels: np.ndarray) -> Optional[float]:
    """Leave-one-out 1-nearest-neighbour accuracy (cosine) of (N, F) features: how often
    a point's closest other point has its class. Unlike the silhouette it asks only that
    each class be locally consistent, which is what matching one reference needs."""
    x = np.asarray(features, np.float64)
    if len(x) < 2:
        return None
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    sim = x @ x.T
    np.fill_diagonal(sim, -np.inf)
    return float((labels[sim.argmax(1)] == labels).mean())


def plot_embedding(points: np.ndarray, labels: np.ndarray, class_names: Sequence[str],
                   novel_classes: Sequence[str], title: str, out_png: str) -> None:
    """Scatter (N, 2) points, one colour per class; base: circles, novel: crosses."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib import colormaps
    k = len(class_names)
    if k <= 20:  # tab20's strong tones first, then their light pairs
        tab = colormaps['tab10' if k <= 10 else 'tab20']
        tones = list(range(0, tab.N, 2)) + list(range(1, tab.N, 2)) if k > 10 else range(10)
        colours = [tab(i) for i in tones]
    else:
        colours = [colormaps['gist_ncar'](c / k) for c in range(k)]
    fig = Figure(figsize=(8, 6))
    FigureCanvasAgg(fig)  # headless: no pyplot, no global backend switch
    ax = fig.add_subplot()
    order = sorted(range(k), key=lambda c: (class_names[c] in novel_classes, c))
    for c in order:
        sel = labels == c
        if not sel.any():
            continue
        novel = class_names[c] in novel_classes
        ax.scatter(points[sel, 0], points[sel, 1], s=28 if novel else 18,
                   marker='x' if novel else 'o', color=colours[c], linewidths=1.2,
                   label=class_names[c] + (' (novel)' if novel else ''))
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(loc='upper left', bbox_to_anchor=(1.01, 1.0), fontsize=7, frameon=False,
              ncol=1 + k // 30)
    fig.savefig(out_png, dpi=150, bbox_inches='tight')


def analyse(features: Tensor, data: InstanceSet, name: str, out_png: str, seed: int = 0,
            perplexity: float = 30.0) -> Dict[str, object]:
    """t-SNE + silhouette + PNG for one feature kind; returns its summary entry."""
    x = features.float().numpy() if isinstance(features, Tensor) else np.asarray(features)
    labels = data.labels
    sil = silhouette_report(x, labels, data.class_names, data.novel_classes)
    points = run_tsne(x, seed=seed, perplexity=perplexity)
    fmt = lambda v: 'n/a' if v is None else f'{v:.3f}'  # noqa: E731
    title = (f't-SNE: {name} (N={len(x)}, dim {x.shape[1]})\ncosine silhouette: '
             f'all {fmt(sil["all"])}, base {fmt(sil["base"])}, novel {fmt(sil["novel"])}')
    plot_embedding(points, labels, data.class_names, data.novel_classes, title, out_png)
    return dict(png=osp.basename(out_png), num_points=len(x), dim=int(x.shape[1]),
                silhouette=sil, knn1=nearest_neighbour_accuracy(x, labels))
