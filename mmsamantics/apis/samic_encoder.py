"""SAMIC in the inferencer: references -> the prompter's reference input, then predict.

SAMIC's prompter sees a reference as its image (cropped to the valid region, resized to the
prompter's side s) and its saliency heatmap (§3.2: Gaussians at points sampled from the
mask). Both depend on the reference only, so a registered reference is stored as the
(4, s, s) stack [image; heatmap], computed exactly as the detector's pipeline does
(``LoadInContextReferences`` resize, the model's preprocessing, the config's
``GenerateSaliencyHeatmaps`` with the reference's key as the point-sampling seed). At
prediction time the stacks are attached as already-cropped references (``ref_inputs``
(R, 3, s, s), ``ref_heatmaps``, ``ref_img_shapes`` = s x s) and the detector's own
``predict`` runs unchanged; its ResNet features of a reference are computed once per key.

Shape shorthand: R references, s the prompter input side, S the SAM input side.
"""
from typing import List, Sequence, Tuple

import numpy as np
import torch
from mmcv.transforms import Compose
from torch import Tensor

from mmdet.registry import TRANSFORMS
from mmdet.structures import SampleList
from ..models.samic.hsnet import crop_resize
from ..structures import signature_of, weights_fingerprint
from ..utils.images import preprocess_images, reference_mask, rescale
from .reference_encoder import REFERENCE_ENCODERS, ReferenceEncoder
from .references import Reference

HEATMAPS = 'GenerateSaliencyHeatmaps'


@REFERENCE_ENCODERS.register_module(name='SAMIC')
class SAMICReferenceEncoder(ReferenceEncoder):
    """(4, s, s) prompter input ([preprocessed crop; heatmap]) per reference for SAMIC."""

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

    @property
    def signature(self) -> str:
        """The prompter's and SAM's weights, the heatmap settings and the preprocessing."""
        dp = self.model.data_preprocessor
        parts = dict(kind='SAMIC', prompter=weights_fingerprint(self.model.prompter),
                     heatmaps=repr(self.heatmaps), scale=self.scale,
                     mean=[round(float(v), 6) for v in dp.mean.flatten()],
                     std=[round(float(v), 6) for v in dp.std.flatten()],
                     bgr_to_rgb=bool(dp._channel_conversion))
        return signature_of(parts)

    @property
    def feature_shape(self) -> Tuple[int, ...]:
        s = int(self.model.input_size)
        return (4, s, s)

    @torch.no_grad()
    def encode(self, images: Sequence[np.ndarray], refs: Sequence[Sequence[Reference]],
               batch_size: int = 4) -> List[Tensor]:
        """Per image, the (n_i, 4, s, s) prompter inputs of its references (a crop of the
        image, as :func:`crop_resize` makes it from the padded input, and the heatmap)."""
        s = int(self.model.input_size)
        out = []
        for img, rs in zip(images, refs):
            resized, scale = rescale(img, self.scale)
            hw = resized.shape[:2]
            x = preprocess_images(self.model.data_preprocessor, [resized])
            crop = crop_resize(x, [hw], s)[0].float().cpu()  # (3, s, s)
            feats = []
            for r in rs:
                if not _inside(r.box, img.shape[:2]):
                    raise ValueError(f'reference {r.key!r}: box {list(r.box)} lies outside '
                                     f'its {img.shape[1]}x{img.shape[0]} image; give a box '
                                     'inside the reference image')
                m = reference_mask(dict(bbox=r.box, mask=r.instance_mask()), hw, scale)
                heat = self.heatmaps.transform(dict(ref_masks=[m.astype(np.uint8)],
                                                    ref_keys=[r.key]))['ref_heatmaps']
                feats.append(torch.cat([crop, torch.from_numpy(heat)]))
            out.append(torch.stack(feats) if feats else torch.zeros(0, *self.feature_shape))
        return out

    def predict(self, inputs: Tensor, data_samples: SampleList, keys: List[str],
                labels: Tensor, features: Tensor, boxes: Tensor) -> SampleList:
        """Attach the stored references as cropped images + heatmaps, run SAMIC's predict."""
        device = inputs.device
        self.attach_references(data_samples, keys, labels, boxes, device)
        s = int(self.model.input_size)
        feats = features.to(device)
        for ds in data_samples:
            ds.ref_inputs = feats[:, :3]
            ds.ref_heatmaps = feats[:, 3]
            ds.set_metainfo(dict(ref_img_shapes=[(s, s)] * len(keys)))
        with torch.no_grad():
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
