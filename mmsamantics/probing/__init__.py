"""Linear probing of frozen SAM / SAM 2 / SAM 3 / CLIP / DINOv2 encoders on mmpretrain (paper
§4).

Importing this subpackage imports mmpretrain and registers the probe modules into
mmpretrain's registries; ``import mmsamantics`` alone does not (the detector side never
needs mmpretrain). Configs say ``custom_imports=dict(imports=['mmsamantics.probing'])`` and
``default_scope='mmpretrain'``.
"""
try:
    import mmpretrain  # noqa: F401
except ImportError as e:  # pragma: no cover - environment problem
    raise ImportError('mmsamantics.probing needs mmpretrain 1.x (pip install --no-deps '
                      f'mmpretrain==1.2.0, see README "Install"): {e}') from e

from .cached_feature_backbone import CachedFeatureBackbone  # noqa: E402
from .cached_feature_dataset import CachedFeatureDataset, load_feature_cache  # noqa: E402
from .feature_cache import (build_feature_caches, cached_probe_config,  # noqa: E402
                            encoder_fingerprint, extract_features, save_feature_cache)
from .frozen_pooled_backbone import FrozenPooledBackbone  # noqa: E402
from .preflight import check_probe_resources, missing_probe_resources  # noqa: E402
from .probe_curves import find_scalars, plot_curves, read_scalars, run_label  # noqa: E402
from .probe_runner import (PAPER_TABLE1, apply_amp, backbone_family,  # noqa: E402
                           format_results_table, resolve_amp, run_linear_probe)
from .sam2_probe_backbone import SAM2ProbeBackbone  # noqa: E402
from .sam3_probe_backbone import SAM3ProbeBackbone  # noqa: E402
from .sam_probe_backbone import SAMProbeBackbone  # noqa: E402
from .timm_probe_backbone import TimmProbeBackbone  # noqa: E402

__all__ = [
    'PAPER_TABLE1', 'backbone_family', 'format_results_table',
    'CachedFeatureBackbone', 'CachedFeatureDataset', 'FrozenPooledBackbone',
    'SAM2ProbeBackbone', 'SAM3ProbeBackbone', 'SAMProbeBackbone', 'TimmProbeBackbone',
    'apply_amp',
    'build_feature_caches', 'cached_probe_config', 'check_probe_resources',
    'encoder_fingerprint', 'extract_features', 'find_scalars', 'load_feature_cache',
    'missing_probe_resources', 'plot_curves', 'read_scalars', 'resolve_amp', 'run_label',
    'run_linear_probe', 'save_feature_cache'
]
