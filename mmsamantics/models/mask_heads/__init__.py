from .sam_box_prompt_mask_head import SAMBoxPromptMaskHead

__all__ = ['SAMBoxPromptMaskHead']
