"""Training-free in-context detector: SAM grid proposals scored by DINOv2 cosine matching.

"There is no SAMantics" (§6, Table 4) injects semantics into SAM without training: SAM
proposes class-agnostic masks from a point grid, DINOv2 describes each mask, and a mask is
labelled with the reference class whose prototype it is most similar to (after PerSAM,
Matcher and the InsDet baseline). Here it is one registered mmdet detector: multi-class,
multi-instance, run by ``tools/test.py`` with COCO box/mask AP and AR.

Speed: every target is embedded ONCE by SAM and ONCE by DINOv2 (its valid region only, no
token spent on padding); a proposal's feature is the masked average of the dense DINOv2 map
inside its mask (``feature_mode='dense'``), a matrix product for all proposals.
``feature_mode='crop'`` encodes one DINOv2 crop per proposal (the InsDet way) for
comparison (``tools/analysis/benchmark_matcher.py``).
Reference features are computed once per reference key and kept (in memory, or in a
reference bank written by ``tools/misc/encode_references.py``).

Shape shorthand: B targets, S SAM input side, L = S / 4 the low-res mask side, G DINOv2 input
side, g = G / 14 its token grid, C DINOv2 width, N proposals, R references, K classes.
"""
import hashlib
import json
import math
import time
from contextlib import contextmanager
from typing import Dict, Iterator, List, Optional, Tuple

import torch
import torch.nn.functional as F
from mmengine.logging import print_log
from mmengine.structures import InstanceData
from torch import Tensor
from torchvision.ops import roi_align

from mmdet.models.detectors.base import BaseDetector
from mmdet.registry import MODELS, TASK_UTILS
from mmdet.structures import SampleList
from ...cache.reference_bank import load_reference_bank
from ...cache.signature import weights_fingerprint
from ..matching import (class_prototypes, cosine_scores, grid_weights, mask_nms,
                        masked_average, masks_to_boxes)

FEATURE_MODES = ('dense', 'crop')


