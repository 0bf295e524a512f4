"""Shared fixtures: a small toy world and the toy config pointed at it."""
import os

import pytest

# one thread per pytest-xdist worker (`make test` runs two on two cores), two without xdist
if os.environ.get('PYTEST_XDIST_WORKER'):
    os.environ['OMP_NUM_THREADS'] = '1'
    os.environ['MKL_NUM_THREADS'] = '1'
else:
    os.environ.setdefault('OMP_NUM_THREADS', '2')


@pytest.fixture(scope='session')
def toy_root(tmp_path_factory):
    from mmsamantics_toy.toy_world import make_toy_world
    root = str(tmp_path_factory.mktemp('toy_world'))
    make_toy_world(root, seed=0, num_train=32, num_val=8)
    return root


@pytest.fixture(scope='session', autouse=True)
def _mmdet_scope():
    from mmengine.registry import init_default_scope
    import mmsamantics  # noqa: F401
    init_default_scope('mmdet')


def pytest_collection_modifyitems(config, items):
    """Modules with end-to-end tests first (the long ones start while the short ones fill the
    other worker; each module's tests keep their order). Tests marked ``gpu`` need CUDA:
    skipped without it (tools/gpu_selfcheck.sh runs them)."""
    import torch
    def module(item) -> str:
        return getattr(getattr(item, 'module', None), '__name__', '')
    heavy = {module(item) for item in items if 'e2e' in item.keywords}
    items.sort(key=lambda item: module(item) not in heavy)
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason='needs a CUDA GPU (tools/gpu_selfcheck.sh runs these)')
    for item in items:
        if 'gpu' in item.keywords:
            item.add_marker(skip)
