"""SAM 3 as a training-free in-context detector: exemplar boxes or class names as prompts.

SAM 3 (Carion et al., "SAM 3: Segment Anything with Concepts", 2025) detects and segments
every instance of a concept given by a short noun phrase and/or *exemplar boxes* drawn in the
image being searched (§2, "promptable concept segmentation"). Two prompt modes here:

- ``prompt='exemplar'``: the in-context task. A query class's k references (from other
  images) are cropped and pasted in a strip right of the target (the *exemplar canvas*,
  layout in :mod:`mmsamantics.models.sam3.exemplar_canvas`); their boxes are SAM 3's positive
  exemplar prompts, with the text "visual" (what ``sam3``'s own processor sends when only
  boxes are given). Detections whose centre is in the target region are kept and mapped back
  (the target sits unscaled at the canvas' top-left); those on the references are dropped.
- ``prompt='text'``: the class name is the text prompt (the open-vocabulary reference
  point); references only say which classes are queried (oracle / open modes).

Queried classes, k-shot reference sets, oracle / open modes, the metric and ``tools/test.py``
are the other in-context detectors'. The exemplars are pixels re-encoded with each target,
so no reference feature outlives a target; a reference bank (``--ref-bank``,
``tools/misc/encode_references.py``) holds each reference's exemplar crop instead (uint8
pixels and its box, :mod:`mmsamantics.models.sam3.exemplar_bank`), so that an evaluation
with a bank reads no reference image and gives the detections it gives without one.

Requirements: ``sam3==0.1.4`` (installed with ``--no-deps``); its package import loads the
video predictor (``psutil``) and its tokenizer needs ``ftfy`` and ``regex``. The tokenizer
vocabulary ``bpe_simple_vocab_16e6.txt.gz`` is not in the wheel: ``bpe_path`` points to a
local copy. CPU: the ``tiny`` preset runs on CPU; the ``full`` preset does not — ``sam3``
builds its decoder's coordinate cache and its position-encoding cache on ``"cuda"`` and its
box RoI pooling pins host memory, so the released model needs a CUDA GPU.

Shape shorthand: B targets, S input side, R references, K queried classes, Q SAM 3 queries,
(h_t, w_t) a target's valid size, (h_c, w_c) its canvas, M = SAM 3's model resolution.
"""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmengine.structures import InstanceData
from torch import Tensor

from mmdet.registry import MODELS
from mmdet.structures import SampleList
from ...datasets.class_splits import split_classes
from ..sam3 import (SAM3_PRESETS, build_sam3_image, canvas_to_normalized,
                    check_reference_boxes, decode_exemplar_crop, encode_exemplar_crops,
                    load_sam3_checkpoint, normalized_to_target, paste_crops, reference_crop)
from .in_context_detector import InContextDetector

PROMPTS = ('exemplar', 'text')
DEFAULT_TEST_CFG = dict(
    score_thr=0.0,       # keep detections with score (query x presence) above this
    max_per_class=100,   # SAM 3 queries kept per queried class (by score)
    max_per_img=100,
    strip_ratio=0.5,     # reference strip width / target width on the canvas
    context=0.25)        # crop = reference box grown by this fraction on each side


