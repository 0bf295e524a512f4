from .presets import SAM_CHECKPOINT_URLS, SAM_PRESETS, get_preset
from .sam_prompt_decoder import SAMPromptDecoder

__all__ = ['SAM_PRESETS', 'SAM_CHECKPOINT_URLS', 'get_preset', 'SAMPromptDecoder']
