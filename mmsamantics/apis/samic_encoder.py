"""SAMIC in the inferencer: references -> the detector's reference features and heatmaps.

SAMIC's prompter sees a reference as its image (cropped to the valid region, resized to the
prompter's side s) and its saliency heatmap (§3.2: Gaussians at points sampled from the
mask). A registered reference keeps what the detector itself stores of it, the frozen
ResNet features of its crop (:meth:`SAMIC.encode_references`, the detector's own bank
format and signature), plus its (s, s) heatmap, made as the detector's pipeline makes it
(the config's ``GenerateSaliencyHeatmaps``, the reference's key as the point-sampling
seed). At prediction time the features are lent to the detector (no reference image is
encoded again) and the heatmaps attached; its own ``predict`` runs unchanged. A bank of
the inference API is the detector's bank plus the heatmaps (``meta['heatmaps']``, with the
settings that made them).

Shape shorthand: R references, s the prompter input side, S the SAM input side.
"""
from typing import List, Sequence, Tuple

import numpy as np
import torch
from mmcv.transforms import Compose
from torch import Tensor

from mmdet.registry import TRANSFORMS
from mmdet.structures import SampleList
from ..structures import feature_rows, stack_features
from ..structures.reference_store import Feature
from ..utils.images import reference_mask, rescale
from .reference_encoder import REFERENCE_ENCODERS, ReferenceEncoder
from .references import Reference

HEATMAPS = 'GenerateSaliencyHeatmaps'


@REFERENCE_ENCODERS.register_module(name='SAMIC')
class SAMICReferenceEncoder(ReferenceEncoder):
    """Per reference for SAMIC: the detector's frozen ResNet features of its crop and its
    (s, s) heatmap, a tuple ``(level_1, ..., level_L, heatmap)``."""

    def __init__(self, model, cfg) -> None:
        super().__init__(model, cfg)
        steps = [t for t in self._pipeline() if _name(t) == HEATMAPS]
        if len(steps) != 1:
            raise ValueError(f'SAMIC\'s test pipeline must hold one {HEATMAPS} step (the '
                             f'reference heatmaps), found {len(steps)}')
        # the reference heatmaps only: the target heatmaps are training / metric inputs
        self.heatmaps = TRANSFORMS.build(dict(steps[0], with_gt=False))
        if self.heatmaps.size != (model.input_size, model.input_size):
            raise ValueError(f'{HEATMAPS}(size={self.heatmaps.size[0]}) must equal the '
                             f'prompter input_size {model.input_size}')

    def _pipeline(self) -> list:
        return list(self.cfg.get('test_dataloader', {}).get('dataset', {}).get('pipeline')
                    or self.cfg.get('test_pipeline') or [])

    @torch.no_grad()
    def encode(self, images: Sequence[np.ndarray], refs: Sequence[Sequence[Reference]],
               batch_size: int = 4) -> List[Feature]:
        """Per image, the features of its n_i references: (ResNet level (n_i, C_l, h_l,
        w_l) ..., heatmaps (n_i, s, s))."""
        for img, rs in zip(images, refs):
            for r in rs:
                if not _inside(r.box, img.shape[:2]):
                    raise ValueError(f'reference {r.key!r}: box {list(r.box)} lies outside '
                                     f'its {img.shape[1]}x{img.shape[0]} image; give a box '
                                     'inside the reference image')
        # one call for every image: the detector batches its ResNet passes itself
        _, levels = self.model.encode_references(
            [dict(key=r.key, img=img, bbox=r.box) for img, rs in zip(images, refs) for r in rs],
            batch_size=batch_size, scale=self.scale)
        counts = [len(rs) for rs in refs]
        per_image = [lv.split(counts) for lv in levels]
        s, out = int(self.model.input_size), []
        for i, (img, rs) in enumerate(zip(images, refs)):
            resized, scale = rescale(img, self.scale)
            heats = [self._heatmap(r, resized.shape[:2], scale) for r in rs]
            out.append(tuple(lv[i] for lv in per_image)
                       + (torch.stack(heats) if heats else torch.zeros(0, s, s),))
        return out

    def _heatmap(self, ref: Reference, hw: Tuple[int, int], scale) -> Tensor:
        """(s, s) saliency heatmap of a reference's mask at the resized size ``hw``."""
        m = reference_mask(dict(bbox=ref.box, mask=ref.instance_mask()), hw, scale)
        heat = self.heatmaps.transform(dict(ref_masks=[m.astype(np.uint8)],
                                            ref_keys=[ref.key]))['ref_heatmaps']
        return torch.from_numpy(heat)[0]

    def bank_payload(self, features: List[Feature]) -> Tuple[Feature, dict]:
        """The detector's bank (its ResNet features) + the heatmaps and their settings."""
        stacked = stack_features(features)
        return stacked[:-1], dict(heatmaps=stacked[-1], heatmap_settings=repr(self.heatmaps))

    def bank_features(self, bank: dict, path: str) -> List[Feature]:
        """Per reference (ResNet levels ..., heatmap); refused without heatmaps made with
        this config's settings (a bank of ``tools/misc/encode_references.py`` has none:
        its heatmaps come from the dataset's masks)."""
        meta = bank.get('meta') or {}
        if meta.get('heatmap_settings') != repr(self.heatmaps):
            raise ValueError(f'reference bank {path!r} holds no heatmaps made with this '
                             f'config\'s {HEATMAPS} ({meta.get("heatmap_settings")!r}): '
                             're-register the references with their masks and save the bank '
                             'again (tools/infer.py --save-bank)')
        feats = tuple(bank['tokens']) + (meta['heatmaps'],)
        return [feature_rows(feats, j) for j in range(len(bank['keys']))]

    def predict(self, inputs: Tensor, data_samples: SampleList, keys: List[str],
                labels: Tensor, features: Feature, boxes: Tensor) -> SampleList:
        """Lend the stored ResNet features, attach the heatmaps, run SAMIC's predict."""
        device = inputs.device
        self.attach_references(data_samples, keys, labels, boxes, device)
        s = int(self.model.input_size)
        *levels, heats = features
        for ds in data_samples:
            ds.ref_heatmaps = heats.to(device)
            ds.set_metainfo(dict(ref_img_shapes=[(s, s)] * len(keys)))
        lent = {k: feature_rows(tuple(levels), j) for j, k in enumerate(keys)}
        with torch.no_grad(), self.model.using_reference_features(lent):
            return self.model.predict(inputs, data_samples)

    def target_pipeline(self) -> Compose:
        """The base pipeline without the heatmap step (references come from the store)."""
        full = super().target_pipeline()
        return Compose([t for t in full.transforms if type(t).__name__ != HEATMAPS])


def _name(step) -> str:
    t = step['type'] if isinstance(step, dict) else type(step)
    return (t if isinstance(t, str) else t.__name__).split('.')[-1]


def _inside(box: Sequence[float], hw: Tuple[int, int]) -> bool:
    """Whether an xyxy box overlaps its (h, w) image by at least one pixel."""
    x1, y1, x2, y2 = (float(v) for v in box)
    return x2 > 0 and y2 > 0 and x1 < hw[1] and y1 < hw[0] and x2 > x1 and y2 > y1
