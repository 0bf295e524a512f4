"""InContextDataPreprocessor's ``authors_conventions``: BGR values normalised with SAM's
mean/std, padding as normalised 0-valued pixels (targets and references), the padded input as
``img_shape``, the nominal scale factor and the resized size kept; bad inputs named."""
import numpy as np
import pytest
import torch
from mmengine.structures import InstanceData

from mmdet.registry import TRANSFORMS
from mmdet.structures import DetDataSample
from mmsamantics.models.data_preprocessors import InContextDataPreprocessor
from mmsamantics.utils.images import preprocess_images

MEAN, STD = [123.675, 116.28, 103.53], [58.395, 57.12, 57.375]


def _data(h: int = 20, w: int = 32, ori=(50, 80)):
    g = torch.Generator().manual_seed(0)
    img = torch.randint(0, 256, (3, h, w), generator=g, dtype=torch.uint8)
    ref = torch.randint(0, 256, (3, 32, 24), generator=g, dtype=torch.uint8)
    ds = DetDataSample(metainfo=dict(img_shape=(h, w), ori_shape=ori,
                                     scale_factor=(w / ori[1], h / ori[0])))
    ds.ref_inputs = [ref]
    ds.ref_instances = InstanceData(bboxes=torch.tensor([[1., 2., 20., 30.]]),
                                    labels=torch.tensor([0]))
    return dict(inputs=[img], data_samples=[ds]), img, ref


def _normalised(x: torch.Tensor) -> torch.Tensor:
    """SAM's normalisation of (3, h, w) values in the order given (no channel swap)."""
    return (x.float() - torch.tensor(MEAN).view(3, 1, 1)) / torch.tensor(STD).view(3, 1, 1)


def test_authors_conventions_pad_with_normalised_zero_pixels_in_bgr():
    pre = InContextDataPreprocessor(mean=MEAN, std=STD, bgr_to_rgb=True, pad_size_divisor=32,
                                    authors_conventions=True)
    data, img, ref = _data()
    out = pre(data, False)
    x, ds = out['inputs'][0], out['data_samples'][0]
    zero = _normalised(torch.zeros(3, 1, 1))  # a 0 pixel, normalised: -mean / std
    assert torch.equal(x[:, :20], _normalised(img))  # BGR kept: bgr_to_rgb is overridden
    assert torch.equal(x[:, 20:], zero.expand(3, 12, 32))
    assert torch.equal(ds.ref_inputs[0][:, :, :24], _normalised(ref))
    assert torch.equal(ds.ref_inputs[0][:, :, 24:], zero.expand(3, 32, 8))
    # SAM's own convention on the same input: RGB, padding 0 after normalising
    ours = InContextDataPreprocessor(mean=MEAN, std=STD, bgr_to_rgb=True, pad_size_divisor=32)
    y = ours(_data()[0], False)['inputs'][0]
    assert torch.equal(y[:, :20], _normalised(img.flip(0))) and not y[:, 20:].any()
    # images without data samples (reference banks, the inference API) take the same path
    assert torch.equal(preprocess_images(pre, [img.permute(1, 2, 0).numpy()])[0], x)


def test_authors_metainfo_follows_their_pipeline():
    pre = InContextDataPreprocessor(mean=MEAN, std=STD, pad_size_divisor=32,
                                    authors_conventions=True)
    data, img, _ = _data()
    ds = pre(data, False)['data_samples'][0]
    assert ds.img_shape == ds.batch_input_shape == (32, 32)  # no padding mask, boxes by S
    assert ds.resized_shape == (20, 32)  # where SAM's masks are cropped
    assert ds.scale_factor == (min(32 / 80, 32 / 50),) * 2 == (0.4, 0.4)
    again = pre(dict(inputs=data['inputs'], data_samples=[ds]), False)['data_samples'][0]
    assert again.metainfo == ds.metainfo  # once more: nothing changes
    # their FixShapeResize pads in the pipeline: the same input and metainfo
    res = TRANSFORMS.build(dict(type='FixShapeResize', width=32, height=32, keep_ratio=True))(
        dict(img=np.zeros((50, 80, 3), np.uint8), img_shape=(50, 80), ori_shape=(50, 80)))
    fixed = DetDataSample(metainfo=dict(img_shape=res['img_shape'], ori_shape=(50, 80),
                                        scale_factor=res['scale_factor']))
    x = torch.from_numpy(res['img']).permute(2, 0, 1)
    x[:, :20] = img
    out = pre(dict(inputs=[x], data_samples=[fixed]), False)
    assert torch.equal(out['inputs'][0], pre(_data()[0], False)['inputs'][0])
    keys = ('img_shape', 'resized_shape', 'scale_factor', 'batch_input_shape')
    assert [out['data_samples'][0].metainfo[k] for k in keys] == [ds.metainfo[k] for k in keys]


def test_authors_conventions_refuse_what_they_cannot_mean():
    pre = InContextDataPreprocessor(mean=MEAN, std=STD, pad_size_divisor=32,
                                    authors_conventions=True)
    with pytest.raises(ValueError, match=r'long side to the S x S input.*\(20, 30\) from'):
        pre(_data(20, 30)[0], False)
    with pytest.raises(ValueError, match='mean and std'):
        InContextDataPreprocessor(pad_size_divisor=32, authors_conventions=True)
