"""A diagnostic InSAM-DETR whose reference is a learned code per class label.

It measures what the paper's conditioning path (Espinosa et al. §5: the reference embedding
added to the content queries) can do with a perfect class identity: the upper bound of what
any reference encoder could give the decoder. It is never a way to run on new classes (a
code exists for the training labels only), so it lives with the analyses, not the models.
"""
from typing import Optional, Tuple

from torch import Tensor, nn

from mmdet.registry import MODELS
from ..models.detectors import InSAMDETR


@MODELS.register_module()
class ClassCodeInSAMDETR(InSAMDETR):
    """:class:`InSAMDETR` whose pair embedding is the learned code of the pair's class
    (no reference is encoded).

    Args:
        num_class_codes: number of labels (the dataset's classes).
        *args, **kwargs: :class:`InSAMDETR` arguments.
    """

    def __init__(self, *args, num_class_codes: int, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if num_class_codes < 1:
            raise ValueError(f'num_class_codes must be >= 1 (the dataset\'s classes), got '
                             f'{num_class_codes}')
        self.class_codes = nn.Embedding(num_class_codes, self.embed_dims)

    def pair_embeddings(self, refs, pairs: Tensor, inverse: Tensor
                        ) -> Tuple[Optional[Tensor], Tensor]:
        """No shot tokens; (P, E) the codes of the pairs' classes (``pairs[:, 1]``)."""
        return None, self.class_codes(pairs[:, 1])
