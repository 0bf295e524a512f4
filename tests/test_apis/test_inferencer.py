"""InContextInferencer and tools/infer.py on the toy world with a random tiny SAM."""
import glob
import json
import os
import os.path as osp
import shutil
import subprocess
import sys

import mmcv
import numpy as np
import pytest
import torch
from mmcv.transforms import Compose
from mmengine.dataset import pseudo_collate

from helpers import (REPO, TOY_CONFIG, decode, load_tool, random_toy_checkpoint, toy_cfg,
                     toy_overrides, train_refs, val_images)
from mmsamantics.apis import CheckpointMismatchError, InContextInferencer, prompt_to_box


@pytest.fixture(scope='module')
def ckpt(toy_root, tmp_path_factory):
    """A full detector checkpoint with random weights (SAM included)."""
    return random_toy_checkpoint(toy_root, str(tmp_path_factory.mktemp('ckpt') / 'model.pth'))


@pytest.fixture(scope='module')
def inferencer(toy_root, ckpt):
    inf = InContextInferencer(toy_cfg(toy_root), ckpt, device='cpu')
    for path, name, box, _, _ in train_refs(toy_root)[0]:
        inf.add_reference(path, name, box=box)
    return inf


def test_api_equals_model_predict(inferencer, toy_root):
    inf, img = inferencer, val_images(toy_root)[0]
    refs, _ = train_refs(toy_root)
    assert inf.classes == [refs[0][1], refs[2][1]] and len(inf.references) == 4
    res = inf(img, score_thr=0.0, max_dets=1000, show_progress=False)[0]
    # the same image and references through the config's own test pipeline and predict
    label = {c: i for i, c in enumerate(inf.classes)}
    pipe = Compose(inf.cfg.test_dataloader.dataset.pipeline)
    data = pipe(dict(img_path=img, img_id=0, references=[
        dict(img_path=p, bbox=b, label=label[n], key=f'direct{i}')
        for i, (p, n, b, _, _) in enumerate(refs)]))
    data = inf.model.data_preprocessor(pseudo_collate([data]), False)
    with torch.no_grad():
        pred = inf.model.predict(data['inputs'], data['data_samples'])[0].pred_instances
    order = pred.scores.argsort(descending=True)
    pred = pred[order]
    assert len(res['scores']) == len(pred) > 0
    np.testing.assert_allclose(res['scores'], pred.scores.numpy(), atol=1e-4)
    np.testing.assert_allclose(res['boxes'], pred.bboxes.numpy(), atol=1e-2)
    assert res['labels'] == [inf.classes[i] for i in pred.labels.tolist()]
    masks = decode(res['masks'])
    assert masks.shape == tuple(pred.masks.shape)
    assert (masks == pred.masks.numpy()).mean() > 0.999
    # an array (BGR, as cv2/mmcv read it) gives the same as its path; a class subset
    arr = inf(mmcv.imread(img), score_thr=0.0, max_dets=1000, show_progress=False)[0]
    np.testing.assert_array_equal(arr['scores'], res['scores'])
    assert arr['img_path'] is None and res['img_path'] == img
    sub = inf(img, score_thr=0.0, classes=[inf.classes[1]], show_progress=False)[0]
    assert set(sub['labels']) == {inf.classes[1]}


def test_bank_round_trip_and_signature(inferencer, toy_root, ckpt, tmp_path):
    inf, imgs = inferencer, val_images(toy_root)[:3]
    bank = str(tmp_path / 'bank.pth')
    inf.save_bank(bank)
    before = inf(imgs, batch_size=2, score_thr=0.0, show_progress=False)
    other = InContextInferencer(toy_cfg(toy_root), ckpt, device='cpu')
    with pytest.raises(RuntimeError, match='no reference registered'):
        other(imgs[0], show_progress=False)
    other.load_bank(bank)
    assert other.classes == inf.classes and other.category_ids == inf.category_ids
    after = other(imgs, batch_size=2, score_thr=0.0, show_progress=False)
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a['boxes'], b['boxes'])
        np.testing.assert_array_equal(a['scores'], b['scores'])
        assert a['labels'] == b['labels'] and a['masks'] == b['masks']
    # another SAM (other random weights): the bank is refused
    torch.manual_seed(123)
    foreign = InContextInferencer(toy_cfg(toy_root), None, device='cpu', random_weights=True)
    with pytest.raises(ValueError, match='another model'):
        foreign.load_bank(bank)
    # mask and point prompts, on an array and a path, as shots of one new class
    arr = mmcv.imread(imgs[0])
    m = np.zeros(arr.shape[:2], bool)
    m[20:60, 30:90] = True
    r1 = foreign.add_reference(arr, 'blob', mask=m)
    r2 = foreign.add_reference(imgs[0], 'blob', points=[(30, 20), (90, 60)])
    assert r1.box.tolist() == [30, 20, 90, 60] and r2.box.tolist() == [24, 16, 96, 64]
    assert foreign.classes == ['blob'] and dict(foreign.category_ids) == {'blob': 1}
    res = foreign(arr, score_thr=0.0, show_progress=False)[0]
    assert set(res['labels']) == {'blob'} and len(res['masks']) == len(res['scores']) > 0
    # a checkpoint of another config is refused, naming what differs
    with pytest.raises(CheckpointMismatchError, match='query_embedding'):
        InContextInferencer(toy_cfg(toy_root), ckpt, device='cpu',
                            cfg_options={'model.num_queries': 20,
                                         'model.test_cfg.max_per_img': 20})


