from .reference_aware_detr_head import ReferenceAwareDETRHead

__all__ = ['ReferenceAwareDETRHead']
