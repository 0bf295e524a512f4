"""A reference-aware DETR head that also compares each detection's SAM mask with the
reference's: the outline, which the DETR's stride-16 features barely resolve.

On the toy world a detector whose references are perfect class codes still scores a
same-colour object of another shape as high as the queried one (docs/toy_semantics.md):
colour survives SAM's stride-16 encoder levels, outlines of objects a few cells wide do
not. SAM's mask decoder, prompted with a box, upsamples to stride 4 and draws the outline.
This head adds a third term to the last decoder layer's class logit of query q,

    cls(q) + s * cos(W_q q, W_e e) + b  +  s' * cos(phi(m_q), phi(m_e)) + b'

where m_q is the shape token (:mod:`..layers.shape_tokens`) of SAM's mask for q's predicted
box, phi a learned MLP, and phi(m_e) the mean of phi over the reference's k shots: outlines
of one class seen at k angles are averaged as embeddings (a prototype), since the mean of
their pixels is no outline at all. With ``shape_kshot='max'`` a query is compared with each
shot and keeps its best match instead (one shot's cosine, unchanged at 1 shot): an object
that looks like one of the k references matches it fully, however unlike the others it is
(on the toy world it scored below the prototype: docs/toy_semantics.md). Boxes enter SAM
detached: the term teaches phi to compare outlines, not the regression to please it. Only the last layer gets it (the one
:meth:`predict` reads), so SAM decodes P x Q boxes once per step, not once per layer.
With ``shape_top_k`` only the ``shape_top_k`` queries of each target image that score
highest before the term are segmented and compared (the detections open mode keeps are
re-scored by outline); the
others get the lowest term the comparison can give, s' * (-1) + b', which keeps them below
every compared query of equal score.

Shape shorthand: L decoder layers, P (target, class) pairs, Q queries, D SAM prompt width.
"""
import math
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmdet.registry import MODELS
from ..layers.grouping import group_max, group_mean
from ..layers.shape_tokens import shape_grid
from ..reference_sources import QueryShapeEncoder, ShapeToken
from .reference_aware_detr_head import ReferenceAwareDETRHead


