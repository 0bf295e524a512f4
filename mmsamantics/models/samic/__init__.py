"""SAMIC: an HSNet saliency prompter that places SAM point prompts (Nagendra et al., §3)."""
from .conv4d import CenterPivotConv4d, interpolate_4d
from .correlation import cosine_correlation, hypercorrelation_pyramid, mask_features
from .feature_extractor import SAMICResNetFeatures
from .hsnet import HSNetPrompter, crop_resize
from .hsnet_learner import Conv4dBlock, HSNetLearner
from .peaks import Peaks, extract_peaks
from .saliency_losses import SAMICSaliencyLoss, cc_loss, kld_loss, nss_loss

__all__ = ['CenterPivotConv4d', 'interpolate_4d', 'cosine_correlation',
           'hypercorrelation_pyramid', 'mask_features', 'SAMICResNetFeatures', 'HSNetPrompter',
           'crop_resize', 'Conv4dBlock', 'HSNetLearner', 'Peaks', 'extract_peaks',
           'SAMICSaliencyLoss', 'cc_loss', 'kld_loss', 'nss_loss']
