from .fss_miou_metric import FewShotSegMetric
from .in_context_coco_metric import InContextCocoMetric
from .kshot import apply_reference_options, control_deltas, summarize

__all__ = ['InContextCocoMetric', 'FewShotSegMetric', 'apply_reference_options', 'summarize',
           'control_deltas']
