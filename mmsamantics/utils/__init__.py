from .checkpoint import (MissingResourceError, load_state_dict_file, load_strict,
                         register_checkpoint_safe_globals)
from .frozen import freeze
from .images import (decode_coco_mask, fill_box, load_image_checked, load_resized,
                     preprocess_images, rescale)

__all__ = ['MissingResourceError', 'load_state_dict_file', 'load_strict',
           'register_checkpoint_safe_globals', 'freeze', 'decode_coco_mask', 'fill_box',
           'load_image_checked', 'load_resized', 'preprocess_images', 'rescale']
