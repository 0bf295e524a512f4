from .in_context_coco_metric import InContextCocoMetric
from .kshot import apply_reference_options, summarize

__all__ = ['InContextCocoMetric', 'apply_reference_options', 'summarize']
