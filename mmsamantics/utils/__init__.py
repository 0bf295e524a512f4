from .checkpoint import (MissingResourceError, load_state_dict_file, load_strict,
                         register_checkpoint_safe_globals)
from .config_paths import load_config
from .frozen import freeze
from .images import fill_box, load_image_checked, load_resized, preprocess_images, rescale
from .rle import decode_coco_mask, decode_mask, encode_mask, masks_to_rle

__all__ = ['MissingResourceError', 'load_state_dict_file', 'load_strict',
           'register_checkpoint_safe_globals', 'load_config', 'freeze', 'decode_coco_mask',
           'decode_mask', 'encode_mask', 'masks_to_rle', 'fill_box',
           'load_image_checked', 'load_resized', 'preprocess_images', 'rescale']