@MODELS.register_module()
class ShapeAwareDETRHead(ReferenceAwareDETRHead):
    """:class:`ReferenceAwareDETRHead` + cosine(shape of the query's mask, reference shape).

    Needs a :class:`ShapeToken` among the detector's reference sources (the references'
    outlines); :meth:`bind` gives it SAM's decoder, which makes the queries' outlines.

    Args:
        shape_dims: D, the width of a shape token (SAM's prompt width).
        shape_hidden: (hidden, out) widths of the MLP phi.
        shape_symmetry: ``'none'``, or ``'d4'``: phi is averaged over the 8 rotations by
            90 degrees and mirrorings of the g x g grid, so an outline and its turned or
            mirrored copy compare alike (objects seen in other orientations than the
            reference's); the toy world's shapes lie at any angle.
        shape_kshot: how k shots' outlines meet a query's: ``'mean'``, the cosine with the
            mean of their embeddings (a prototype), or ``'max'``, the best cosine over the
            shots. Both equal the one cosine at 1 shot, so either applies to a trained model.
        shape_top_k: compare the outlines of the ``shape_top_k`` best queries per target
            image only (None: every query of every pair). SAM's decoder runs once per
            compared box, the head's main cost: in open mode a target has (classes x
            queries) of them, and only its ``test_cfg.max_per_img`` best are kept.
        *args, **kwargs: :class:`ReferenceAwareDETRHead` arguments.
    """

    def __init__(self, *args, shape_dims: int = 256,
                 shape_hidden: Sequence[int] = (256, 128), shape_symmetry: str = 'none',
                 shape_top_k: Optional[int] = None, shape_kshot: str = 'mean',
                 **kwargs) -> None:
        if shape_symmetry not in ('none', 'd4'):
            raise ValueError(f"shape_symmetry must be 'none' or 'd4', got {shape_symmetry!r}")
        if shape_kshot not in ('mean', 'max'):
            raise ValueError(f"shape_kshot must be 'mean' or 'max', got {shape_kshot!r}")
        self.shape_kshot = shape_kshot
        if shape_top_k is not None and shape_top_k < 1:
            raise ValueError(f'shape_top_k must be None or >= 1, got {shape_top_k}')
        self.shape_top_k = shape_top_k
        self.shape_dims, self.shape_hidden = shape_dims, tuple(shape_hidden)
        self.shape_symmetry = shape_symmetry
        super().__init__(*args, **kwargs)
        self.query_shapes: Optional[QueryShapeEncoder] = None  # set by bind()
        self._shape_slot: Optional[int] = None  # index of the shape token of a reference

    def bind(self, sources: Sequence[nn.Module], token_slices: Sequence[Tuple[int, int]],
             decoder: nn.Module, input_size: int) -> None:
        """Find the :class:`ShapeToken` among the detector's reference sources and make the
        queries' shape tokens with the same SAM decoder."""
        found = [sl for src, sl in zip(sources, token_slices) if isinstance(src, ShapeToken)]
        if not found or self.shape_dims != int(decoder.embed_dim):
            raise ValueError(f'{type(self).__name__} compares shape tokens: it needs '
                             "dict(type='ShapeToken') in the detector's reference_sources "
                             f'and shape_dims = the SAM prompt width {int(decoder.embed_dim)} '
                             f'(got {self.shape_dims})')
        self._shape_slot = found[0][0]
        self.query_shapes = QueryShapeEncoder(decoder, input_size)

    def _init_layers(self) -> None:
        super()._init_layers()
        hidden, out = self.shape_hidden
        self.shape_mlp = nn.Sequential(nn.Linear(self.shape_dims, hidden), nn.ReLU(inplace=True),
                                       nn.Linear(hidden, hidden), nn.ReLU(inplace=True),
                                       nn.Linear(hidden, out))
        self.shape_log_scale = nn.Parameter(torch.tensor(math.log(self.init_scale)))
        # a random MLP maps all outlines to nearly one direction (cos ~ 1): starting at
        # b' = -s' the term starts near 0 and learns to lower the score of a mismatch
        self.shape_bias = nn.Parameter(torch.tensor(-float(self.init_scale)))

    def embed_shapes(self, shapes: Tensor) -> Tensor:
        """phi: (..., D) shape tokens -> (..., out) (averaged over the 8 symmetries of
        the g x g grid with ``shape_symmetry='d4'``)."""
        if self.shape_symmetry == 'none':
            return self.shape_mlp(shapes)
        g = shape_grid(shapes.shape[-1])
        grid = shapes.reshape(*shapes.shape[:-1], g, g)
        views = [torch.rot90(m, k, dims=(-2, -1)) for m in (grid, grid.flip(-1))
                 for k in range(4)]
        return torch.stack([self.shape_mlp(v.flatten(-2)) for v in views]).mean(0)

    def shape_logits(self, query_shapes: Tensor,
                     ref_shapes: Tuple[Tensor, Tensor]) -> Tensor:
        """Shape-match logits (P, Q, 1).

        Args:
            query_shapes: (P, Q, D) shape tokens of the queries' masks.
            ref_shapes: the R references' shape tokens (R, D) and the pair of each (R,):
                a pair's embedding is the mean of its shots' embeddings
                (``shape_kshot='mean'``), or each query keeps its best shot (``'max'``).
        """
        shots, pair = ref_shapes
        q = F.normalize(self.embed_shapes(query_shapes), dim=-1)
        e = self.embed_shapes(shots)
        if self.shape_kshot == 'mean':
            e = F.normalize(group_mean(e, pair, len(query_shapes)), dim=-1)
            sim = torch.einsum('pqd,pd->pq', q, e)
        else:  # (R, Q) cosine of every shot with its pair's queries, best shot per pair
            sim = torch.einsum('rqd,rd->rq', q[pair], F.normalize(e, dim=-1))
            sim = group_max(sim, pair, len(query_shapes))
        return (self.shape_log_scale.exp() * sim + self.shape_bias)[..., None]

    def forward(self, hidden_states: Tensor, references: List[Tensor],
                pairs=None) -> Tuple[Tensor, Tensor]:
        """:meth:`ReferenceAwareDETRHead.forward`, the last layer's class scores (L, P, Q, 1)
        plus the shape-match logits.

        Reads from ``pairs``: ``shots`` (R, T', D) the tokens of every shot and
        ``shot_pair`` (R,) its pair (the shape token is the bound slot of each), and
        ``target_embedding``, ``img_idx``, ``img_shapes``, with which SAM segments the last
        layer's boxes of the ``shape_top_k`` best queries of each target.
        """
        cls, coords = super().forward(hidden_states, references, pairs)
        if self.query_shapes is None:
            raise ValueError('ShapeAwareDETRHead is not bound to a detector\'s SAM: use it '
                             'inside InSAMDETR (which calls bind())')
        if pairs.target_embedding is None:
            raise ValueError('the shape-aware head segments every query with SAM, which '
                             'needs the SAM embedding; this feature cache does not store '
                             'it: rebuild it with --with-embedding')
        tokens, kept = self.query_shapes(
            pairs.target_embedding, coords[-1].detach(), pairs.img_idx, pairs.img_shapes,
            scores=cls[-1, ..., 0].detach(), top_k=self.shape_top_k)
        ref_shapes = (pairs.shots[:, self._shape_slot].float(), pairs.shot_pair)
        term = self.shape_logits(tokens, ref_shapes)
        if self.shape_top_k is not None:  # the others: the lowest term, no gradient
            floor = (self.shape_bias - self.shape_log_scale.exp()).detach()
            term = torch.where(kept[..., None], term, floor)
        return torch.cat([cls[:-1], (cls[-1] + term)[None]]), coords
