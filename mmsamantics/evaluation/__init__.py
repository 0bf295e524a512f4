from .in_context_coco_metric import InContextCocoMetric

__all__ = ['InContextCocoMetric']
