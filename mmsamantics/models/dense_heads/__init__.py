from .reference_aware_detr_head import ReferenceAwareDETRHead
from .shape_aware_detr_head import ShapeAwareDETRHead

__all__ = ['ReferenceAwareDETRHead', 'ShapeAwareDETRHead']
