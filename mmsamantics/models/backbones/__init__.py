from .sam2_image_encoder import SAM2ImageEncoder
from .sam_image_encoder import SAMImageEncoder

__all__ = ['SAMImageEncoder', 'SAM2ImageEncoder']
