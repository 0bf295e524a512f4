"""Label-free pretraining of the toy encoders, made the way the real ones were made.

- toy SAM: MAE on the image encoder (:mod:`.mae`), then class-agnostic promptable
  segmentation (:mod:`.promptable_sam`), as SAM's encoder was initialised from MAE;
- toy DINOv2: DINOv2's self-distillation (DINO multi-crop + iBOT masked patches + KoLeo;
  :mod:`.dino`, :mod:`.toy_dinov2`);
- toy HQ-SAM: HQ-SAM's new decoder parts trained on top of the frozen toy SAM
  (:mod:`.hq_sam`);
- toy SAM 3: a contrastive Perception Encoder on image captions (:mod:`.contrastive_pe`),
  then SAM 3's SAM 1-task mask path on class-agnostic prompts (:mod:`.promptable_sam3`).

No stage reads a box or mask label with its class: the self-supervised stages read image
files only (:mod:`.image_folder`), the promptable stages map every category id to one
``object`` class on loading, and the contrastive stage reads image-level captions (class
names and counts, as SAM 3's image-text pairs), never a box or mask as a target.
"""
from .contrastive_pe import image_caption, pretrain_toy_sam3_pe
from .dino import DINOHead, DINOLoss, MultiCrop, cosine_momentum, ema_update
from .hq_sam import pretrain_toy_hq_sam
from .mae import MaskedImageModel, patchify, pretrain_sam_encoder_mae, random_patch_mask
from .promptable_sam import class_agnostic_coco, pretrain_toy_sam
from .promptable_sam3 import pretrain_toy_sam3
from .toy_dinov2 import pretrain_toy_dinov2

__all__ = ['DINOHead', 'DINOLoss', 'MultiCrop', 'cosine_momentum', 'ema_update',
           'MaskedImageModel', 'patchify', 'pretrain_sam_encoder_mae', 'random_patch_mask',
           'class_agnostic_coco', 'pretrain_toy_sam', 'pretrain_toy_dinov2',
           'pretrain_toy_hq_sam', 'image_caption', 'pretrain_toy_sam3_pe', 'pretrain_toy_sam3']
