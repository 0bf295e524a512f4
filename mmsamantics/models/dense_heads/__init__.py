from .in_context_detr_head import InContextDETRHead
from .reference_aware_detr_head import ReferenceAwareDETRHead
from .shape_aware_detr_head import ShapeAwareDETRHead

__all__ = ['InContextDETRHead', 'ReferenceAwareDETRHead', 'ShapeAwareDETRHead']
