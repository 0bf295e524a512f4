"""Clicks and boxes to SAM masks on cached image embeddings: the annotation tool's engine.

Shape shorthand: P clicks, K candidate masks (1, or 3 + 1 for a single click), (H0, W0) the
original image, (Hi, Wi) the image after the longest-side resize to S (the model input side),
h = w = S / 16 the embedding side.

The frozen SAM parts are those of an in-context detector of the plugin (InSAM-DETR, the
training-free matcher, SAMIC all hold ``backbone`` = the SAM image encoder,
``mask_head.decoder`` = the SAM prompt decoder and the SAM ``data_preprocessor``), so the
masks a user draws come from exactly the SAM the in-context model uses. Images are read and
resized as the feature-cache builder does (:func:`load_resized`, then the model's own
preprocessor), and masks are post-processed by the model's :class:`SAMBoxPromptMaskHead`,
i.e. as ``SamPredictor.predict`` (Kirillov et al., "Segment Anything", Sec. 3 and App. A:
a single ambiguous click gets 3 candidate masks ranked by the predicted IoU).
"""
import inspect
import os.path as osp
import threading
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor

from ..datasets.feature_cache import FeatureCache
from ..structures.signature import cache_signature
from ..utils.images import load_resized, preprocess_images


class PromptError(ValueError):
    """A click or box the segmenter cannot use (outside the image, malformed, unsupported)."""


