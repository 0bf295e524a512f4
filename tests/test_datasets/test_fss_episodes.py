"""The few-shot episode loaders (PASCAL-5i, COCO-20i, FSS-1000) on the toy world exported
into each layout by tools/misc/export_toy_fss.py, and one clear error per bad input."""
import os
import os.path as osp
import shutil

import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO

from helpers import load_tool
from mmsamantics.datasets import (CocoTwentyIDataset, FSS1000Dataset, PascalFiveIDataset,
                                  decode_mask, toy_classes, toy_splits)
from mmsamantics.datasets.fss_episodes import EPISODE_KEY
from mmsamantics.datasets.pascal5i import read_label_png
from mmsamantics.utils import MissingResourceError
from mmsamantics_toy.toy_world import make_toy_world


@pytest.fixture(scope='module')
def fss_root(tmp_path_factory):
    """The three layouts of a small toy world (4 train / 32 val images: the tests read the val lists)."""
    root = tmp_path_factory.mktemp('toy_fss')
    make_toy_world(str(root / 'world'), seed=0, num_train=4, num_val=32)
    load_tool('tools/misc/export_toy_fss.py').main([str(root / 'world'), str(root / 'out')])
    return str(root / 'out')


def pascal(root, **kw):
    kw.setdefault('ann_file', 'ImageSets/Segmentation/val.txt')
    return PascalFiveIDataset(data_root=osp.join(root, 'pascal5i', 'VOC2012') + '/',
                              class_list='toy', pipeline=[], **kw)


def coco(root, **kw):
    return CocoTwentyIDataset(data_root=osp.join(root, 'coco20i') + '/',
                              ann_file='annotations/instances_val2014.json',
                              data_prefix=dict(img='val2014/'), pipeline=[], **kw)


def fss(root, **kw):
    kw.setdefault('ann_file', 'splits/test.txt')
    return FSS1000Dataset(data_root=osp.join(root, 'fss1000') + '/', pipeline=[], **kw)


def check_sample(ds, idx, png_value=None):
    """The sample's target, references and episode ground truth are the class's masks."""
    s = ds[idx]
    ep, ann = ds.get_data_info(idx), s[EPISODE_KEY]
    assert ep['query'] not in ep['supports'] and len(set(ep['supports'])) == ds.shots
    assert [r['key'] for r in s['references']] == [ds.records[i]['key'] for i in ep['supports']]
    assert {r['label'] for r in s['references']} == {ep['label']} == {ann['label']}
    gt, ignore = decode_mask(ann['gt']), decode_mask(ann['ignore'])
    if png_value is not None:  # PASCAL: class pixels, 255 ignored
        png = read_label_png(ds.records[ep['query']]['seg_path'])
        np.testing.assert_array_equal(gt, png == png_value(ep['label']))
        np.testing.assert_array_equal(ignore, png == 255)
    assert gt.any() and not (gt & ignore).any()
    x1, y1, x2, y2 = s['instances'][0]['bbox']
    ys, xs = np.nonzero(gt)
    assert (x1, y1, x2, y2) == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
    return s, gt, ignore


def test_pascal5i_fixed_episodes(fss_root):
    ds = pascal(fss_root, fold=1, num_episodes=40, shots=2)
    names = toy_classes()
    assert ds.metainfo['classes'] == names[3:6]  # fold 1 of 4 folds of 3: ids 4..6
    # the documented rule, replayed: class uniformly, query among its images, k others
    rng = np.random.default_rng(0)
    for e in range(40):
        lb = sorted(ds.per_class)[int(rng.integers(len(ds.per_class)))]
        imgs = ds.per_class[lb]
        q = imgs[int(rng.integers(len(imgs)))]
        others = [i for i in imgs if i != q]
        sup = [others[j] for j in rng.choice(len(others), 2, replace=False)]
        assert ds.get_data_info(e) | dict(sample_idx=e) == dict(
            label=lb, query=q, supports=sup, sample_idx=e)
    assert pascal(fss_root, fold=1, num_episodes=40, shots=2).get_data_info(7) == \
        ds.get_data_info(7)  # fixed: the same list on every build
    # every listed image with a pixel of the class is a candidate query, no other
    for lb in ds.per_class:
        value = names.index(ds.metainfo['classes'][lb]) + 1
        holders = [i for i, r in enumerate(ds.records)
                   if value in read_label_png(r['seg_path'])]
        assert ds.per_class[lb] == holders
    _, _, ignore = check_sample(ds, 0, lambda lb: 4 + lb)
    assert ignore.any()  # the exported boundary band
    train = pascal(fss_root, fold=1, mode='train', shots=1)  # any list: val has every class
    assert train.metainfo['classes'] == names[:3] + names[6:]
    assert len(train) == sum(len(v) for v in train.per_class.values())  # (image, class)

    def supports(epoch):
        train.set_epoch(epoch)
        return [train[i]['references'][0]['key'] for i in range(len(train))]
    first = supports(0)
    assert supports(0) == first and supports(1) != first  # drawn from (seed, epoch, index)


