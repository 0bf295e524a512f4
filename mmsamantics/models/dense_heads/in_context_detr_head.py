"""The head contract of InSAM-DETR: a Deformable-DETR head over (target, class) pairs.

As mmdet's DINO hands its denoising record ``dn_meta`` to its head through
``head_inputs_dict``, InSAM-DETR hands every head the batch's :class:`ReferencePairs`
(``pairs``): each pair's merged reference embedding, the tokens of each shot, the targets'
SAM embedding. A head reads what it uses and declares it in ``forward``, ``loss`` and
``predict``; the plain head (the paper's, Espinosa et al. §5) reads nothing of it.

What a head needs from the detector's frozen parts is given once, at build time, by
:meth:`InContextDETRHead.bind` (the reference sources, the SAM decoder), never looked up
or called back per batch.

Shape shorthand: L decoder layers, P (target, class) pairs, Q queries.
"""
from typing import List, Optional, Sequence, Tuple

from torch import Tensor, nn

from mmdet.models.dense_heads import DeformableDETRHead
from mmdet.registry import MODELS
from mmdet.structures import SampleList


@MODELS.register_module()
class InContextDETRHead(DeformableDETRHead):
    """:class:`DeformableDETRHead` that takes the pairs record (``num_classes=1``: a query
    matches the pair's reference or not). Subclasses override :meth:`forward`."""

    def bind(self, sources: Sequence[nn.Module], token_slices: Sequence[Tuple[int, int]],
             decoder: nn.Module, input_size: int) -> None:
        """Called once by the detector after it is built: its reference sources, the token
        range of each in a reference's tokens, its frozen SAM decoder and SAM's input side.
        The plain head needs none of them."""

    def forward(self, hidden_states: Tensor, references: List[Tensor],
                pairs=None) -> Tuple[Tensor, Tensor]:
        """(L, P, Q, 1) class logits and (L, P, Q, 4) boxes of the decoded queries."""
        return super().forward(hidden_states, references)

    def loss(self, hidden_states: Tensor, references: List[Tensor],
             enc_outputs_class: Optional[Tensor], enc_outputs_coord: Optional[Tensor],
             batch_data_samples: SampleList, pairs=None) -> dict:
        """:meth:`DeformableDETRHead.loss` over the pairs (one data sample per pair)."""
        outs = self(hidden_states, references, pairs)
        gts = [ds.gt_instances for ds in batch_data_samples]
        metas = [ds.metainfo for ds in batch_data_samples]
        return self.loss_by_feat(*outs, enc_outputs_class, enc_outputs_coord, gts, metas)

    def predict(self, hidden_states: Tensor, references: List[Tensor],
                batch_data_samples: SampleList, rescale: bool = True, pairs=None) -> list:
        """:meth:`DeformableDETRHead.predict` over the pairs (one data sample per pair)."""
        outs = self(hidden_states, references, pairs)
        metas = [ds.metainfo for ds in batch_data_samples]
        return self.predict_by_feat(*outs, batch_img_metas=metas, rescale=rescale)
