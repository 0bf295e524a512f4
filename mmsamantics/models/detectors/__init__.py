from .insam_detr import InSAMDETR, ReferencePairs

__all__ = ['InSAMDETR', 'ReferencePairs']