def test_pascal5i_reads_hsnet_lists(fss_root, tmp_path):
    """``stem__NN`` lines (HSNet's per-fold lists, grouped by class) name one class of an
    image each: a pair left out of the list is not an episode."""
    ds = pascal(fss_root, fold=0, num_episodes=5)
    i, a = next((i, a) for a, ix in ds.per_class.items() if len(ix) >= 3 for i in ix
                if any(i in ds.per_class[b] for b in ds.per_class if b != a))
    lines = [f'{ds.records[j]["key"]}__{lb + 1:02d}' for lb, ix in ds.per_class.items()
             for j in ix if (j, lb) != (i, a)]
    lst = tmp_path / 'fold0.txt'
    lst.write_text('\n'.join(lines) + '\n')
    one = pascal(fss_root, fold=0, num_episodes=5, ann_file=str(lst))
    key = {r['key']: j for j, r in enumerate(one.records)}
    got = {lb: {one.records[j]['key'] for j in ix} for lb, ix in one.per_class.items()}
    want = {lb: {ds.records[j]['key'] for j in ix if (j, lb) != (i, a)}
            for lb, ix in ds.per_class.items()}
    assert got == want and len(one.records) == len(key) == len(ds.records)


def test_coco20i_folds_and_masks(fss_root):
    ds = coco(fss_root, fold=2, num_episodes=12)
    assert ds.metainfo['classes'] == toy_classes()[2::4]  # {2 + 4k}
    api = COCO(osp.join(fss_root, 'coco20i/annotations/instances_val2014.json'))
    cat = {c['name']: c['id'] for c in api.cats.values()}
    for e in range(3):
        s, gt, ignore = check_sample(ds, e)
        ep = ds.get_data_info(e)
        rec = ds.records[ep['query']]
        anns = api.loadAnns(api.getAnnIds(
            imgIds=[rec['img_id']], catIds=[cat[ds.metainfo['classes'][ep['label']]]]))
        np.testing.assert_array_equal(gt, np.any([api.annToMask(a) for a in anns], 0))
        assert not ignore.any() and osp.isfile(s['img_path'])
    with pytest.raises(ValueError, match='unknown fold 4'):
        coco(fss_root, fold=4)


def test_fss1000_one_episode_per_image(fss_root):
    ds = fss(fss_root)
    classes = [c.replace(' ', '_') for c in toy_splits()['novel']]
    assert ds.metainfo['classes'] == classes
    pngs = [sorted(f for f in os.listdir(osp.join(fss_root, 'fss1000', c)) if f.endswith('.png'))
            for c in classes]
    assert len(ds) == sum(map(len, pngs))
    assert [ds.records[ds.get_data_info(e)['query']]['key'] for e in range(len(ds))] == [
        r['key'] for r in ds.records]
    s, gt, _ = check_sample(ds, 0)
    png = np.asarray(Image.open(ds.records[ds.get_data_info(0)['query']]['seg_path']))
    np.testing.assert_array_equal(gt, png > 127)


def test_bad_inputs(fss_root, tmp_path):
    with pytest.raises(MissingResourceError, match='split list not found'):
        pascal(fss_root, ann_file='ImageSets/Segmentation/nothing.txt')
    with pytest.raises(ValueError, match='unknown fold 5'):
        pascal(fss_root, fold=5)
    # a mask without its image
    voc = tmp_path / 'voc'
    shutil.copytree(osp.join(fss_root, 'pascal5i', 'VOC2012'), voc)
    stem = (voc / 'ImageSets/Segmentation/val.txt').read_text().split()[3]
    os.remove(voc / 'JPEGImages' / f'{stem}.jpg')
    with pytest.raises(FileNotFoundError, match=f'{stem}.png.* has no image'):
        PascalFiveIDataset(data_root=str(voc) + '/', ann_file='ImageSets/Segmentation/val.txt',
                           class_list='toy', pipeline=[])
    with pytest.raises(MissingResourceError, match='COCO-20i annotation file not found'):
        coco(str(tmp_path))
    # FSS-1000: a class folder without pairs, then a mask without its image
    root = tmp_path / 'fss'
    shutil.copytree(osp.join(fss_root, 'fss1000'), root)
    cls = (root / 'splits/test.txt').read_text().split()[0]
    shutil.rmtree(root / cls)
    (root / cls).mkdir()
    with pytest.raises(ValueError, match=f'{cls}.* has no jpg/png pair'):
        FSS1000Dataset(data_root=str(root) + '/', ann_file='splits/test.txt', pipeline=[])
    shutil.rmtree(root / cls)
    with pytest.raises(MissingResourceError, match=f'class folder of {cls!r}'):
        FSS1000Dataset(data_root=str(root) + '/', ann_file='splits/test.txt', pipeline=[])
    shutil.copytree(osp.join(fss_root, 'fss1000', cls), root / cls)
    os.remove(root / cls / '2.jpg')
    with pytest.raises(FileNotFoundError, match='2.png.* has no image'):
        FSS1000Dataset(data_root=str(root) + '/', ann_file='splits/test.txt', pipeline=[])
    with pytest.raises(MissingResourceError, match='FSS-1000 class list not found'):
        FSS1000Dataset(data_root=str(root) + '/', ann_file='splits/none.txt', pipeline=[])
