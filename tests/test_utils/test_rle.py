"""The one COCO RLE codec: masks round-trip, either ``counts`` type decodes, and COCO
segmentations of every form decode as pycocotools' annToMask does."""
import json

import numpy as np
import pycocotools.mask as mask_utils
import pytest

from mmsamantics.utils.rle import (decode_coco_mask, decode_mask, encode_mask, masks_to_rle,
                                   pack_masks, pack_rles, uncompressed_rle, unpack_rles)


def masks(n=3, h=7, w=5):
    rng = np.random.default_rng(0)
    return rng.random((n, h, w)) > 0.5


def test_masks_round_trip_through_json():
    m = masks()
    rles = json.loads(json.dumps(masks_to_rle(m)))  # str counts: JSON-ready
    assert [r['size'] for r in rles] == [[7, 5]] * 3
    np.testing.assert_array_equal(np.stack([decode_mask(r) for r in rles]), m)
    assert masks_to_rle(np.zeros((0, 7, 5), bool)) == []


def test_encode_mask_takes_nonzero_as_inside_and_bytes_counts_decode():
    m = masks(1)[0]
    rle = encode_mask(m.astype(np.uint8) * 255)
    assert isinstance(rle['counts'], str) and rle == encode_mask(m)
    raw = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))  # bytes counts
    np.testing.assert_array_equal(decode_mask(raw), m)
    assert decode_mask(rle).dtype == bool


@pytest.mark.parametrize('form', ['polygons', 'rle', 'uncompressed'])
def test_decode_coco_mask_equals_ann_to_mask(form):
    h, w = 12, 10
    poly = [[1, 1, 8, 1, 8, 9, 1, 9], [2, 10, 4, 10, 4, 11]]
    ref = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(poly, h, w)))
    if form == 'polygons':
        seg = poly
    elif form == 'rle':
        seg = mask_utils.merge(mask_utils.frPyObjects(poly, h, w))
    else:
        flat = ref.flatten(order='F')
        runs, cur, n = [], 0, 0
        for v in flat:
            if v != cur:
                runs.append(n)
                cur, n = v, 0
            n += 1
        seg = dict(size=[h, w], counts=runs + [n])
    out = decode_coco_mask(seg, h, w)
    assert out.dtype == np.uint8 and ref.sum() > 40
    np.testing.assert_array_equal(out, ref)


@pytest.mark.parametrize('first', [0, 1])
def test_uncompressed_rle_is_cocos_crowd_form(first):
    """Run lengths in column-major order starting with the zeros' run (empty when the first
    pixel is inside); pycocotools reads them back to the same mask and area."""
    m = masks(1, 9, 6)[0]
    m[0, 0] = bool(first)
    rle = uncompressed_rle(m)
    assert rle['size'] == [9, 6] and sum(rle['counts']) == 54
    assert (rle['counts'][0] == 0) == bool(first)
    np.testing.assert_array_equal(decode_coco_mask(rle, 9, 6), m)
    assert mask_utils.area(mask_utils.frPyObjects(rle, 9, 6)) == m.sum()


def test_packed_masks_unpack_to_the_rles_of_each_mask():
    m = masks(4, 11, 6)
    blob, ends = pack_masks(m)
    rles = unpack_rles(blob, ends, (11, 6))
    assert isinstance(blob, bytes) and ends.tolist() == np.cumsum(
        [len(r['counts']) for r in rles]).tolist()
    expected = [mask_utils.encode(np.asfortranarray(x.astype(np.uint8))) for x in m]
    assert rles == [dict(e, size=[11, 6]) for e in expected]
    assert pack_rles(masks_to_rle(m))[0] == blob  # str counts (JSON) pack alike
    blob, ends = pack_masks(np.zeros((0, 11, 6), bool))
    assert blob == b'' and unpack_rles(blob, ends, (11, 6)) == []