@MODELS.register_module()
class SAM3ExemplarDetector(InContextDetector):
    """Frozen SAM 3 image model prompted per queried class (nothing trained).

    Args:
        preset: a key of ``SAM3_PRESETS`` (``'full'``: the released model; ``'tiny'``:
            random weights for tests).
        bpe_path: local path of SAM 3's tokenizer vocabulary.
        checkpoint: local ``sam3.pt`` (loaded strictly); None keeps random weights.
        prompt: ``'exemplar'`` (reference boxes on a canvas) or ``'text'`` (class names).
        class_split: the dataset's class split (``'coco'``, ``'coco-novel'``, ``'toy'``...):
            the names the text mode sends, in the dataset's label order.
        ref_scale: longest side S the test pipeline resizes references to
            (``LoadInContextReferences(scale=(S, S))``); default SAM 3's resolution M, as
            the configs resize. Crops of a bank are made at this side.
        test_cfg: overrides of ``DEFAULT_TEST_CFG``.
        data_preprocessor: :class:`InContextDataPreprocessor` with SAM 3's normalisation
            (mean = std = 127.5, RGB).
        reference_store: ``bank``: a bank of the references' exemplar crops
            (``tools/misc/encode_references.py``), refused unless made with this
            ``test_cfg.context`` and ``ref_scale``. Nothing is cached in memory (with
            reference images loaded, crops are cut from them).
    """

    reference_kind = 'sam3_exemplar'
    reference_made_with = 'exemplar-crop settings (test_cfg.context, ref_scale)'
    default_reference_store = dict(InContextDetector.default_reference_store, cache_size=0)

    def __init__(self,
                 bpe_path: str,
                 preset: str = 'full',
                 checkpoint: Optional[str] = None,
                 prompt: str = 'exemplar',
                 class_split: Optional[str] = None,
                 ref_scale: Optional[int] = None,
                 test_cfg: Optional[dict] = None,
                 train_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None,
                 reference_store: Optional[dict] = None,
                 **legacy) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg,
                         reference_store=reference_store, **legacy)
        if prompt not in PROMPTS:
            raise ValueError(f'prompt must be one of {PROMPTS}, got {prompt!r}')
        if prompt == 'text' and class_split is None:
            raise ValueError("prompt='text' needs class_split (the dataset's, e.g. 'coco'): "
                             'the class names are the text prompts')
        unknown = set(test_cfg or {}) - set(DEFAULT_TEST_CFG)
        if unknown:
            raise ValueError(f'unknown SAM3ExemplarDetector test_cfg keys {sorted(unknown)}; '
                             f'known: {sorted(DEFAULT_TEST_CFG)}')
        self.test_cfg = dict(DEFAULT_TEST_CFG, **(test_cfg or {}))
        self.prompt = prompt
        self.class_names = split_classes(class_split) if class_split else None
        self.sam3 = build_sam3_image(preset, bpe_path)
        self.resolution = SAM3_PRESETS[preset]['resolution']  # M
        self.ref_scale = int(ref_scale or self.resolution)
        if checkpoint is not None:
            load_sam3_checkpoint(self.sam3, checkpoint)
        self.sam3.requires_grad_(False)
        self.sam3.eval()

    def train(self, mode: bool = True) -> 'SAM3ExemplarDetector':
        """Frozen: SAM 3 stays in eval mode (dropout off) whatever ``mode`` is."""
        super().train(mode)
        self.sam3.eval()
        return self

    # ------------------------------------------------------------------ references
    def signature_parts(self) -> dict:
        """Fingerprint of what an exemplar crop depends on: the crop context and the side
        references are resized to. Not SAM 3's weights (crops are pixels: a bank serves
        every checkpoint), nor the normalisation (applied when a crop is used), nor
        ``strip_ratio`` (it scales crops when they are pasted)."""
        return dict(kind='SAM3ExemplarDetector', features='exemplar crops',
                    context=round(float(self.test_cfg['context']), 6), ref_scale=self.ref_scale)

    def encode_references(self, refs: Sequence[dict], batch_size: int = 4,
                          scale: Optional[int] = None
                          ) -> Tuple[List[str], Tuple[Tensor, Tensor]]:
        """Exemplar crops of references for a bank (``tools/misc/encode_references.py``).

        Args:
            refs: dicts with ``key``, ``bbox`` (xyxy, original pixels) and ``img``
                ((H0, W0, 3) BGR uint8) or ``img_path``.
            batch_size: reference images held in memory at a time.
            scale: longest side of the resized references (default ``ref_scale``; a bank
                is refused unless made at ``ref_scale``).

        Returns:
            (keys (R,), (pixels (R, 3, H_k, W_k) uint8, geometry (R, 6))), see
            :func:`~mmsamantics.models.sam3.encode_exemplar_crops`.
        """
        return encode_exemplar_crops(refs, scale or self.ref_scale, self.test_cfg['context'],
                                     batch_size)

    def _stored_crops(self, keys: Sequence[str], device: torch.device
                      ) -> Tuple[List[Tensor], List[Tensor]]:
        """Normalised crops (3, h_k, w_k) and boxes (4,) of ``keys`` from the reference
        store (lent, else the bank), one key at a time: crops differ in size."""
        crops, boxes = [], []
        for k in keys:
            try:
                pixels, geometry = self.reference_store.get([k], device=device)
            except KeyError:
                raise ValueError(f'reference {k!r} is neither in the reference bank '
                                 f'{self.reference_bank!r} nor loaded as an image: rebuild '
                                 'the bank for this reference set, or drop --ref-bank'
                                 ) from None
            crop, box = decode_exemplar_crop(pixels[0], geometry[0], self.data_preprocessor)
            crops.append(crop)
            boxes.append(box)
        return crops, boxes

    # ------------------------------------------------------------------ SAM 3 calls
    def _ground(self, canvas: Tensor, text: str, exemplars: Tensor
                ) -> Tuple[Tensor, Tensor, Tensor]:
        """One SAM 3 grounding pass on one canvas.

        Args:
            canvas: (3, h_c, w_c) normalised. text: the text prompt.
            exemplars: (k, 4) xyxy positive exemplar boxes in canvas pixels (k may be 0).

        Returns:
            (scores (Q,), boxes (Q, 4) normalised cxcywh, mask logits (Q, h_m, w_m)).
        """
        from sam3.model.data_misc import FindStage
        dev = canvas.device
        # to M x M, aspect not kept: what sam3's own Sam3Processor does with any image
        image = F.interpolate(canvas[None], (self.resolution, self.resolution),
                              mode='bilinear', align_corners=False)
        backbone_out = self.sam3.backbone.forward_image(image)
        backbone_out.update(self.sam3.backbone.forward_text([text], device=dev))
        geo = self.sam3._get_dummy_prompt()
        if len(exemplars):
            boxes = canvas_to_normalized(exemplars, tuple(canvas.shape[-2:]))
            geo.append_boxes(boxes[:, None], torch.ones(len(boxes), 1, dtype=torch.bool,
                                                        device=dev))
        zero = torch.zeros(1, dtype=torch.long, device=dev)
        find = FindStage(img_ids=zero, text_ids=zero, input_boxes=None,
                         input_boxes_mask=None, input_boxes_label=None, input_points=None,
                         input_points_mask=None)
        out = self.sam3.forward_grounding(backbone_out=backbone_out, find_input=find,
                                          find_target=None, geometric_prompt=geo)
        # SAM 3's detection score: query probability x the image-level presence score
        scores = out['pred_logits'][0, :, 0].sigmoid() * out['presence_logit_dec'][0].sigmoid()
        return scores, out['pred_boxes'][0], out['pred_masks'][0]

    def _class_prompt(self, ds, target: Tensor, label: int) -> Tuple[Tensor, str, Tensor]:
        """(canvas (3, h_c, w_c), text, exemplars (k, 4)) for one queried class."""
        if self.prompt == 'text':
            if label >= len(self.class_names):
                raise ValueError(f'label {label} is beyond the {len(self.class_names)} names '
                                 'of class_split: set the dataset\'s class_split')
            return target, self.class_names[label], target.new_zeros(0, 4)
        sel = (ds.ref_instances.labels == label).nonzero()[:, 0].tolist()
        if ds.get('ref_inputs', None) is None:  # a bank: the crops, no reference image
            if not sel:
                check_reference_boxes(target.new_zeros(0, 4), [])  # the empty-set error
            keys = ds.metainfo.get('ref_keys') or []
            crops, boxes = self._stored_crops([keys[j] for j in sel], target.device)
        else:
            side = ds.ref_inputs.shape[-1]
            shapes = ds.metainfo.get('ref_img_shapes') or [(side, side)] * len(ds.ref_inputs)
            refs = ds.ref_instances.bboxes[sel].to(target.device).float()
            hw = [tuple(shapes[j]) for j in sel]
            check_reference_boxes(refs, hw)
            parts = [reference_crop(ds.ref_inputs[j][:, :h, :w], b, self.test_cfg['context'])
                     for j, (h, w), b in zip(sel, hw, refs)]
            crops, boxes = [c for c, _ in parts], [b for _, b in parts]
        canvas, ex = paste_crops(target, crops, boxes, self.test_cfg['strip_ratio'])
        return canvas, 'visual', ex

    # ------------------------------------------------------------------ detection
    def detect_classes(self, ds, target: Tensor, labels: Sequence[int],
                       out_hw: Tuple[int, int]) -> InstanceData:
        """Every queried class in one target.

        Args:
            ds: the target's data sample (references, metainfo).
            target: (3, h_t, w_t) the target's valid region (normalised).
            labels: the queried classes. out_hw: output size (the original image's).

        Returns:
            InstanceData with ``bboxes`` (N, 4) in ``out_hw`` pixels, ``scores``, ``labels``,
            ``masks`` (N, *out_hw) bool.
        """
        cfg = self.test_cfg
        h_t, w_t = target.shape[-2:]
        sy, sx = out_hw[0] / h_t, out_hw[1] / w_t
        res = dict(bboxes=[], scores=[], labels=[], masks=[])
        for label in labels:
            canvas, text, ex = self._class_prompt(ds, target, label)
            scores, boxes, logits = self._ground(canvas, text, ex)
            boxes, inside = normalized_to_target(boxes, tuple(canvas.shape[-2:]), (h_t, w_t))
            keep = (inside & (scores > cfg['score_thr'])).nonzero()[:, 0]
            keep = keep[scores[keep].argsort(descending=True)][:cfg['max_per_class']]
            m = logits.new_zeros(0, *out_hw)
            if len(keep):  # canvas size, crop the target, then the output size
                m = F.interpolate(logits[keep][None], tuple(canvas.shape[-2:]),
                                  mode='bilinear', align_corners=False)[0, :, :h_t, :w_t]
                m = F.interpolate(m[None], out_hw, mode='bilinear', align_corners=False)[0]
            res['bboxes'].append(boxes[keep] * boxes.new_tensor([sx, sy, sx, sy]))
            res['scores'].append(scores[keep])
            res['labels'].append(torch.full_like(keep, label))
            res['masks'].append(m > 0)
        if not labels:
            return InstanceData(bboxes=target.new_zeros(0, 4), scores=target.new_zeros(0),
                                labels=torch.zeros(0, dtype=torch.long, device=target.device),
                                masks=torch.zeros(0, *out_hw, dtype=torch.bool,
                                                  device=target.device))
        out = {k: torch.cat(v) for k, v in res.items()}
        top = out['scores'].argsort(descending=True)[:cfg['max_per_img']]
        return InstanceData(**{k: v[top] for k, v in out.items()})

    @torch.no_grad()
    def predict(self, batch_inputs: Tensor, batch_data_samples: SampleList,
                rescale: bool = True) -> SampleList:
        """Boxes and masks of every queried class (label = reference class) per target."""
        results: List[InstanceData] = []
        for i, ds in enumerate(batch_data_samples):
            if 'ref_instances' not in ds or not len(ds.ref_instances):
                raise ValueError(
                    f'target {ds.metainfo.get("img_path")} has no references: every queried '
                    'class needs at least one reference (check the dataset mode and shots)')
            meta = ds.metainfo
            h, w = meta['img_shape'][:2]
            out_hw = tuple(meta['ori_shape'][:2]) if rescale else (h, w)
            labels = sorted(set(ds.ref_instances.labels.tolist()))
            results.append(self.detect_classes(ds, batch_inputs[i, :, :h, :w], labels,
                                               out_hw))
        return self.add_pred_to_datasample(batch_data_samples, results)

    def loss(self, batch_inputs: Tensor, batch_data_samples: SampleList) -> dict:
        raise RuntimeError('SAM3ExemplarDetector is training-free (frozen SAM 3): evaluate '
                           'it with tools/test.py CONFIG (no checkpoint)')

    def extract_feat(self, batch_inputs: Tensor) -> dict:
        """SAM 3's backbone outputs for (B, 3, M, M) images."""
        return self.sam3.backbone.forward_image(batch_inputs)

    def _forward(self, batch_inputs: Tensor, batch_data_samples: SampleList = None) -> dict:
        return self.extract_feat(batch_inputs)
