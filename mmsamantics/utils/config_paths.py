"""Config files whose paths mean the same from any working folder.

The project's configs name their weights and data with paths relative to the project:
``checkpoints/sam_vit_b_01ec64.pth``, ``data/coco/``. :func:`load_config` resolves every such
path written in a config file (a string starting with ``data/`` or ``checkpoints/``) so that
it means the same wherever the tool is started:

1. ``MMSAM_DATA_ROOT`` / ``MMSAM_CHECKPOINT_ROOT``, when set, replace the ``data/`` /
   ``checkpoints/`` folder (``data/coco/`` -> ``$MMSAM_DATA_ROOT/coco/``);
2. otherwise the first folder that has the path: the working folder (the path stays as
   written), the project of the config file (the folder above its ``configs/`` folder),
   then the checkout this package runs from;
3. a path that none has stays as written, and the tools' missing-file messages name the
   folders it was looked up in.

Paths given on the command line (``--cfg-options``, arguments) are the user's: they are
merged after this and keep their meaning relative to the working folder.

A config may also be named the OpenMMLab way, ``PACKAGE::RELATIVE/PATH.py``
(``mmsamantics::insam_detr_coco.py``, ``mmdet::faster_rcnn/...``): the file in the
installed package's ``.mim/configs`` folder.
"""
import os
import os.path as osp
from typing import Any, List, Optional, Sequence

from mmengine.config import Config

from .checkpoint import PROJECT_ROOT

# the project's two resource folders and the environment variables that replace them
RESOURCE_FOLDERS = {'data/': 'MMSAM_DATA_ROOT', 'checkpoints/': 'MMSAM_CHECKPOINT_ROOT'}


def config_project_root(config_path: str) -> Optional[str]:
    """The project of a config file: the folder above the nearest ``configs/`` folder that
    holds it (``None`` for a file outside any ``configs/`` folder)."""
    folder = osp.dirname(osp.realpath(config_path))  # through .mim/configs links
    while True:
        if osp.basename(folder) == 'configs':
            return osp.dirname(folder)
        parent = osp.dirname(folder)
        if parent == folder:
            return None
        folder = parent


def search_roots(config_path: Optional[str] = None) -> List[str]:
    """The folders a project-relative path is looked up in, in order (no duplicates)."""
    roots = [os.getcwd()]
    project = config_project_root(config_path) if config_path else None
    for root in (project, PROJECT_ROOT):
        if root and osp.abspath(root) not in roots:
            roots.append(osp.abspath(root))
    return roots


def resolve_project_path(value: Any, roots: Sequence[str]) -> Any:
    """``value`` resolved as described in the module's docstring when it is a string that
    starts with ``data/`` or ``checkpoints/``; any other value unchanged."""
    if not isinstance(value, str):
        return value
    for prefix, env in RESOURCE_FOLDERS.items():
        if not value.startswith(prefix):
            continue
        override = os.environ.get(env)
        if override:
            return osp.join(osp.expanduser(override), value[len(prefix):])
        for root in roots:
            if osp.exists(osp.join(root, value)):
                return value if root == os.getcwd() else osp.join(root, value)
        return value
    return value


def _resolve(node: Any, roots: Sequence[str]) -> Any:
    if isinstance(node, dict):
        for k in list(node.keys()):
            node[k] = _resolve(node[k], roots)
        return node
    if isinstance(node, list):
        return [_resolve(v, roots) for v in node]
    if isinstance(node, tuple):
        return tuple(_resolve(v, roots) for v in node)
    return resolve_project_path(node, roots)


def package_config_path(path: str) -> str:
    """The file of an OpenMMLab-style config name ``PACKAGE::RELATIVE/PATH.py``.

    Raises:
        FileNotFoundError: the package is not installed, or has no such config (naming the
            folder looked in and how to create it).
    """
    from mmengine.config.utils import MODULE2PACKAGE
    from mmengine.utils import get_installed_path, is_installed
    package, _, rel = path.partition('::')
    installed = MODULE2PACKAGE.get(package, package)  # how mmengine locates it
    if not is_installed(installed):
        raise FileNotFoundError(f'config {path!r}: the package {package!r} is not installed')
    folder = osp.join(get_installed_path(installed), '.mim', 'configs')
    found = osp.join(folder, rel)
    if not osp.isfile(found):
        fix = (' (re-install this package with `pip install -e .` from its checkout: that '
               'links its configs there)' if package == 'mmsamantics' and not osp.isdir(folder)
               else '')
        raise FileNotFoundError(f'config {path!r} not found: no {rel!r} in {folder!r}{fix}')
    return found


def load_config(path: str, cfg_options: Optional[dict] = None) -> Config:
    """``Config.fromfile(path)`` with its project-relative paths resolved (see the module's
    docstring), then ``cfg_options`` merged as given. ``path`` may be a
    ``PACKAGE::RELATIVE/PATH.py`` name.

    Raises:
        FileNotFoundError: ``path`` does not exist (naming the working folder).
    """
    if '::' in path:
        path = package_config_path(path)
    if not osp.isfile(path):
        raise FileNotFoundError(f'config file not found: {path!r} (looked up from the working '
                                f'folder {os.getcwd()!r})')
    cfg = Config.fromfile(path)
    _resolve(cfg._cfg_dict, search_roots(path))
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    return cfg
