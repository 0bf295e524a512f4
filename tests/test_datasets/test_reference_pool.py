"""The serialized reference pool: the dicts it was given, one new copy per access."""
import pickle

import numpy as np
import pytest

from mmsamantics.datasets.reference_pool import ReferencePool


def refs(n=5):
    return [dict(img_path=f'train/{i:03d}.jpg', img_id=i, bbox=[i, 2.0, i + 5.5, 9.0],
                 label=3, key=f'ann.json:{100 + i}', segmentation=[[i, 2, i + 5, 2, i + 5, 9]],
                 img_hw=(240, 320)) for i in range(n)]


def test_pool_gives_back_each_reference():
    pool = ReferencePool(refs())
    assert len(pool) == 5 and bool(pool) and not ReferencePool([])
    assert list(pool) == refs() and pool[3] == refs()[3] and pool[-1] == refs()[4]
    assert pool[np.int64(2)] == refs()[2]  # indices drawn by numpy
    assert pool == refs() and pool != refs()[:4]
    with pytest.raises(IndexError, match='reference 5 of a pool of 5'):
        pool[5]


def test_a_drawn_reference_is_a_copy():
    pool = ReferencePool(refs())
    r = pool[1]
    r['bbox'][0] = -1.0
    r['flip'] = True
    assert pool[1] == refs()[1]


def test_pool_pickles_for_dataloader_workers():
    pool = pickle.loads(pickle.dumps(ReferencePool(refs())))
    assert list(pool) == refs()
