from .hq_sam_prompt_decoder import (HQ_SAM_CHECKPOINT_URLS, HQSAMPromptDecoder,
                                    hq_checkpoint_hint)
from .presets import SAM_CHECKPOINT_URLS, SAM_PRESETS, get_preset
from .sam2_presets import SAM2_CHECKPOINT_URLS, SAM2_PRESETS, get_sam2_preset
from .sam2_prompt_decoder import SAM2PromptDecoder
from .sam3_prompt_decoder import SAM3PromptDecoder
from .sam_prompt_decoder import SAMPromptDecoder

__all__ = ['SAM_PRESETS', 'SAM_CHECKPOINT_URLS', 'get_preset', 'SAMPromptDecoder',
           'SAM2_PRESETS', 'SAM2_CHECKPOINT_URLS', 'get_sam2_preset', 'SAM2PromptDecoder',
           'SAM3PromptDecoder',
           'HQ_SAM_CHECKPOINT_URLS', 'HQSAMPromptDecoder', 'hq_checkpoint_hint']
