"""Helpers of the probing tests (a uniquely named module: every test folder has a conftest)."""
import importlib.util
import os.path as osp

import numpy as np
from mmengine.config import Config

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PROBE_CONFIGS = osp.join(REPO, 'configs', 'linear_probe')
TOY = {k: osp.join(PROBE_CONFIGS, f'linear-probe_{k}_1xb16-10e_toy-cls.py')
       for k in ('sam-tiny', 'sam2-tiny', 'clip-tiny', 'dinov2-tiny')}


def toy_probe_cfg(kind: str, root: str, epochs: int = 2, **options) -> Config:
    """Toy probe config ``kind`` on ``root``, ``epochs`` long, one checkpoint at the end."""
    cfg = Config.fromfile(TOY[kind])
    opts = {'train_dataloader.dataset.data_root': root,
            'val_dataloader.dataset.data_root': root,
            'test_dataloader.dataset.data_root': root,
            'train_cfg.max_epochs': epochs,
            'default_hooks.checkpoint.interval': epochs,
            'default_hooks.logger.interval': 1}
    opts.update(options)
    cfg.merge_from_dict(opts)
    return cfg


def numpy_topk(scores: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Percentage of rows whose label is among the k highest scores."""
    top = np.argsort(-scores, axis=1, kind='stable')[:, :k]
    return 100.0 * float(np.mean([labels[i] in top[i] for i in range(len(labels))]))


def load_tool(name: str):
    """``tools/analysis/<name>.py`` as a module (its ``main(argv)`` runs in-process)."""
    path = osp.join(REPO, 'tools', 'analysis', f'{name}.py')
    spec = importlib.util.spec_from_file_location(f'probe_tool_{name}', path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