class PromptSegmenter:
    """Embed images once (disk feature cache + memory) and decode prompts on the embeddings.

    Args:
        model: an in-context detector of the plugin with ``backbone`` (SAM image encoder),
            ``mask_head`` (:class:`SAMBoxPromptMaskHead`) and ``data_preprocessor``.
        cache_root: folder of the on-disk embedding cache; the cache of this model lives in
            ``cache_root/<signature>`` (the feature-cache format of
            :mod:`mmsamantics.datasets.feature_cache`, storing only the decoder's
            embedding). None keeps embeddings in memory only.
        memory_items: embeddings kept in memory (least recently used dropped first).
    """

    def __init__(self, model, cache_root: Optional[str] = None, memory_items: int = 64) -> None:
        for part in ('backbone', 'mask_head', 'data_preprocessor'):
            if not hasattr(model, part):
                raise ValueError(f'{type(model).__name__} has no {part!r}: the annotation tool '
                                 'needs a model with a SAM image encoder (backbone) and a SAM '
                                 'mask head, e.g. configs/matcher_toy.py or '
                                 'configs/insam_detr_toy.py')
        self.model = model.eval()
        self.decoder = model.mask_head.decoder
        self.img_size = int(model.backbone.img_size)
        self.signature = cache_signature(model)
        self.points_supported = hasattr(self.decoder, 'predict_point_masks')
        # clicks and a box in one prompt (SAM's decoder; SAM 2's takes one kind at a time)
        self.points_with_box = self.points_supported and 'boxes' in inspect.signature(
            self.decoder.predict_point_masks).parameters
        self.cache = None
        if cache_root is not None:
            self.cache = FeatureCache(osp.join(cache_root, self.signature))
        self.memory_items = memory_items
        self._memory: 'OrderedDict[str, Tuple[object, dict]]' = OrderedDict()
        self._lock = threading.Lock()
        self._image_locks: Dict[str, threading.Lock] = {}

    @property
    def device(self) -> torch.device:
        return self.model.data_preprocessor.device

    # ------------------------------------------------------------------ embeddings
    def _init_cache(self, emb) -> bool:
        """Write the cache's ``meta.json`` on the first embedding; False for tuple embeddings
        (SAM 2, HQ-SAM), which stay in memory."""
        if self.cache is None or not isinstance(emb, Tensor):
            return False
        self.cache.init_meta(dict(
            signature=self.signature, img_size=self.img_size, stride=16,
            channels=[int(emb.shape[1])], with_embedding=True, dtype='float32',
            backbone=type(self.model.backbone).__name__, content='embedding'))
        return True

    @torch.no_grad()
    def _compute(self, path: str) -> Tuple[object, dict]:
        img, scale, ori = load_resized(path, self.img_size)
        x = preprocess_images(self.model.data_preprocessor, [img])
        emb = self.model.backbone(x)[-1]
        meta = dict(img_shape=tuple(img.shape[:2]), ori_shape=tuple(ori),
                    scale=np.asarray(scale, np.float32))
        if self._init_cache(emb):
            # float32: a cached embedding decodes to exactly the masks of a fresh one
            self.cache.write_feats(path, emb[0].float().cpu().numpy(), img.shape[:2], ori)
        return emb, meta

    def _read_cached(self, path: str) -> Optional[Tuple[object, dict]]:
        if self.cache is None or not osp.isfile(self.cache.feats_path(path)):
            return None
        z = self.cache.read_feats(path)
        hi, wi = (int(v) for v in z['img_shape'])
        h0, w0 = (int(v) for v in z['ori_shape'])
        emb = torch.from_numpy(z['feats'][None]).to(self.device)
        scale = np.array([wi / w0, hi / h0] * 2, np.float32)
        return emb, dict(img_shape=(hi, wi), ori_shape=(h0, w0), scale=scale)

    def is_embedded(self, path: str) -> bool:
        """Whether ``path``'s embedding is in memory or in the disk cache."""
        return path in self._memory or (self.cache is not None and
                                        osp.isfile(self.cache.feats_path(path)))

    def embedding(self, path: str) -> Tuple[object, dict]:
        """The embedding of one image (computed at most once; thread-safe per image).

        Returns:
            (embedding (1, D, h, w) or the decoder's tuple, meta with ``img_shape``
            (Hi, Wi), ``ori_shape`` (H0, W0) and ``scale`` (4,) xyxy scale factors).
        """
        with self._lock:
            if path in self._memory:
                self._memory.move_to_end(path)
                return self._memory[path]
            lock = self._image_locks.setdefault(path, threading.Lock())
        with lock:  # another thread may be encoding this image: wait for it, not redo it
            with self._lock:
                if path in self._memory:
                    return self._memory[path]
            got = self._read_cached(path) or self._compute(path)
            with self._lock:
                self._memory[path] = got
                while len(self._memory) > self.memory_items:
                    self._memory.popitem(last=False)
            return got

    # ------------------------------------------------------------------ prompts
    @staticmethod
    def check_prompts(points: Sequence[Sequence[float]], box: Optional[Sequence[float]],
                      ori_shape: Tuple[int, int]) -> Tuple[np.ndarray, np.ndarray,
                                                           Optional[np.ndarray]]:
        """Validate clicks ``[x, y, label]`` (label 1 positive, 0 negative) and an xyxy box in
        original pixels; returns (xy (P, 2), labels (P,), box (4,) or None)."""
        h0, w0 = ori_shape
        pts = np.asarray(points if points else np.zeros((0, 3)), np.float64)
        if pts.ndim != 2 or pts.shape[1] != 3 or not np.isfinite(pts).all():
            raise PromptError(f'points must be a list of [x, y, label], got {points!r}')
        if len(pts) and not set(np.unique(pts[:, 2])) <= {0.0, 1.0}:
            raise PromptError('point labels are 1 (object) or 0 (background)')
        if len(pts) and ((pts[:, :2] < 0).any() or (pts[:, 0] > w0).any()
                         or (pts[:, 1] > h0).any()):
            raise PromptError(f'a point lies outside the {w0}x{h0} image: {pts[:, :2].tolist()}')
        b = None
        if box is not None:
            b = np.asarray(box, np.float64).reshape(-1)
            if b.shape != (4,) or not np.isfinite(b).all():
                raise PromptError(f'a box is [x1, y1, x2, y2], got {box!r}')
            b = np.clip(b, 0, [w0, h0, w0, h0])
            if b[2] - b[0] < 1 or b[3] - b[1] < 1:
                raise PromptError(f'the box {np.round(b, 1).tolist()} is under 1 px (inside the '
                                  'image): drag a larger box')
        if not len(pts) and b is None:
            raise PromptError('no prompt: click on the object or drag a box around it')
        if len(pts) and not pts[:, 2].any() and b is None:
            raise PromptError('only background clicks: add a click on the object first')
        return pts[:, :2].astype(np.float32), pts[:, 2].astype(np.int64), b

    @torch.no_grad()
    def _decode(self, emb, xy: Tensor, labels: Tensor, box: Optional[Tensor]
                ) -> Tuple[Tensor, Tensor]:
        """(low-res logits (1, K, 4h, 4w), IoU (1, K)) of one prompt in model-input pixels."""
        dec = self.decoder
        if len(xy) == 1 and box is None:  # ambiguous: the single mask + SAM's 3 multimask
            if self.points_with_box:  # SAM's decoder gives all 4 in one pass
                return dec.predict_point_masks(emb, xy[None], labels[None],
                                               multimask_output=None)
            outs = [dec.predict_point_masks(emb, xy[None], labels[None], multimask_output=m)
                    for m in (False, True)]
            return torch.cat([o[0] for o in outs], 1), torch.cat([o[1] for o in outs], 1)
        if len(xy) and box is None:
            return dec.predict_point_masks(emb, xy[None], labels[None], multimask_output=False)
        if len(xy):
            if not self.points_with_box:
                raise PromptError(f'{type(dec).__name__} takes clicks or a box, not both: '
                                  'clear the prompt (Esc) and use one kind')
            return dec.predict_point_masks(emb, xy[None], labels[None], multimask_output=False,
                                           boxes=box[None])
        return dec.predict_masks(emb, box[None], multimask_output=False)

    @torch.no_grad()
    def segment(self, path: str, points: Sequence[Sequence[float]] = (),
                box: Optional[Sequence[float]] = None) -> Tuple[np.ndarray, np.ndarray]:
        """SAM's candidate masks for one prompt (clicks and/or a box) on one image.

        A single click without a box is ambiguous: SAM's 3 multimask outputs are returned
        after its single-mask output; otherwise only the single-mask output.

        Args:
            path: the image (its embedding is computed if not cached).
            points: clicks ``[x, y, label]`` in original pixels (label 1 object, 0 background).
            box: optional xyxy box in original pixels.

        Returns:
            (masks (K, H0, W0) bool, SAM's predicted IoU (K,) float32), K = 1 or 4.
        """
        emb, meta = self.embedding(path)
        xy, labels, b = self.check_prompts(points, box, meta['ori_shape'])
        if len(xy) and not self.points_supported:
            raise PromptError(f'{type(self.decoder).__name__} takes box prompts only: drag a '
                              'box around the object')
        scale = torch.as_tensor(meta['scale'], device=self.device)
        xy_t = torch.as_tensor(xy, device=self.device) * scale[:2]
        lab_t = torch.as_tensor(labels, dtype=torch.int, device=self.device)
        box_t = None if b is None else torch.as_tensor(b, dtype=torch.float32,
                                                       device=self.device) * scale
        low, iou = self._decode(emb, xy_t, lab_t, box_t)
        masks = self.model.mask_head.postprocess(low[0][:, None], meta['img_shape'],
                                                 meta['ori_shape'])
        return masks.cpu().numpy(), iou[0].float().cpu().numpy()

    def candidates(self, path: str, points: Sequence[Sequence[float]] = (),
                   box: Optional[Sequence[float]] = None) -> List[dict]:
        """:meth:`segment` as ``[{mask, iou}]``, the single-mask output first."""
        masks, ious = self.segment(path, points, box)
        return [dict(mask=m, iou=float(s)) for m, s in zip(masks, ious)]
