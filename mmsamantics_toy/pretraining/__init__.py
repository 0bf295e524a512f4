"""Label-free pretraining of the toy encoders, made the way the real ones were made.

- toy SAM: MAE on the image encoder (:mod:`.mae`), then class-agnostic promptable
  segmentation (:mod:`.promptable_sam`), as SAM's encoder was initialised from MAE;
- toy DINOv2: DINOv2's self-distillation (DINO multi-crop + iBOT masked patches + KoLeo;
  :mod:`.dino`, :mod:`.toy_dinov2`);
- toy HQ-SAM: HQ-SAM's new decoder parts trained on top of the frozen toy SAM
  (:mod:`.hq_sam`).

No stage reads a class label: the self-supervised stages read image files only
(:mod:`.image_folder`), and the promptable stage maps every category id to one ``object``
class on loading.
"""
from .dino import DINOHead, DINOLoss, MultiCrop, cosine_momentum, ema_update
from .hq_sam import pretrain_toy_hq_sam
from .mae import MaskedImageModel, patchify, pretrain_sam_encoder_mae, random_patch_mask
from .promptable_sam import class_agnostic_coco, pretrain_toy_sam
from .toy_dinov2 import pretrain_toy_dinov2

__all__ = ['DINOHead', 'DINOLoss', 'MultiCrop', 'cosine_momentum', 'ema_update',
           'MaskedImageModel', 'patchify', 'pretrain_sam_encoder_mae', 'random_patch_mask',
           'class_agnostic_coco', 'pretrain_toy_sam', 'pretrain_toy_dinov2',
           'pretrain_toy_hq_sam']