def test_prompts_to_boxes():
    box, _, _ = prompt_to_box((100, 120), points=[(10, 10), (30, 50)])
    np.testing.assert_allclose(box, [8, 6, 32, 54])  # grown by 10% of each side
    m = np.zeros((100, 120), bool)
    m[20:40, 5:15] = True
    np.testing.assert_allclose(prompt_to_box((100, 120), mask=m)[0], [5, 20, 15, 40])
    np.testing.assert_allclose(prompt_to_box((100, 120), box=[-5, 10, 50, 500])[0],
                               [0, 10, 50, 100])  # clipped to the image
    for bad in (dict(box=[10, 10, 10, 30]), dict(mask=np.zeros((100, 120), bool)),
                dict(box=[200, 10, 300, 30]), dict(points=[])):
        with pytest.raises(ValueError):
            prompt_to_box((100, 120), **bad)
    with pytest.raises(ValueError, match='exactly one'):
        prompt_to_box((100, 120), box=[0, 0, 5, 5], points=[(1, 1)])


def test_bad_inputs(inferencer, toy_root, tmp_path):
    inf = inferencer
    img = val_images(toy_root)[0]
    empty = tmp_path / 'empty'
    empty.mkdir()
    with pytest.raises(ValueError, match='no images in folder'):
        inf(str(empty), show_progress=False)
    with pytest.raises(ValueError, match='no file matches'):
        inf(str(empty / '*.jpg'), show_progress=False)
    with pytest.raises(FileNotFoundError):
        inf(str(tmp_path / 'typo.png'), show_progress=False)
    with pytest.raises(ValueError, match='no reference'):
        inf(img, classes=['purple hexagon'], show_progress=False)
    with pytest.raises(ValueError, match='degenerate'):
        inf.add_reference(img, 'red circle', box=[10, 10, 10, 40])
    # a corrupt file and a missing one among good images: skipped, listed, the run goes on
    folder = tmp_path / 'imgs'
    folder.mkdir()
    shutil.copy(img, folder / 'a.png')
    (folder / 'broken.png').write_bytes(b'not a png')
    res = inf([str(folder), str(tmp_path / 'gone.png')], show_progress=False)
    assert [osp.basename(r['img_path']) for r in res] == ['a.png']
    assert [osp.basename(p) for p, _ in inf.failed] == ['broken.png', 'gone.png']
    assert 'cannot be decoded' in inf.failed[0][1] and inf.stats['skipped'] == 2
    # reference files: unknown class, degenerate box (both named), no partial registration
    _, doc = train_refs(toy_root)
    n_refs = len(inf.references)
    for mutate, msg in ((lambda a: a.update(category_id=99), 'category id 99'),
                        (lambda a: a.update(bbox=[5, 5, 0, 10]), 'degenerate')):
        d = json.loads(json.dumps(doc))
        mutate(d['annotations'][3])
        path = tmp_path / 'refs.json'
        path.write_text(json.dumps(d))
        with pytest.raises(ValueError, match=msg) as e:
            inf.add_references_from_coco(str(path), osp.join(toy_root, 'train'))
        assert str(d['annotations'][3]['id']) in str(e.value)
    assert len(inf.references) == n_refs


