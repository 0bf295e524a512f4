"""What a reference source is: one kind of tokens that a frozen SAM makes of a reference box.

InSAM-DETR (Espinosa et al., §5.1, Fig. 2) encodes a reference as SAM's mask tokens for its
box; other sources add what those tokens drop (:class:`RegionTokens`, :class:`ShapeToken`).
A config lists the sources; the detector concatenates their tokens per reference in that
order and derives the token-merge MLP's input size from them, so a config never restates
it. A source is frozen (no parameters), so its tokens are cached and banked with the
detector's signature, which includes :attr:`ReferenceSource.name` of every source.

Shape shorthand: B images, R references, n tokens of a source, D SAM prompt width, S input
side.
"""
from typing import List, Optional, Sequence, Tuple

from torch import Tensor, nn


class ReferenceView:
    """What every source may read to make the tokens of R reference boxes.

    Attributes:
        levels: the SAM backbone's block outputs of the B images, each (B, C_l, h, w).
        embedding: their SAM embedding (B, D, h, w) (a tuple of tensors for SAM 2 / HQ-SAM).
        boxes: (R, 4) xyxy boxes in input pixels.
        rows: (R,) the image of each box among the B (box r on image r when None, B = R).
        decoder: the frozen SAM prompt decoder (:class:`SAMPromptDecoder` or alike).
        input_size: S, the side of SAM's square input.
        level_ids: the backbone's id of each level (its ``out_levels``, e.g. SAM 3's neck
            levels), for a source that reads one level by name; None when it has none.
    """

    def __init__(self, levels: Sequence[Tensor], embedding, boxes: Tensor,
                 rows: Optional[List[int]], decoder: nn.Module, input_size: int,
                 level_ids: Optional[Sequence[int]] = None) -> None:
        self.levels, self.embedding, self.boxes = list(levels), embedding, boxes
        self.rows, self.decoder, self.input_size = rows, decoder, int(input_size)
        self.level_ids = None if level_ids is None else list(level_ids)

    def level(self, level_id: int, needed_by: str) -> Tensor:
        """The (B, C, h, w) level the backbone calls ``level_id`` (a clear error when it
        does not return it)."""
        if self.level_ids is None or level_id not in self.level_ids:
            raise ValueError(f'{needed_by} reads backbone level {level_id}, but the backbone '
                             f'returns levels {self.level_ids}: add {level_id} to its '
                             'out_levels')
        return self.levels[self.level_ids.index(level_id)]

    @property
    def box_rows(self) -> List[int]:
        """(R,) the image of every box, explicit."""
        return list(range(len(self.boxes))) if self.rows is None else list(self.rows)


class ReferenceSource(nn.Module):
    """Base class: n tokens of width D per reference box.

    Subclasses set :attr:`name` (it enters the detector's signature) and define
    :meth:`num_tokens` and :meth:`forward`; they hold no trainable weights.
    """

    name = ''

    def num_tokens(self, level_channels: Sequence[int], decoder: nn.Module) -> int:
        """n, from the backbone's level channels and the SAM decoder (its width D)."""
        raise NotImplementedError

    def forward(self, view: ReferenceView) -> Tensor:
        """(R, n, D) tokens of the view's boxes."""
        raise NotImplementedError


def sources_name(sources: Sequence[ReferenceSource]) -> str:
    """The signature name of a list of sources (``'sam_tokens+regions+shape'``)."""
    return '+'.join(s.name for s in sources)


def token_slices(sources: Sequence[ReferenceSource], level_channels: Sequence[int],
                 decoder: nn.Module) -> List[Tuple[int, int]]:
    """The [start, end) token range of each source in the concatenated tokens."""
    out, start = [], 0
    for s in sources:
        n = s.num_tokens(level_channels, decoder)
        out.append((start, start + n))
        start += n
    return out
