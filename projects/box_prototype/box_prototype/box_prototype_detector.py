"""A new in-context detector: one learned similarity between SAM cells and a box prototype.

A reference is the mean SAM embedding inside its box (frozen: stored, cached and banked by
:class:`InContextDetector`). A target's SAM cells and each queried class's prototype are
projected by one learned 1 x 1 map and compared by cosine; the cells above 0 give the box of
the class, and SAM's decoder its mask. Training teaches the projection that the cells inside
a class's boxes match its prototype (a binary cross-entropy per cell).

Shape shorthand: B targets, R references, K queried classes of a target, D SAM width,
h x w SAM's cell grid, S SAM's input side.
"""
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.structures import InstanceData
from torch import Tensor, nn
from torchvision.ops import roi_align

from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmsamantics.models import InContextDetector
from mmsamantics.structures.signature import preprocessing_parts
from mmsamantics.utils.images import preprocess_images, reference_image_batches


@MODELS.register_module()
class BoxPrototypeDetector(InContextDetector):
    """Box prototypes of a frozen SAM, compared with a target's cells through a learned map.

    Args:
        backbone: frozen :class:`SAMImageEncoder` (``out_indices=()``: its embedding only).
        mask_head: :class:`SAMBoxPromptMaskHead` (frozen SAM decoder: masks of the boxes).
        proj_dims: width of the learned projection.
        data_preprocessor, init_cfg, reference_store: as :class:`InContextDetector`.
    """

    reference_kind = 'box_prototype'
    reference_made_with = 'SAM or preprocessing'

    def __init__(self, backbone: dict, mask_head: dict, proj_dims: int = 64,
                 data_preprocessor: Optional[dict] = None, init_cfg: Optional[dict] = None,
                 reference_store: Optional[dict] = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg,
                         reference_store=reference_store)
        self.backbone = MODELS.build(backbone)
        self.mask_head = MODELS.build(mask_head)
        width = int(self.mask_head.decoder.embed_dim)
        self.proj = nn.Conv2d(width, proj_dims, 1)
        self.log_scale = nn.Parameter(torch.tensor(np.log(10.0), dtype=torch.float32))

    # ------------------------------------------------------------------ references
    def signature_parts(self) -> dict:
        return dict(kind='BoxPrototypeDetector', sam=self.fingerprint(self.backbone),
                    sam_size=int(self.backbone.img_size),
                    **preprocessing_parts(self.data_preprocessor))

    @property
    def reference_feature_shape(self) -> Tuple[int, ...]:
        return (1, int(self.mask_head.decoder.embed_dim))

    def _prototypes(self, images: Tensor, boxes: Tensor, rows: Sequence[int]) -> Tensor:
        """(B, 3, S, S) images, (R, 4) boxes in input pixels, (R,) their image -> (R, 1, D)
        mean SAM embedding inside each box."""
        with torch.no_grad():
            emb = self.backbone(images)[-1]
        rois = torch.cat([boxes.new_tensor(list(rows))[:, None].float(), boxes.float()], 1)
        pooled = roi_align(emb.float(), rois, 1, emb.shape[-1] / self.backbone.img_size,
                           aligned=True)
        return pooled.flatten(1)[:, None]

    @torch.no_grad()
    def encode_references(self, refs: Sequence[dict], batch_size: int = 4,
                          scale: Optional[int] = None) -> Tuple[List[str], Tensor]:
        refs, out = list(refs), []
        for batch in reference_image_batches(refs, scale or self.backbone.img_size,
                                             batch_size):
            x = preprocess_images(self.data_preprocessor, [im for im, _, _ in batch])
            rows = [i for i, (_, _, idx) in enumerate(batch) for _ in idx]
            boxes = np.stack([np.asarray(refs[j]['bbox'], np.float32) * s
                              for _, s, idx in batch for j in idx])
            feats = self._prototypes(x, torch.as_tensor(boxes, device=x.device), rows)
            out += list(zip([j for _, _, idx in batch for j in idx], feats.cpu()))
        feats = [f for _, f in sorted(out, key=lambda jf: jf[0])]
        return ([r['key'] for r in refs],
                torch.stack(feats) if feats else torch.zeros(0, *self.reference_feature_shape))

    def _references(self, ds) -> Tuple[Tensor, Tensor]:
        """(K,) queried classes and (K, D) their prototypes (mean of the k shots)."""
        keys = list(ds.metainfo['ref_keys'])
        labels = ds.ref_instances.labels

        def encode(todo: List[str]) -> Tensor:
            j = [keys.index(k) for k in todo]
            return self._prototypes(ds.ref_inputs[j], ds.ref_instances.bboxes[j],
                                    range(len(j)))

        feats = self.reference_store.get(keys, encode, labels.device)[:, 0]
        classes = labels.unique()
        protos = torch.stack([feats[labels == c].mean(0) for c in classes])
        return classes, protos

    # ------------------------------------------------------------------ detection
    def _class_logits(self, emb: Tensor, protos: Tensor) -> Tensor:
        """(D, h, w) target embedding, (K, D) prototypes -> (K, h, w) logits."""
        cells = F.normalize(self.proj(emb[None].float())[0], dim=0)
        p = F.normalize(F.conv2d(protos[:, :, None, None].float(), self.proj.weight,
                                 self.proj.bias)[:, :, 0, 0], dim=1)
        return self.log_scale.exp() * torch.einsum('dhw,kd->khw', cells, p)

    def loss(self, batch_inputs: Tensor, batch_data_samples: SampleList) -> dict:
        with torch.no_grad():
            emb = self.backbone(batch_inputs)[-1]
        side, losses = self.backbone.img_size, []
        for b, ds in enumerate(batch_data_samples):
            classes, protos = self._references(ds)
            logits = self._class_logits(emb[b], protos)
            target = torch.zeros_like(logits)
            cell = side / logits.shape[-1]
            gt = ds.gt_instances
            for k, c in enumerate(classes):
                for x0, y0, x1, y1 in (gt.bboxes[gt.labels == c] / cell).tolist():
                    target[k, int(y0):int(np.ceil(y1)), int(x0):int(np.ceil(x1))] = 1
            losses.append(F.binary_cross_entropy_with_logits(logits, target))
        return dict(loss_cells=torch.stack(losses).mean())

    def predict(self, batch_inputs: Tensor, batch_data_samples: SampleList,
                rescale: bool = True) -> SampleList:
        emb = self.backbone(batch_inputs)[-1]
        results = []
        for b, ds in enumerate(batch_data_samples):
            classes, protos = self._references(ds)
            logits = self._class_logits(emb[b], protos)
            cell = self.backbone.img_size / logits.shape[-1]
            boxes = []
            for lg in logits:
                on = (lg > 0) | (lg == lg.max())  # the peak cell at least
                ys, xs = on.nonzero(as_tuple=True)
                boxes.append(torch.stack([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]))
            scale = boxes[0].new_tensor(ds.metainfo['scale_factor'] if rescale
                                        else (1.0, 1.0)).float().repeat(2)
            results.append(InstanceData(
                bboxes=torch.stack(boxes).float() * cell / scale,  # original pixels
                scores=logits.flatten(1).max(1).values.sigmoid(), labels=classes))
        metas = [ds.metainfo if rescale else dict(ds.metainfo, scale_factor=(1.0, 1.0),
                                                  ori_shape=ds.metainfo['img_shape'])
                 for ds in batch_data_samples]
        results = self.mask_head.predict(emb, results, metas)
        return self.add_pred_to_datasample(batch_data_samples, results)

    def _forward(self, batch_inputs: Tensor, batch_data_samples: SampleList = None) -> Tensor:
        return self.backbone(batch_inputs)[-1]

    def extract_feat(self, batch_inputs: Tensor) -> Tensor:
        return self.backbone(batch_inputs)[-1]
