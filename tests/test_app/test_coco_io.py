"""COCO writing of the annotation tool: masks, polygons, atomic saves, resume and refusals."""
import json
import threading

import cv2
import numpy as np
import pytest

from mmsamantics.app import AnnotationStore, ImageFolder
from mmsamantics.app.coco_io import (atomic_write_json, coco_annotation, column_runs,
                                     decode_mask, encode_mask, mask_polygons)
from mmsamantics.utils.images import decode_coco_mask


def _shapes() -> np.ndarray:
    m = np.zeros((100, 120), np.uint8)
    cv2.circle(m, (60, 50), 30, 1, -1)
    cv2.rectangle(m, (5, 5), (20, 40), 1, -1)
    return m.astype(bool)


def test_rle_runs_box_and_polygons():
    m = _shapes()
    np.testing.assert_array_equal(decode_mask(encode_mask(m)), m)
    flat = np.repeat(np.arange(len(column_runs(m))) % 2, column_runs(m)).astype(bool)
    np.testing.assert_array_equal(flat.reshape(120, 100).T, m)
    assert column_runs(np.ones((2, 2), bool)) == [0, 4]
    ann = coco_annotation(3, 1, 2, encode_mask(m), dict(source='click'))
    assert (ann['bbox'], ann['area'], ann['iscrowd']) == ([5.0, 5.0, 86.0, 76.0], m.sum(), 0)
    polys = mask_polygons(m)
    back = decode_coco_mask(polys, 100, 120).astype(bool)
    assert len(polys) == 2
    assert round((back & m).sum() / (back | m).sum(), 4) == 0.9496  # boundary pixels halved


def test_concurrent_atomic_saves_never_corrupt(tmp_path):
    path = str(tmp_path / 'ann.json')
    docs = [dict(images=[], annotations=[dict(id=i, pad='x' * 20000)], categories=[])
            for i in range(8)]
    seen, stop = [], threading.Event()

    def read():
        while not stop.is_set():
            try:
                with open(path) as f:
                    seen.append(json.load(f)['annotations'][0]['id'])
            except FileNotFoundError:
                pass

    reader = threading.Thread(target=read)
    reader.start()
    writers = [threading.Thread(target=lambda d=d: [atomic_write_json(path, d)
                                                   for _ in range(10)]) for d in docs]
    for t in writers:
        t.start()
    for t in writers:
        t.join()
    stop.set()
    reader.join()
    assert json.load(open(path))['annotations'][0]['id'] in range(8)
    assert seen and set(seen) <= set(range(8))  # every read parsed: never a partial file
    assert [p.name for p in tmp_path.iterdir()] == ['ann.json']  # no temporary left


def test_resume_and_refusals(app_folder, tmp_path):
    folder = ImageFolder(app_folder)
    out = str(tmp_path / 'ann.json')
    store = AnnotationStore(folder, out, ['circle'])
    m = _shapes()
    big = np.zeros((274, 310), bool)
    big[:100, :120] = m
    store.add_instance('000000.png', 'circle', big, [dict(points=[[1, 2, 1]])], 0.5)
    again = AnnotationStore(folder, out, ['square'])
    assert again.category_names() == ['circle', 'square']
    np.testing.assert_array_equal(decode_mask(again.get(1)['rle']), big)
    assert again.get(1)['sambox']['prompts'] == [dict(points=[[1, 2, 1]])]
    # polygons (e.g. an exported or hand-made file) are read too
    doc = again.to_coco(polygons=True)
    poly_file = tmp_path / 'poly.json'
    poly_file.write_text(json.dumps(doc))
    assert AnnotationStore(folder, str(poly_file)).get(1)['category_id'] == 1
    other = json.loads(json.dumps(doc))
    other['images'][0]['file_name'] = 'elsewhere.jpg'
    (tmp_path / 'other.json').write_text(json.dumps(other))
    with pytest.raises(ValueError, match="annotates 1 images that are not in .*elsewhere.jpg"):
        AnnotationStore(folder, str(tmp_path / 'other.json'))
    (tmp_path / 'list.json').write_text('[]')
    with pytest.raises(ValueError, match='not a COCO instances file'):
        AnnotationStore(folder, str(tmp_path / 'list.json'))
    (tmp_path / 'bad.json').write_text('{')
    with pytest.raises(ValueError, match='is not valid JSON'):
        AnnotationStore(folder, str(tmp_path / 'bad.json'))
    with pytest.raises(ValueError, match='the mask is empty'):
        again.add_instance('000000.png', 'circle', np.zeros((274, 310), bool), [], None)
    with pytest.raises(ValueError, match='mask of shape'):
        again.add_instance('000000.png', 'circle', m, [], None)


def test_folder_without_images(tmp_path):
    (tmp_path / 'a.txt').write_text('x')
    (tmp_path / 'b.jpg').write_bytes(b'\xff\xd8 broken')
    with pytest.raises(ValueError, match=r'no readable image in .*b.jpg: cannot be decoded'):
        ImageFolder(str(tmp_path))
    with pytest.raises(FileNotFoundError, match='image folder not found'):
        ImageFolder(str(tmp_path / 'missing'))


def test_concurrent_changes_all_saved(app_folder, tmp_path):
    store = AnnotationStore(ImageFolder(app_folder), str(tmp_path / 'ann.json'), ['circle'])
    mask = np.zeros((274, 310), bool)
    mask[10:50, 20:80] = True

    def add():
        for _ in range(5):
            store.add_instance('000000.png', 'circle', mask, [], 0.9)

    threads = [threading.Thread(target=add) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    doc = json.load(open(tmp_path / 'ann.json'))
    assert sorted(a['id'] for a in doc['annotations']) == list(range(1, 21))
