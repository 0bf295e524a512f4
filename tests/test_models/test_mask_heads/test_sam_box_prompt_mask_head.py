"""The mask head must reproduce segment_anything.SamPredictor for the same weights and boxes."""
import numpy as np
import torch
from mmengine.structures import InstanceData
from segment_anything import SamPredictor
from segment_anything.modeling import Sam

from mmsamantics.models import (InContextDataPreprocessor, SAMBoxPromptMaskHead,
                                SAMImageEncoder)

MEAN, STD = [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]


def _models():
    torch.manual_seed(0)
    enc = SAMImageEncoder(preset='tiny')
    head = SAMBoxPromptMaskHead(decoder=dict(type='SAMPromptDecoder', preset='tiny'))
    sam = Sam(image_encoder=enc.encoder, prompt_encoder=head.decoder.prompt_encoder,
              mask_decoder=head.decoder.mask_decoder, pixel_mean=MEAN, pixel_std=STD).eval()
    return enc, head, SamPredictor(sam)


def test_masks_equal_sam_predictor_for_the_same_embedding():
    enc, head, pred = _models()
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, size=(300, 411, 3), dtype=np.uint8)  # resized to 187x256
    pred.set_image(img)
    boxes = np.array([[20, 30, 200, 250], [150, 10, 400, 120], [0, 0, 410, 299]], np.float32)
    h, w = pred.input_size
    meta = dict(img_shape=(h, w), ori_shape=img.shape[:2],
                scale_factor=(w / img.shape[1], h / img.shape[0]))
    res = InstanceData(bboxes=torch.from_numpy(boxes), scores=torch.ones(3))
    out = head.predict(pred.features, [res], [meta])[0]
    assert out.masks.shape == (3, 300, 411) and out.masks.dtype == torch.bool
    for i, box in enumerate(boxes):
        ref, _, _ = pred.predict(box=box, multimask_output=False)
        agree = (out.masks[i].numpy() == ref[0]).mean()
        assert agree > 0.9999, agree  # identical up to float rounding at the 0 threshold


def test_full_path_equals_predictor_when_no_resize_is_needed():
    enc, head, pred = _models()
    rng = np.random.default_rng(1)
    img = rng.integers(0, 255, size=(200, 256, 3), dtype=np.uint8)  # longest side already 256
    pred.set_image(img)  # RGB
    prep = InContextDataPreprocessor(mean=MEAN, std=STD, bgr_to_rgb=True, pad_size_divisor=256)
    bgr = torch.from_numpy(img[..., ::-1].copy()).permute(2, 0, 1)
    x = prep(dict(inputs=[bgr], data_samples=None), False)['inputs']
    assert x.shape == (1, 3, 256, 256)
    emb = enc(x)[-1]
    torch.testing.assert_close(emb, pred.features, atol=1e-5, rtol=1e-5)
    box = np.array([30, 40, 180, 190], np.float32)
    meta = dict(img_shape=(200, 256), ori_shape=(200, 256), scale_factor=(1.0, 1.0))
    out = head.predict(emb, [InstanceData(bboxes=torch.from_numpy(box[None]),
                                          scores=torch.ones(1))], [meta])[0]
    ref, _, _ = pred.predict(box=box, multimask_output=False)
    assert (out.masks[0].numpy() == ref[0]).mean() > 0.9999


def test_empty_boxes_and_iou_scoring():
    enc, head, pred = _models()
    emb = torch.randn(1, 64, 16, 16)
    meta = dict(img_shape=(256, 256), ori_shape=(100, 100), scale_factor=(2.56, 2.56))
    empty = head.predict(emb, [InstanceData(bboxes=torch.zeros(0, 4), scores=torch.zeros(0))],
                         [meta])[0]
    assert empty.masks.shape == (0, 100, 100)
    head.score_mode = 'box_x_iou'
    res = InstanceData(bboxes=torch.tensor([[10., 10., 60., 60.]]), scores=torch.tensor([0.5]))
    _, iou = head.decoder.predict_masks(emb, res.bboxes * 2.56)
    out = head.predict(emb, [res], [meta])[0]
    assert torch.allclose(out.scores, 0.5 * iou[:, 0].clamp(0, 1))
