"""mmengine's Runner, minus one trap: a config that carries an evaluation switch (a reference
control, a subset of queried classes, one shot) is never dumped under the config's own name.

mmengine dumps the config of every run into its work dir as ``<config name>.py``. A control
run's config holds ``ref_control`` in its test dataset; dumped as ``<config name>.py`` beside
a checkpoint, it looks like the config of that checkpoint, and whoever evaluates with it gets
the control's wrong references. :class:`InContextRunner` dumps it as
``<config name>.control-<control>.py`` instead (``.query-classes`` for a class subset,
``.shot-<i>`` for one shot of a k-shot draw); a
normal run's config keeps its name. Every tool builds its runner with :func:`build_runner`.
"""
import os.path as osp
import re
from typing import Dict, Iterator

from mmengine.config import Config
from mmengine.dist import master_only
from mmengine.runner import Runner

from mmdet.registry import RUNNERS
from ..datasets.reference_controls import normalize_control

SWITCH_LOADERS = ('test_dataloader', 'val_dataloader')
SUFFIX = re.compile(r'(\.control-[\w-]+|\.query-classes|\.shot-\d+)+$')


def _datasets(loader) -> Iterator[dict]:
    """The dataset dicts of a dataloader config, wrapped ones included."""
    ds = (loader or {}).get('dataset') if isinstance(loader, dict) else None
    while isinstance(ds, dict):
        yield ds
        inner = ds.get('datasets')
        for d in inner if isinstance(inner, (list, tuple)) else []:
            yield from _datasets(dict(dataset=d))
        ds = ds.get('dataset')


def evaluation_switches(cfg: Config) -> Dict[str, str]:
    """The evaluation switches a config carries: ``{'control': 'cyclic'}``,
    ``{'query-classes': '3'}``, ``{'shot': '2'}``... (empty for a normal evaluation)."""
    out: Dict[str, str] = {}
    for name in SWITCH_LOADERS:
        for ds in _datasets(cfg.get(name)):
            control = normalize_control(ds.get('ref_control'))
            if control is not None:
                out['control'] = control
            if ds.get('query_classes') is not None:
                out['query-classes'] = str(len(ds['query_classes']))
            if ds.get('shot_index') is not None:
                out['shot'] = str(ds['shot_index'])
    return out


def switch_suffix(cfg: Config) -> str:
    """``'.control-cyclic'`` (and ``'.query-classes'``, ``'.shot-2'``) for a config with
    switches, else ''."""
    sw = evaluation_switches(cfg)
    parts = [f'control-{sw["control"]}'] if 'control' in sw else []
    parts += ['query-classes'] if 'query-classes' in sw else []
    parts += [f'shot-{sw["shot"]}'] if 'shot' in sw else []
    return ''.join(f'.{p}' for p in parts)


@RUNNERS.register_module()
class InContextRunner(Runner):
    """:class:`mmengine.runner.Runner` that dumps a config carrying an evaluation switch
    under a name that says so (module docstring)."""

    @master_only
    def dump_config(self) -> None:
        # a config loaded from a control's dump names its switches; they are named anew
        stem = (SUFFIX.sub('', osp.splitext(osp.basename(self.cfg.filename))[0])
                if self.cfg.filename else self.timestamp)
        self.cfg.dump(osp.join(self.work_dir, f'{stem}{switch_suffix(self.cfg)}.py'))


def build_runner(cfg: Config) -> Runner:
    """The tools' runner: the config's ``runner_type`` when it names one (as mmdet's tools
    do), else :class:`InContextRunner`."""
    if 'runner_type' in cfg:
        return RUNNERS.build(cfg)
    return InContextRunner.from_cfg(cfg)
