"""InSAM-DETR in the inferencer: references -> SAM mask tokens, predict through the detector.

Reference images are resized exactly as :class:`LoadInContextReferences` does (longest side
to the pipeline's reference scale) and normalised/padded by the model's own data
preprocessor, so a reference's tokens equal those the detector computes itself.

At prediction time the detector's own ``predict`` runs unchanged: the encoder lends it the
inferencer's tokens with ``InSAMDETR.using_reference_tokens`` for the duration of the call,
so no reference image is encoded again.
"""
from typing import Dict, List, Sequence, Tuple

import mmcv
import numpy as np
import torch
from torch import Tensor

from mmdet.structures import SampleList
from ..cache.builder import preprocess
from .reference_encoder import REFERENCE_ENCODERS, ReferenceEncoder
from .references import Reference


@REFERENCE_ENCODERS.register_module(name='InSAMDETR')
class InSAMDETRReferenceEncoder(ReferenceEncoder):
    """Reference tokens (T x D SAM mask tokens of each reference box) for InSAM-DETR."""

    kind = 'insam_detr'

    @property
    def feature_shape(self) -> Tuple[int, ...]:
        dec = self.model.mask_head.decoder
        return (int(dec.num_mask_tokens), int(dec.embed_dim))

    @torch.no_grad()
    def encode(self, images: Sequence[np.ndarray],
               refs: Sequence[Sequence[Reference]]) -> List[Tensor]:
        """One SAM pass per image, then SAM's decoder once per reference box."""
        resized, rows, boxes = [], [], []
        for i, (img, rs) in enumerate(zip(images, refs)):
            h, w = img.shape[:2]
            im = mmcv.imrescale(img, (self.scale, self.scale), backend='cv2')
            # (w_scale, h_scale) from the rounded size, as mmdet's Resize computes it
            s = np.array([im.shape[1] / w, im.shape[0] / h] * 2, np.float32)
            resized.append(im)
            for r in rs:
                rows.append(i)
                boxes.append(r.box.astype(np.float32) * s)
        x = preprocess(self.model, resized)
        emb = self.model.backbone(x)[-1]
        # SAM 2 / HQ-SAM embeddings are tuples of tensors
        emb = tuple(e[rows] for e in emb) if isinstance(emb, (tuple, list)) else emb[rows]
        tokens = self.model.mask_head.decoder.mask_tokens(
            emb, torch.as_tensor(np.stack(boxes), device=x.device)).float().cpu()
        out, n = [], 0
        for rs in refs:
            out.append(tokens[n:n + len(rs)])
            n += len(rs)
        return out

    @torch.no_grad()
    def predict(self, inputs: Tensor, data_samples: SampleList, keys: List[str],
                labels: Tensor, features: Tensor, boxes: Tensor) -> SampleList:
        device = inputs.device
        # boxes are not used: every key is found in the lent features
        self.attach_references(data_samples, keys, labels, boxes, device)
        bank = {k: f.to(device) for k, f in zip(keys, features)}
        with self.model.using_reference_tokens(bank):
            return self.model.predict(inputs, data_samples)
