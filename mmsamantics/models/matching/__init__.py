from .crop_features import crop_region_features
from .mask_ops import mask_iou, mask_nms, masks_to_boxes
from .prototypes import class_prototypes, cosine_scores, grid_weights, weighted_token_average
from .sam_grid_proposals import SAMGridProposals

__all__ = ['mask_iou', 'mask_nms', 'masks_to_boxes', 'grid_weights', 'weighted_token_average',
           'class_prototypes', 'cosine_scores', 'crop_region_features', 'SAMGridProposals']
