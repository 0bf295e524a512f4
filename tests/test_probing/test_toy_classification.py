"""The toy classification folder data set: deterministic, ImageNet layout, readable by
mmpretrain's CustomDataset."""
import filecmp
import os.path as osp

import pytest
from mmengine.registry import DefaultScope

from mmsamantics_toy.toy_classification import (is_current_toy_classification,
                                                make_toy_classification,
                                                toy_classification_classes)


def test_layout_and_custom_dataset(toy_cls_root):
    from mmpretrain.registry import DATASETS
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        ds = DATASETS.build(dict(type='CustomDataset', data_root=toy_cls_root,
                                 data_prefix=dict(img_path='train'), pipeline=[]))
    assert list(ds.metainfo['classes']) == toy_classification_classes()
    assert len(toy_classification_classes()) == 12 and len(ds) == 12 * 4
    assert sorted(ds.get_gt_labels().tolist()) == sorted(list(range(12)) * 4)
    assert is_current_toy_classification(toy_cls_root, num_train=4, num_val=2)
    assert not is_current_toy_classification(toy_cls_root)  # default sizes differ


def test_deterministic_from_seed(tmp_path):
    kw = dict(num_train=2, num_val=1, classes=['red_star', 'blue_circle'])
    for name, seed in (('a', 0), ('b', 0), ('c', 1)):
        make_toy_classification(str(tmp_path / name), seed=seed, **kw)
    f = osp.join('train', 'red_star', '000001.png')
    assert filecmp.cmp(tmp_path / 'a' / f, tmp_path / 'b' / f, shallow=False)
    assert not filecmp.cmp(tmp_path / 'a' / f, tmp_path / 'c' / f, shallow=False)
    with pytest.raises(ValueError, match='unknown toy classes'):
        make_toy_classification(str(tmp_path / 'd'), classes=['purple_star'])
