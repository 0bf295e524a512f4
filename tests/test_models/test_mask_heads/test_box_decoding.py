"""Box-prompt masks in chunks of ``boxes_per_call``, and only for detections kept."""
import pytest
import torch
from mmengine.structures import InstanceData

from helpers import load_tool
from mmsamantics.models import SAMBoxPromptMaskHead

META = dict(img_shape=(256, 256), ori_shape=(256, 256), scale_factor=(1.0, 1.0))


@pytest.fixture(scope='module')
def head():
    torch.manual_seed(0)
    return SAMBoxPromptMaskHead(decoder=dict(type='SAMPromptDecoder', preset='tiny'))


def _boxes(n):
    xy = torch.rand(n, 2, 2).sort(1).values * 256
    return xy.transpose(1, 2).reshape(-1, 4)[:, [0, 2, 1, 3]]


def test_chunks_equal_one_call(head, monkeypatch):
    torch.manual_seed(1)
    emb, boxes = torch.randn(1, 64, 16, 16), _boxes(10)
    assert head.boxes_per_call == dict(cpu=2, cuda=100)
    head.boxes_per_call = dict(cpu=4, cuda=100)
    assert head.calls(10, emb.device) == [slice(0, 4), slice(4, 8), slice(8, 10)]
    calls = []
    orig = head.decoder.predict_masks
    monkeypatch.setattr(head.decoder, 'predict_masks',
                        lambda e, b: calls.append(len(b)) or orig(e, b))
    chunked = head.decode_boxes(emb, boxes)
    assert calls == [4, 4, 2]
    one = orig(emb, boxes)
    for a, b in zip(chunked, one):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    head.boxes_per_call = 3
    try:
        assert [s.stop for s in head.calls(7, emb.device)] == [3, 6, 7]
        head.boxes_per_call = dict(cuda=8)  # a device type it does not name: one call
        assert head.calls(7, emb.device) == [slice(0, 7)]
    finally:
        head.boxes_per_call = dict(cpu=2, cuda=100)


def test_masks_only_for_kept_detections(head, monkeypatch):
    torch.manual_seed(2)
    emb = torch.randn(1, 64, 16, 16)
    scores = torch.tensor([0.9, 0.1, 0.5, 0.7, 0.2])
    res = InstanceData(bboxes=_boxes(5), scores=scores)
    full = head.predict(emb, [res.clone()], [META])[0]  # COCO evaluation: all five
    assert len(full) == 5
    decoded = []
    orig = head.decoder.predict_masks
    monkeypatch.setattr(head.decoder, 'predict_masks',
                        lambda e, b: decoded.append(len(b)) or orig(e, b))
    with head.keeping(0.3, 2):
        kept = head.predict(emb, [res.clone()], [META])[0]
    assert (head.score_thr, head.max_per_img) == (float('-inf'), 0)  # restored
    assert sum(decoded) == 2  # the 0.9 and 0.7 detections, nothing else decoded
    assert kept.scores.tolist() == pytest.approx([0.9, 0.7])
    assert torch.equal(kept.masks, full.masks[[0, 3]])


def test_benchmark_tool_runs_at_tiny_size(capsys):
    load_tool('tools/analysis/benchmark_box_decoding.py').main(
        ['--preset', 'tiny', '--boxes', '6', '--chunks', '2', '--repeats', '1'])
    rows = [ln.split() for ln in capsys.readouterr().out.splitlines()[2:]]
    assert [int(r[0]) for r in rows] == [1, 2, 6] and float(rows[0][2]) == 1.0


def test_shared_image_decoder_equals_segment_anything(head):
    """One image embedding broadcast over the prompts = segment_anything's per-prompt copy."""
    from segment_anything.modeling import MaskDecoder
    from mmsamantics.models.sam.shared_image_mask_decoder import SharedImageMaskDecoder
    dec = head.decoder
    assert type(dec.mask_decoder) is SharedImageMaskDecoder
    torch.manual_seed(3)
    emb, boxes = torch.randn(1, 64, 16, 16), _boxes(5)
    pts = torch.rand(5, 2, 2) * 256
    shared = [dec.predict_masks(emb, boxes, multimask_output=True),
              dec.predict_point_masks(emb, pts)]
    dec.mask_decoder.__class__ = MaskDecoder
    try:
        ref = [dec.predict_masks(emb, boxes, multimask_output=True),
               dec.predict_point_masks(emb, pts)]
    finally:
        dec.mask_decoder.__class__ = SharedImageMaskDecoder
    for got, want in zip(shared, ref):
        torch.testing.assert_close(got[0], want[0], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(got[1], want[1], atol=1e-5, rtol=1e-5)
    # a dense prompt per box (mask inputs): the original per-prompt path
    sparse, _ = dec.prompt_encoder(points=None, boxes=boxes, masks=None)
    dense = torch.randn(5, 64, 16, 16)
    got = dec.mask_decoder.predict_masks(emb, dec.prompt_encoder.get_dense_pe(), sparse, dense)
    want = MaskDecoder.predict_masks(dec.mask_decoder, emb, dec.prompt_encoder.get_dense_pe(),
                                     sparse, dense)
    torch.testing.assert_close(got[0], want[0])
