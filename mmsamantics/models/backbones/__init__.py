from .dinov2_encoder import DINOV2_CHECKPOINT_URLS, DINOV2_MODELS, DINOv2Encoder
from .sam2_image_encoder import SAM2ImageEncoder
from .sam3_image_encoder import SAM3ImageEncoder
from .sam_image_encoder import SAMImageEncoder
from .sam_vit_attention import SDPAAttention

__all__ = ['SAMImageEncoder', 'SAM2ImageEncoder', 'SAM3ImageEncoder', 'DINOv2Encoder',
           'DINOV2_MODELS', 'DINOV2_CHECKPOINT_URLS', 'SDPAAttention']
