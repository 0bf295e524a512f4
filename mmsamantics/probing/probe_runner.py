"""Run one linear probe (mmengine ``Runner`` on an mmpretrain config) and report top-1/5."""
import copy
import os.path as osp
import time
import uuid
from typing import Optional

import torch
from mmengine.config import Config
from mmengine.runner import Runner

from .feature_cache import build_feature_caches, cached_probe_config
from .preflight import check_probe_resources

AMP_CHOICES = ('auto', 'on', 'off')


def resolve_amp(amp: str) -> bool:
    """``'auto'``: fp16 AMP exactly when a GPU is present (the paper trained in fp16);
    ``'on'`` without a GPU is an error (CPU fp16 autocast is slow and not what the paper
    measured)."""
    if amp not in AMP_CHOICES:
        raise ValueError(f'amp must be one of {AMP_CHOICES}, got {amp!r}')
    if amp == 'on' and not torch.cuda.is_available():
        raise ValueError('--amp on needs a CUDA GPU (fp16 mixed precision); use --amp auto '
                         'or off on CPU')
    return amp == 'on' or (amp == 'auto' and torch.cuda.is_available())


def apply_amp(cfg: Config) -> None:
    """Switch the config's optimiser wrapper to fp16 ``AmpOptimWrapper`` (dynamic scale)."""
    cfg.optim_wrapper.type = 'AmpOptimWrapper'
    cfg.optim_wrapper.dtype = 'float16'
    cfg.optim_wrapper.loss_scale = 'dynamic'


def run_linear_probe(cfg: Config,
                     work_dir: str,
                     cache: bool = False,
                     amp: str = 'auto',
                     rebuild_cache: bool = False,
                     name: Optional[str] = None) -> dict:
    """Train the linear head of probe config ``cfg`` and validate after every epoch.

    Args:
        cfg: a probe config (``configs/linear_probe/*.py``), already merged with overrides.
        work_dir: the run's folder (mmengine logs, ``vis_data/scalars.json``,
            ``feature_cache/`` when ``cache``).
        cache: encode every image once with the frozen encoder, then train the head on the
            stored features (:mod:`.feature_cache`).
        amp: ``'auto'`` / ``'on'`` / ``'off'`` (see :func:`resolve_amp`).
        rebuild_cache: re-encode even when a matching cache exists.
        name: label of the run in tables and plots (default: the work dir's name).

    Returns:
        ``dict(name, family, top1, top5, epochs, cache, amp, feature_dim, encode_time_s,
        train_time_s, log_dir, scalars)``; accuracies in percent, from the last
        validation (after the last epoch).
    """
    check_probe_resources(cfg)
    cfg_in, cfg = cfg, copy.deepcopy(cfg)
    cfg.work_dir = work_dir
    name = name or osp.basename(osp.normpath(work_dir))
    use_amp = resolve_amp(amp)
    if use_amp:
        apply_amp(cfg)
    t0 = time.time()
    feature_dim = None
    if cache:
        device = 'cuda' if torch.cuda.is_available() else 'cpu'
        files = build_feature_caches(cfg, osp.join(work_dir, 'feature_cache'), device,
                                     use_amp, rebuild_cache)
        cfg = cached_probe_config(cfg, files)
        feature_dim = cfg.model.backbone.in_channels
    encode_s = time.time() - t0
    # a unique experiment name: mmengine keys its logger/visualizer singletons on it, and
    # two probes started in the same second would otherwise share one log
    cfg.experiment_name = f'{name}_{uuid.uuid4().hex[:6]}'
    runner = Runner.from_cfg(cfg)
    runner.train()
    hub = runner.message_hub
    missing = [k for k in ('val/accuracy/top1', 'val/accuracy/top5')
               if k not in hub.log_scalars]
    if missing:
        raise RuntimeError(f'no validation result {missing}: the config needs val_cfg, a '
                           'val_dataloader and val_evaluator=Accuracy(topk=(1, 5))')
    if feature_dim is None:
        feature_dim = getattr(runner.model.backbone, 'out_channels', None)
    return dict(name=name, family=backbone_family(cfg_in.model.backbone),
                top1=float(hub.get_scalar('val/accuracy/top1').current()),
                top5=float(hub.get_scalar('val/accuracy/top5').current()),
                epochs=int(cfg.train_cfg.max_epochs), cache=cache, amp=use_amp,
                feature_dim=feature_dim, encode_time_s=round(encode_s, 2),
                train_time_s=round(time.time() - t0 - encode_s, 2), log_dir=runner.log_dir,
                scalars=osp.join(runner.log_dir, 'vis_data', 'scalars.json'))


# paper Table 1 (ImageNet-1k, top-1 / top-5 %), for the results table; SAM 3 is newer than
# the paper and has no published number
PAPER_TABLE1 = {'SAM': (11.06, 25.37), 'SAM 2': (23.16, 44.44), 'CLIP': (73.92, 92.89),
                'DINOv2': (77.43, 93.78)}
# the family of each SAM-family probe backbone type (timm ones are named by their model)
SAM_FAMILIES = {'SAMProbeBackbone': 'SAM', 'SAM2ProbeBackbone': 'SAM 2',
                'SAM3ProbeBackbone': 'SAM 3'}


def backbone_family(backbone_cfg: dict) -> Optional[str]:
    """``'SAM'`` / ``'SAM 2'`` / ``'SAM 3'`` / ``'CLIP'`` / ``'DINOv2'`` for a probe
    backbone config."""
    kind = str(backbone_cfg.get('type', '')).split('.')[-1]
    if kind in SAM_FAMILIES:
        return SAM_FAMILIES[kind]
    name = str(backbone_cfg.get('model_name', ''))
    return 'CLIP' if 'clip' in name else 'DINOv2' if 'dinov2' in name else None


def format_results_table(results) -> str:
    """A markdown table of :func:`run_linear_probe` results, with paper Table 1 beside."""
    rows = ['| run | family | feat. dim | top-1 (%) | top-5 (%) | epochs | cache | AMP | '
            'encode (s) | train (s) | paper IN-1k top-1 / top-5 |',
            '|---|---|---:|---:|---:|---:|---|---|---:|---:|---|']
    for r in results:
        paper = PAPER_TABLE1.get(r.get('family'))
        rows.append(f'| {r["name"]} | {r.get("family") or "-"} | {r.get("feature_dim")} | '
                    f'{r["top1"]:.2f} | {r["top5"]:.2f} | {r["epochs"]} | '
                    f'{"yes" if r["cache"] else "no"} | {"fp16" if r["amp"] else "off"} | '
                    f'{r["encode_time_s"]:.1f} | {r["train_time_s"]:.1f} | '
                    f'{"%.2f / %.2f" % paper if paper else "-"} |')
    return '\n'.join(rows) + '\n'
