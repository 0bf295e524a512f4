from .insam_detr import InSAMDETR
from .insam_detr_pairs import ReferencePairs
from .persam import PerSAM
from .sam_dinov2_matcher import SAMDINOv2Matcher
from .samic import SAMIC

__all__ = ['InSAMDETR', 'ReferencePairs', 'PerSAM', 'SAMDINOv2Matcher', 'SAMIC']
