from .control_report import (control_markdown, control_summary, control_tables,
                             derived_control_summaries, per_class, split_derived)
from .fss_miou_metric import FewShotSegMetric
from .in_context_coco_metric import InContextCocoMetric
from .kshot import apply_reference_options, control_deltas, enable_classwise, summarize

__all__ = ['InContextCocoMetric', 'FewShotSegMetric', 'apply_reference_options', 'summarize',
           'control_deltas', 'enable_classwise', 'control_summary', 'control_markdown',
           'control_tables', 'derived_control_summaries', 'per_class', 'split_derived']