@pytest.mark.e2e
def test_cli_end_to_end(toy_root, ckpt, tmp_path, capsys):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    refs, doc = train_refs(toy_root, num_classes=3, shots=3)
    anns = [dict(r[4], shot=i % 3) for i, r in enumerate(refs)]
    ids = {a['image_id'] for a in anns}
    ref_file = tmp_path / 'refs.json'
    ref_file.write_text(json.dumps(dict(
        images=[im for im in doc['images'] if im['id'] in ids], annotations=anns,
        categories=doc['categories'])))
    imgs = tmp_path / 'val'
    shutil.copytree(osp.join(toy_root, 'val'), imgs)
    (imgs / 'zz_broken.jpg').write_bytes(b'\x00' * 10)
    gt_file = osp.join(toy_root, 'annotations/instances_val.json')
    out = tmp_path / 'out'
    opts = [f'{k}={v}' for k, v in toy_overrides(toy_root).items()]
    cmd = [sys.executable, 'tools/infer.py', TOY_CONFIG, ckpt, '--refs', str(ref_file),
           '--ref-img-dir', osp.join(toy_root, 'train'), '--shots', '2', '--img-dir', str(imgs),
           '--image-ids-from', gt_file, '--out-dir', str(out), '--score-thr', '0', '--vis',
           '--device', 'cpu', '--batch-size', '4', '--no-progress',
           '--save-bank', str(tmp_path / 'bank.pth'), '--cfg-options', *opts]
    p = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='2'))
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-3000:]
    assert '8 images' in p.stdout and '1 skipped files' in p.stdout
    summary = json.loads((out / 'summary.json').read_text())
    assert summary['references'] == 6  # --shots 2 of 3 per class, by the "shot" rank
    assert [osp.basename(s['file']) for s in summary['skipped_files']] == ['zz_broken.jpg']
    assert len(glob.glob(str(out / 'vis' / '*.png'))) == 8
    results = json.loads((out / 'results.json').read_text())
    assert results and all(isinstance(r['segmentation']['counts'], str) for r in results)
    assert {r['category_id'] for r in results} <= {r[3] for r in refs}
    gt = COCO(gt_file)
    assert {r['image_id'] for r in results} <= set(gt.getImgIds())
    for iou_type in ('bbox', 'segm'):
        ev = COCOeval(gt, gt.loadRes(str(out / 'results.json')), iou_type)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
        # fixed-seed values (the random weights of torch.manual_seed(0) in `ckpt`): no toy
        # object found, so AP and AR are 0, and -1 for the large objects the toy world lacks
        large = {5, 11}  # AP_l, AR_l
        assert ev.stats.tolist() == [-1.0 if i in large else 0.0 for i in range(12)]
    # the GT-free images file loads the results too
    free = COCO(str(out / 'images.json'))
    assert len(free.loadRes(str(out / 'results.json')).anns) == len(results)
    # bad CLI input: a clear one-line error before the model is built (in-process: fast)
    cli = load_tool('tools/infer.py')
    empty = tmp_path / 'nothing'
    empty.mkdir()
    argv = cmd[2:cmd.index('--img-dir')] + ['--img-dir', str(empty), '--out-dir', str(out)]
    assert cli.main(argv) == 2
    assert 'error: no images in folder' in capsys.readouterr().err


def test_coco_reference_file(toy_root, tmp_path):
    from mmsamantics.apis import Reference, read_coco_references
    refs, doc = train_refs(toy_root, num_classes=2, shots=3)
    anns = [dict(r[4], shot=(1, 0, 2)[i % 3]) for i, r in enumerate(refs)]
    del anns[0]['bbox']  # the box then comes from the segmentation
    ids = {a['image_id'] for a in anns}
    path = tmp_path / 'refs.json'
    path.write_text(json.dumps(dict(images=[im for im in doc['images'] if im['id'] in ids],
                                    annotations=anns, categories=doc['categories'])))
    got, cat_ids = read_coco_references(str(path), osp.join(toy_root, 'train'), shots=2)
    assert list(cat_ids) == [refs[0][1], refs[3][1]]
    assert [r['key'] for r in got] == [f'refs.json:{a["id"]}' for a in
                                       sorted(anns[:3], key=lambda a: a['shot'])[:2] +
                                       sorted(anns[3:], key=lambda a: a['shot'])[:2]]
    first = next(r for r in got if r['key'].endswith(f':{anns[0]["id"]}'))
    x, y, w, h = refs[0][4]['bbox']
    np.testing.assert_allclose(first['bbox'], [x, y, x + w, y + h], atol=1.0)
    ref = Reference(key='k', class_name='c', box=first['bbox'],
                    segmentation=first['segmentation'], img_hw=first['img_hw'])
    assert abs(int(ref.instance_mask().sum()) - anns[0]['area']) <= 0.1 * anns[0]['area']
    with pytest.raises(ValueError, match='not categories'):
        read_coco_references(str(path), classes=['purple hexagon'])
