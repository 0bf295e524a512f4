"""A Deformable-DETR head whose classification also compares each query with the reference.

InSAM-DETR (Espinosa et al., §5) conditions the decoder by ADDING the reference embedding
to every content query; the classification branch then scores each decoded query on its
own, so telling "this box holds the reference's class" from "this box holds an object" is
left to what the addition carried through six decoder layers. On the toy world this design
learns a class-agnostic detector even from a perfect class code: it finds objects, not the
reference's objects (measured in docs/toy_semantics.md).

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
from typing import List, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmdet.registry import MODELS
from .in_context_detr_head import InContextDETRHead


@MODELS.register_module()
class ReferenceAwareDETRHead(InContextDETRHead):
    """:class:`InContextDETRHead` + cosine(query, reference) in the class logit.

    Args:
        proj_dims: width of the projections W_q and W_e.
        init_scale: initial temperature s.
        *args, **kwargs: :class:`InContextDETRHead` arguments (``num_classes=1``).
    """

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
                pairs=None) -> Tuple[Tensor, Tensor]:
        """Deformable DETR's outputs with the match logits of each pair's merged reference
        embedding ``pairs.embeds`` (P, E) added to the class scores (L, P, Q, 1)."""
        cls, coords = super().forward(hidden_states, references)
        if pairs is None:
            raise ValueError('ReferenceAwareDETRHead scores queries against the pairs\' '
                             'reference embeddings: use it inside InSAMDETR, which passes '
                             'them (pairs)')
        return cls + self.match_logits(hidden_states, pairs.embeds), coords
