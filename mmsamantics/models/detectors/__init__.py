from .in_context_detector import InContextDetector
from .insam_detr import InSAMDETR
from .insam_detr_pairs import ReferencePairs
from .persam import PerSAM
from .sam_dinov2_matcher import SAMDINOv2Matcher
from .sam3_exemplar_detector import SAM3ExemplarDetector
from .samic import SAMIC

__all__ = ['InContextDetector', 'InSAMDETR', 'ReferencePairs', 'PerSAM', 'SAMDINOv2Matcher',
           'SAMIC', 'SAM3ExemplarDetector']
