"""Fixtures of the probing tests: a small toy classification set; mmdet scope restored."""
import uuid

import pytest
from mmengine.registry import DefaultScope


@pytest.fixture(scope='session')
def toy_cls_root(tmp_path_factory):
    """12 classes x (4 train, 2 val) images of 64 px."""
    from mmsamantics_toy.toy_classification import make_toy_classification
    root = str(tmp_path_factory.mktemp('toy_cls'))
    make_toy_classification(root, seed=0, num_train=4, num_val=2)
    return root


@pytest.fixture(autouse=True)
def _restore_mmdet_scope():
    """Probe runs make 'mmpretrain' the current default scope; the rest of the suite
    builds from mmdet's registries, so put 'mmdet' back after every test."""
    yield
    current = DefaultScope.get_current_instance()
    if current is None or current.scope_name != 'mmdet':
        DefaultScope.get_instance(f'mmdet-{uuid.uuid4().hex}', scope_name='mmdet')
