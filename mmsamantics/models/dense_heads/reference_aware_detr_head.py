"""A Deformable-DETR head whose classification also compares each query with the reference.

InSAM-DETR (Espinosa et al., §5) conditions the decoder by ADDING the reference embedding
to every content query; the classification branch then scores each decoded query on its
own, so telling "this box holds the reference's class" from "this box holds an object" is
left to what the addition carried through six decoder layers. On the toy world this design
learns a class-agnostic detector even from a perfect class code (oracle base AP50 0.60, open
0.17): it finds objects, not the reference's objects.

This head keeps the paper's branch and adds a reference-aware term, as open-vocabulary
detectors score region embeddings against text embeddings (e.g. Grounding DINO's
contrastive head): the logit of query q for the pair's reference e is

    cls(q) + s * cos(W_q q, W_e e) + b

with learned projections W_q, W_e, a learned temperature s (initialised to ``init_scale``)
and bias b. Negatives (classes absent from the target, ``neg_classes_per_image`` of the
dataset) then teach it to score low when q and e do not match.

Shape shorthand: L decoder layers, P (target, class) pairs, Q queries, E embed dims.
"""
import math
from typing import List, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmdet.models.dense_heads import DeformableDETRHead
from mmdet.registry import MODELS
from mmdet.structures import SampleList


@MODELS.register_module()
class ReferenceAwareDETRHead(DeformableDETRHead):
    """:class:`DeformableDETRHead` + cosine(query, reference) in the class logit.

    Args:
        proj_dims: width of the projections W_q and W_e.
        init_scale: initial temperature s.
        *args, **kwargs: :class:`DeformableDETRHead` arguments (``num_classes=1``).
    """

    takes_reference = True  # the detector passes the pairs' reference embeddings

    def __init__(self, *args, proj_dims: int = 128, init_scale: float = 10.0,
                 **kwargs) -> None:
        self.proj_dims = proj_dims
        self.init_scale = init_scale
        super().__init__(*args, **kwargs)
        if self.cls_out_channels != 1:
            raise ValueError('ReferenceAwareDETRHead scores "matches the reference": it needs '
                             'num_classes=1 with a sigmoid classifier')

    def _init_layers(self) -> None:
        super()._init_layers()
        self.query_proj = nn.Linear(self.embed_dims, self.proj_dims)
        self.ref_proj = nn.Linear(self.embed_dims, self.proj_dims)
        self.log_scale = nn.Parameter(torch.tensor(math.log(self.init_scale)))
        self.match_bias = nn.Parameter(torch.zeros(()))

    def match_logits(self, hidden_states: Tensor, ref_embeds: Tensor) -> Tensor:
        """(L, P, Q, E) decoded queries, (P, E) references -> (L, P, Q, 1) match logits."""
        q = F.normalize(self.query_proj(hidden_states), dim=-1)
        e = F.normalize(self.ref_proj(ref_embeds), dim=-1)
        sim = torch.einsum('lpqd,pd->lpq', q, e)
        return (self.log_scale.exp() * sim + self.match_bias)[..., None]

    def forward(self, hidden_states: Tensor, references: List[Tensor],
                ref_embeds: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        """Deformable DETR's outputs; with ``ref_embeds`` (P, E) the match logits are added
        to the class scores (L, P, Q, 1)."""
        cls, coords = super().forward(hidden_states, references)
        if ref_embeds is None:
            raise ValueError('ReferenceAwareDETRHead needs the reference embeddings of the '
                             'pairs (ref_embeds); build it inside InSAMDETR')
        return cls + self.match_logits(hidden_states, ref_embeds), coords

    def loss(self, hidden_states: Tensor, references: List[Tensor],
             enc_outputs_class: Optional[Tensor], enc_outputs_coord: Optional[Tensor],
             batch_data_samples: SampleList, ref_embeds: Optional[Tensor] = None,
             **extra) -> dict:
        """:meth:`DeformableDETRHead.loss` with the reference-aware scores (``extra``: more
        inputs of a subclass's :meth:`forward`)."""
        outs = self(hidden_states, references, ref_embeds, **extra)
        gts = [ds.gt_instances for ds in batch_data_samples]
        metas = [ds.metainfo for ds in batch_data_samples]
        return self.loss_by_feat(*outs, enc_outputs_class, enc_outputs_coord, gts, metas)

    def predict(self, hidden_states: Tensor, references: List[Tensor],
                batch_data_samples: SampleList, rescale: bool = True,
                ref_embeds: Optional[Tensor] = None, **extra) -> list:
        """:meth:`DeformableDETRHead.predict` with the reference-aware scores."""
        outs = self(hidden_states, references, ref_embeds, **extra)
        metas = [ds.metainfo for ds in batch_data_samples]
        return self.predict_by_feat(*outs, batch_img_metas=metas, rescale=rescale)
