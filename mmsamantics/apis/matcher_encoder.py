"""The training-free matcher in the inferencer: references -> DINOv2 features, then predict.

A reference's feature is the masked average of DINOv2 tokens inside its mask (its box when
it was given as a box or points), computed exactly as :class:`SAMDINOv2Matcher` computes it
from a dataset reference: same resize, same preprocessing, same padding.
"""
from typing import List, Sequence, Tuple

import mmcv
import numpy as np
import torch
from torch import Tensor

from mmdet.structures import SampleList
from ..cache.builder import preprocess
from .reference_encoder import REFERENCE_ENCODERS, ReferenceEncoder
from .references import Reference


@REFERENCE_ENCODERS.register_module(name='SAMDINOv2Matcher')
class SAMDINOv2MatcherReferenceEncoder(ReferenceEncoder):
    """(1, C) DINOv2 feature per reference for :class:`SAMDINOv2Matcher`."""

    kind = 'sam_dinov2_matcher'

    @property
    def feature_shape(self) -> Tuple[int, ...]:
        return (1, int(self.model.feature_extractor.embed_dim))

    @torch.no_grad()
    def encode(self, images: Sequence[np.ndarray],
               refs: Sequence[Sequence[Reference]]) -> List[Tensor]:
        """Each reference image resized and preprocessed once; masks (or boxes) pooled."""
        side = self.model.backbone.img_size
        ims, masks = [], []
        for img, rs in zip(images, refs):
            h, w = img.shape[:2]
            im = mmcv.imrescale(img, (self.scale, self.scale), backend='cv2')
            sx, sy = im.shape[1] / w, im.shape[0] / h
            for r in rs:
                m = np.zeros((side, side), bool)
                full = r.instance_mask()
                if full is not None:
                    small = mmcv.imresize(full.astype(np.uint8), (im.shape[1], im.shape[0]),
                                          interpolation='nearest').astype(bool)
                    m[:small.shape[0], :small.shape[1]] = small
                if not m.any():  # box or points reference (or a mask lost in the resize)
                    x1, y1, x2, y2 = np.round(r.box * [sx, sy, sx, sy]).astype(int)
                    m[max(y1, 0):max(y2, y1 + 1), max(x1, 0):max(x2, x1 + 1)] = True
                ims.append(im)
                masks.append(m)
        feats = self.model._encode_references(
            preprocess(self.model, ims),
            torch.as_tensor(np.stack(masks), device=self.model.data_preprocessor.device),
            [im.shape[:2] for im in ims])
        out, n = [], 0
        for rs in refs:
            out.append(feats[n:n + len(rs), None].float().cpu())
            n += len(rs)
        return out

    @torch.no_grad()
    def predict(self, inputs: Tensor, data_samples: SampleList, keys: List[str],
                labels: Tensor, features: Tensor, boxes: Tensor) -> SampleList:
        device = inputs.device
        # boxes are not used: every key is found in the lent features
        self.attach_references(data_samples, keys, labels, boxes, device)
        lent = {k: f.reshape(-1).to(device) for k, f in zip(keys, features)}
        with self.model.using_reference_features(lent):
            return self.model.predict(inputs, data_samples)