@MODELS.register_module()
class SAMDINOv2Matcher(BaseDetector):
    """SAM point-grid proposals + DINOv2 prototype matching (no trainable weights).

    Args:
        backbone: frozen SAM image encoder (:class:`SAMImageEncoder`); only its neck
            embedding is used, so ``out_indices=()`` skips the block outputs.
        mask_head: :class:`SAMBoxPromptMaskHead`; its SAM decoder makes the proposals and
            its ``postprocess`` the final full-resolution masks.
        feature_extractor: frozen :class:`DINOv2Encoder`.
        proposal_generator: :class:`SAMGridProposals` config (points per side, filters).
        feature_mode: ``'dense'`` (one DINOv2 pass per image, masked pooling) or
            ``'crop'`` (one DINOv2 pass per proposal box crop, masked pooling inside it).
        crop_size: side of the crops in ``'crop'`` mode (multiple of 14).
        crop_batch_size: crops per DINOv2 call in ``'crop'`` mode.
        reference_bank: reference bank file (``tools/misc/encode_references.py``) whose
            per-reference features replace encoding the reference images.
        test_cfg: ``score_thr`` (min cosine, default -1 = keep all), ``nms_thr`` (class-wise
            mask-NMS IoU, 0.5), ``max_per_img`` (100), ``score_mode`` (``'cosine'``, the
            paper's; or ``'cosine_x_iou'``: times SAM's predicted IoU).
        data_preprocessor: :class:`InContextDataPreprocessor` (SAM's normalisation, which
            is also DINOv2's).
    """

    def __init__(self,
                 backbone: dict,
                 mask_head: dict,
                 feature_extractor: dict,
                 proposal_generator: dict,
                 feature_mode: str = 'dense',
                 crop_size: int = 224,
                 crop_batch_size: int = 32,
                 reference_bank: Optional[str] = None,
                 test_cfg: Optional[dict] = None,
                 train_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if feature_mode not in FEATURE_MODES:
            raise ValueError(f'feature_mode must be one of {FEATURE_MODES}, got {feature_mode!r}')
        if crop_size % 14:
            raise ValueError(f'crop_size must be a multiple of 14, got {crop_size}')
        self.backbone = MODELS.build(backbone)
        self.mask_head = MODELS.build(mask_head)
        self.feature_extractor = MODELS.build(feature_extractor)
        self.proposal_generator = TASK_UTILS.build(proposal_generator)
        self.feature_mode = feature_mode
        self.crop_size = crop_size
        self.crop_batch_size = crop_batch_size
        self.reference_bank = reference_bank
        self.test_cfg = dict(score_thr=-1.0, nms_thr=0.5, max_per_img=100, score_mode='cosine')
        self.test_cfg.update(test_cfg or {})
        if self.test_cfg['score_mode'] not in ('cosine', 'cosine_x_iou'):
            raise ValueError("test_cfg.score_mode must be 'cosine' or 'cosine_x_iou'")
        self._ref_cache: Dict[str, Dict[str, Tensor]] = {}  # feature mode -> key -> (C,)
        self._lent: Dict[str, Tensor] = {}
        self._bank: Optional[Dict[str, Tensor]] = None
        self._bank_signature: Optional[str] = None  # the model signature it was checked for
        self._signature: Optional[str] = None  # DINOv2 weights' fingerprint
        self._warned_box_refs = False
        # seconds per stage, accumulated over predict calls (benchmark_matcher.py reads it)
        self.stage_times: Dict[str, float] = {}
        self._register_load_state_dict_pre_hook(lambda *a, **k: self._invalidate_caches())

    # ------------------------------------------------------------------ caches
    def _invalidate_caches(self) -> None:
        self._ref_cache.clear()
        self._bank = None
        self._signature = None

    @property
    def cache_signature(self) -> str:
        """Fingerprint of what reference features depend on: DINOv2 weights and input size,
        the feature mode and the preprocessing (recomputed when the mode is switched;
        only the weights' fingerprint, the costly part, is kept until weights change)."""
        if self._signature is None:
            self._signature = weights_fingerprint(self.feature_extractor)
        dp = self.data_preprocessor
        parts = dict(kind='SAMDINOv2Matcher', mode=self.feature_mode, dense_region='valid',
                     crop=self.crop_size if self.feature_mode == 'crop' else None,
                     dinov2=self._signature, dinov2_size=self.feature_extractor.img_size,
                     sam_size=self.backbone.img_size,
                     mean=[round(float(v), 6) for v in dp.mean.flatten()],
                     std=[round(float(v), 6) for v in dp.std.flatten()],
                     bgr_to_rgb=bool(dp._channel_conversion))
        return hashlib.sha1(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]

    @contextmanager
    def using_reference_features(self, feats: Dict[str, Tensor]) -> Iterator[None]:
        """Within the block, references whose key is in ``feats`` use that (C,) feature."""
        saved, self._lent = self._lent, feats
        try:
            yield
        finally:
            self._lent = saved

    def _bank_features(self) -> Dict[str, Tensor]:
        if self.reference_bank is None:
            return {}
        signature = self.cache_signature
        if self._bank is None or self._bank_signature != signature:
            bank = load_reference_bank(self.reference_bank)
            if bank['signature'] != signature:
                raise ValueError(
                    f'reference bank {self.reference_bank!r} was made with another DINOv2, '
                    f'feature mode or preprocessing (signature {bank["signature"]}, this model '
                    f'{signature}). Rebuild it with tools/misc/encode_references.py '
                    'and this config.')
            self._bank = {k: t.reshape(-1).float() for k, t in zip(bank['keys'], bank['tokens'])}
            self._bank_signature = signature
        return self._bank

    @contextmanager
    def _timed(self, stage: str, like: Tensor) -> Iterator[None]:
        if like.is_cuda:
            torch.cuda.synchronize(like.device)
        t = time.perf_counter()
        yield
        if like.is_cuda:
            torch.cuda.synchronize(like.device)
        self.stage_times[stage] = self.stage_times.get(stage, 0.0) + time.perf_counter() - t

    # ------------------------------------------------------------------ features
    def dense_map(self, image: Tensor, valid: Tuple[int, int]) -> Tensor:
        """DINOv2 tokens of the VALID region of one padded image.

        Args:
            image: (3, S, S) preprocessed image, padded bottom/right.
            valid: (H_v, W_v) its unpadded size.

        Returns:
            (C, g_h, g_w) token map of the valid region, whose longest side is resized to
            DINOv2's ``img_size`` (no token is spent on padding: a 4:3 image costs 25% fewer
            tokens than its padded square, and no region feature mixes padding in).
        """
        h, w = int(valid[0]), int(valid[1])
        enc = self.feature_extractor
        return enc(image[None, :, :h, :w], enc.input_size(h, w))[0]

    @staticmethod
    def valid_masks(masks: Tensor, valid: Tuple[int, int], side: int) -> Tensor:
        """(N, M, M) masks on the padded S x S canvas -> their (N, m_h, m_w) valid part."""
        scale = masks.shape[-1] / side
        return masks[:, :max(1, math.ceil(valid[0] * scale)), :max(1, math.ceil(valid[1] * scale))]

    def region_features(self, images: Tensor, masks: Tensor, valid: Tuple[int, int],
                        dense: Optional[Tensor] = None) -> Tensor:
        """DINOv2 feature of each region of ONE image.

        Args:
            images: (1, 3, S, S) the preprocessed image.
            masks: (N, M, M) bool region masks on the padded S x S canvas at any
                resolution M (SAM's low-res L, or S).
            valid: (H_v, W_v) the image's unpadded size in S pixels.
            dense: (C, g_h, g_w) its :meth:`dense_map`, if already computed (dense mode).

        Returns:
            (N, C) masked averages of DINOv2 tokens.
        """
        if self.feature_mode == 'dense':
            if dense is None:
                dense = self.dense_map(images[0], valid)
            m = self.valid_masks(masks, valid, images.shape[-1])
            return masked_average(dense, grid_weights(m, dense.shape[-2:]))
        return self._crop_features(images, masks)

    def _crop_features(self, images: Tensor, masks: Tensor) -> Tensor:
        """Crop-and-encode: each region's box crop resized to ``crop_size``, one DINOv2
        pass per crop (batched), masked average of the crop's tokens inside the mask."""
        if len(masks) == 0:
            return images.new_zeros(0, self.feature_extractor.embed_dim)
        g = self.crop_size // 14
        boxes = masks_to_boxes(masks)  # (N, 4) in mask pixels
        idx = torch.arange(len(boxes), device=boxes.device, dtype=boxes.dtype)[:, None]
        # the mask inside its own box, on the crop's token grid: (N, g, g)
        weights = roi_align(masks[:, None].float(), torch.cat([idx, boxes], 1), g,
                            aligned=True)[:, 0]
        rois = torch.cat([torch.zeros_like(idx), boxes * (images.shape[-1] / masks.shape[-1])], 1)
        feats = []
        for chunk, w in zip(rois.split(self.crop_batch_size), weights.split(self.crop_batch_size)):
            crops = roi_align(images, chunk, self.crop_size, aligned=True)  # (n, 3, G, G)
            tok = self.feature_extractor(crops, (self.crop_size, self.crop_size)).flatten(2)
            w = w.flatten(1).to(tok.dtype)
            feats.append(torch.einsum('ncp,np->nc', tok, w) / w.sum(1, keepdim=True).clamp(min=1e-6))
        return torch.cat(feats)

    def _encode_references(self, images: Tensor, masks: Tensor,
                           shapes: Optional[List[Tuple[int, int]]] = None) -> Tensor:
        """(R, 3, S, S) reference images, (R, S, S) bool masks and their (R) valid
        (h, w) sizes (default: the whole canvas) -> (R, C) features."""
        side = images.shape[-1]
        shapes = shapes or [(side, side)] * len(images)
        if self.feature_mode == 'crop':
            return torch.cat([self._crop_features(im[None], m[None])
                              for im, m in zip(images, masks)])
        return torch.cat([self.region_features(im[None], m[None], hw)
                          for im, m, hw in zip(images, masks, shapes)])

    def _reference_masks(self, ds) -> Tensor:
        """(R, S, S) bool masks of a sample's references; boxes where a mask is missing."""
        boxes = ds.ref_instances.bboxes
        side = self.backbone.img_size
        masks = ds.get('ref_masks', None)
        if masks is None:
            if not self._warned_box_refs:
                print_log('the pipeline gives no reference masks (LoadInContextReferences('
                          'with_mask=True)): reference boxes are pooled instead',
                          logger='current', level=30)
                self._warned_box_refs = True
            masks = boxes.new_zeros(len(boxes), side, side, dtype=torch.bool)
        masks = masks.clone()
        empty = ~masks.flatten(1).any(1)
        for j in empty.nonzero()[:, 0].tolist():  # no (or an empty) mask: fill its box
            x1, y1, x2, y2 = boxes[j].round().long().tolist()
            masks[j, max(y1, 0):max(y2, y1 + 1), max(x1, 0):max(x2, x1 + 1)] = True
        return masks

    def reference_features(self, batch_data_samples: SampleList
                           ) -> List[Tuple[Tensor, Tensor]]:
        """Per sample: (labels (R,), features (R, C)) of its references.

        A reference key is encoded once: features come from tokens lent by the caller,
        the reference bank, or the in-memory cache, and only the rest is computed (all
        missing references of the batch in one pass).
        """
        # the in-memory cache is per feature mode (dense and crop features differ)
        cache = self._ref_cache.setdefault(self.feature_mode, {})
        known = {**self._bank_features(), **cache, **self._lent}
        todo: Dict[str, Tuple[Tensor, Tensor]] = {}
        for ds in batch_data_samples:
            keys = ds.metainfo.get('ref_keys', [])
            if 'ref_instances' not in ds or not len(keys):
                raise ValueError(
                    f'target {ds.metainfo.get("img_path")} has no references: every queried '
                    'class needs at least one reference (check the dataset mode and that each '
                    'class of metainfo.classes has a reference).')
            missing = [j for j, k in enumerate(keys) if k not in known and k not in todo]
            if not missing:
                continue
            imgs = ds.get('ref_inputs', None)
            if imgs is None:
                raise ValueError(f'references {[keys[j] for j in missing][:5]} are neither in '
                                 f'the reference bank {self.reference_bank!r} nor loaded as '
                                 'images: rebuild the bank for this reference set, or drop '
                                 '--ref-bank')
            masks = self._reference_masks(ds)
            side = imgs.shape[-1]
            shapes = ds.metainfo.get('ref_img_shapes') or [(side, side)] * len(keys)
            for j in missing:
                todo[keys[j]] = (imgs[j], masks[j], tuple(shapes[j]))
        if todo:
            feats = self._encode_references(torch.stack([v[0] for v in todo.values()]),
                                            torch.stack([v[1] for v in todo.values()]),
                                            [v[2] for v in todo.values()])
            for k, f in zip(todo, feats):
                cache[k] = f
                known[k] = f
        device = self.data_preprocessor.device
        return [(ds.ref_instances.labels.to(device),
                 torch.stack([known[k].to(device) for k in ds.metainfo['ref_keys']]))
                for ds in batch_data_samples]

    # ------------------------------------------------------------------ detection
    def match(self, feats: Tensor, iou_scores: Tensor, masks: Tensor, ref_labels: Tensor,
              ref_feats: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """Label proposals by their most similar class prototype, de-duplicate, keep top-k.

        Args:
            feats: (N, C) proposal features. iou_scores: (N,) SAM's predicted IoU.
            masks: (N, L, L) proposal masks (for the class-wise mask NMS).
            ref_labels: (R,) reference classes. ref_feats: (R, C) reference features.

        Returns:
            (keep (N',) proposal indices, scores (N',), labels (N',)) by decreasing score.
        """
        classes, protos = class_prototypes(ref_feats, ref_labels)
        sims = cosine_scores(feats, protos)  # (N, K)
        scores, best = sims.max(1)
        labels = classes[best]
        if self.test_cfg['score_mode'] == 'cosine_x_iou':
            scores = scores * iou_scores.clamp(0, 1)
        idx = (scores > self.test_cfg['score_thr']).nonzero()[:, 0]
        keep = idx[mask_nms(masks[idx], scores[idx], self.test_cfg['nms_thr'], labels[idx])]
        keep = keep[:self.test_cfg['max_per_img']]
        return keep, scores[keep], labels[keep]

    def predict(self, batch_inputs: Tensor, batch_data_samples: SampleList,
                rescale: bool = True) -> SampleList:
        """Boxes and masks of every queried class (label = reference class) per target."""
        with self._timed('sam_encoder', batch_inputs):
            embedding = self.backbone(batch_inputs)[-1]
        with self._timed('references', batch_inputs):
            refs = self.reference_features(batch_data_samples)
        results = []
        for i, ds in enumerate(batch_data_samples):
            meta = ds.metainfo
            ori = tuple(meta['ori_shape'][:2]) if rescale else tuple(meta['img_shape'][:2])
            with self._timed('proposals', batch_inputs):
                props = self.proposal_generator(self.mask_head.decoder, embedding[i:i + 1],
                                                tuple(meta['img_shape'][:2]))
            with self._timed('features', batch_inputs):
                feats = self.region_features(batch_inputs[i:i + 1], props.masks,
                                             tuple(meta['img_shape'][:2]))
            with self._timed('matching', batch_inputs):
                keep, scores, labels = self.match(feats, props.iou_scores, props.masks, *refs[i])
            with self._timed('masks', batch_inputs):
                masks = self.mask_head.postprocess(props.logits[keep][:, None],
                                                   tuple(meta['img_shape'][:2]), ori)
                res = InstanceData(bboxes=masks_to_boxes(masks), scores=scores, labels=labels,
                                   masks=masks)
            results.append(res)
        return self.add_pred_to_datasample(batch_data_samples, results)

    def loss(self, batch_inputs: Tensor, batch_data_samples: SampleList) -> dict:
        raise RuntimeError('SAMDINOv2Matcher is training-free (frozen SAM and DINOv2, no '
                           'trainable weights): evaluate it with tools/test.py CONFIG (no '
                           'checkpoint), its configs set train_dataloader=None')

    def extract_feat(self, batch_inputs: Tensor) -> Tensor:
        """(B, D, h, w) SAM embedding of the targets."""
        return self.backbone(batch_inputs)[-1]

    def _forward(self, batch_inputs: Tensor, batch_data_samples: SampleList = None
                 ) -> Tuple[Tensor, Tensor]:
        """(SAM embedding (B, D, h, w), DINOv2 map of the padded inputs (B, C, g, g)) for
        ``mode='tensor'``."""
        return self.extract_feat(batch_inputs), self.feature_extractor(batch_inputs)

    # ------------------------------------------------------------------ reference banks
    @torch.no_grad()
    def encode_reference_list(self, refs: List[dict], batch_size: int = 4
                              ) -> Tuple[List[str], Tensor]:
        """Features of dataset references (``img_path``, ``bbox``, ``segmentation``,
        ``img_hw``, ``key``) for a reference bank: (keys (R,), features (R, 1, C))."""
        from ...cache.builder import preprocess
        from ...datasets.transforms import LoadInContextReferences
        self.eval()
        side = self.backbone.img_size
        load = LoadInContextReferences(scale=(side, side), with_mask=True)
        feats = []
        for s in range(0, len(refs), batch_size):
            res = load.transform(dict(references=refs[s:s + batch_size]))
            images = preprocess(self, res['ref_imgs'])
            masks = torch.zeros(len(images), side, side, dtype=torch.bool, device=images.device)
            for j, m in enumerate(res['ref_masks']):
                masks[j, :m.shape[0], :m.shape[1]] = torch.from_numpy(m).bool()
            shapes = [tuple(im.shape[:2]) for im in res['ref_imgs']]
            feats.append(self._encode_references(images, masks, shapes).cpu())
        feats = torch.cat(feats) if feats else torch.zeros(0, self.feature_extractor.embed_dim)
        return [r['key'] for r in refs], feats[:, None]

