"""SAM 3 exemplar detector from its toy config (tiny random SAM 3): the canvas layout and its
exact mapping, prompts against sam3's own processor, predictions, bad inputs."""
import os.path as osp

import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.dataset import pseudo_collate

from helpers import REPO
from mmsamantics.apis import build_dataset, build_model
from mmsamantics.models.sam3 import (build_canvas, build_sam3_image, canvas_to_normalized,
                                     check_reference_boxes, load_sam3_checkpoint,
                                     normalized_to_target, write_tiny_bpe)

CONFIG = osp.join(REPO, 'configs', 'sam3_toy.py')


def sam3_cfg(root: str, bpe: str, **extra) -> Config:
    cfg = Config.fromfile(CONFIG)
    root = root.rstrip('/') + '/'
    cfg.merge_from_dict({'test_dataloader.dataset.data_root': root, 'model.bpe_path': bpe,
                         **extra})
    return cfg


@pytest.fixture(scope='module')
def bpe(tmp_path_factory):
    return write_tiny_bpe(str(tmp_path_factory.mktemp('sam3') / 'bpe.txt.gz'))


@pytest.fixture(scope='module')
def setup(toy_root, bpe):
    torch.manual_seed(0)
    cfg = sam3_cfg(toy_root, bpe, **{'test_dataloader.dataset.shots': 2})
    model = build_model(cfg, None, 'cpu')
    ds = build_dataset(cfg, 'test')
    batch = model.data_preprocessor(pseudo_collate([ds[i] for i in range(2)]), False)
    return model, batch


def test_canvas_mapping_round_trip_is_exact():
    target_hw, canvas_hw = (99, 112), (99, 168)
    boxes = torch.tensor([[0., 0., 112., 99.], [10.5, 3.25, 40., 77.], [100., 90., 112., 99.]],
                         dtype=torch.float64)
    back, inside = normalized_to_target(canvas_to_normalized(boxes, canvas_hw), canvas_hw,
                                        target_hw)
    # exact up to float64 rounding (x / w_c * w_c), far below a pixel
    assert (back - boxes).abs().max() < 1e-12 and inside.all()
    # a detection centred on the reference strip is dropped; one overlapping it is clipped
    strip = torch.tensor([[120., 10., 160., 50.], [100., 10., 130., 50.]], dtype=torch.float64)
    back, inside = normalized_to_target(canvas_to_normalized(strip, canvas_hw), canvas_hw,
                                        target_hw)
    assert inside.tolist() == [False, False]
    assert torch.allclose(back[1], back.new_tensor([100., 10., 112., 50.]), atol=1e-12, rtol=0)


def test_canvas_layout_against_a_direct_computation():
    torch.manual_seed(0)
    target = torch.randn(3, 60, 80)
    refs = [torch.randn(3, 50, 40), torch.randn(3, 30, 90)]
    boxes = torch.tensor([[10., 10., 30., 40.], [0., 5., 90., 25.]])
    canvas, ex = build_canvas(target, refs, boxes, strip_ratio=0.5, context=0.0)
    assert canvas.shape == (3, 60, 120)
    assert torch.equal(canvas[:, :, :80], target)  # the target is untouched at the top-left
    assert (ex[:, 0] >= 80).all()  # exemplars never on the target region
    # cell 0 (rows 0-29): the 20 x 30 box crop scaled by min(40 / 20, 30 / 30) = 1
    assert torch.equal(canvas[:, :30, 80:100], refs[0][:, 10:40, 10:30])
    assert ex[0].tolist() == [80., 0., 100., 30.]
    # cell 1 (rows 30-59): the 90 x 20 crop scaled by min(40 / 90, 30 / 20) -> 8 x 40
    direct = F.interpolate(refs[1][None, :, 5:25, :], (8, 40), mode='bilinear',
                           align_corners=False)[0]
    assert torch.equal(canvas[:, 30:38, 80:120], direct)
    assert ex[1].tolist() == [80., 30., 120., 38.]
    assert canvas[:, 38:, 80:].abs().sum() == 0 and canvas[:, 30:, 80:].shape[1] == 30


def test_exemplar_prompt_equals_sam3_processor(setup):
    from sam3.model.sam3_image_processor import Sam3Processor
    model, batch = setup
    canvas = batch['inputs'][0]
    ex = torch.tensor([[20., 30., 60., 90.]])
    scores, boxes, _ = model._ground(canvas, 'visual', ex)
    proc = Sam3Processor(model.sam3, resolution=112, device='cpu', confidence_threshold=0.0)
    state = dict(original_height=1, original_width=1,
                 backbone_out=model.sam3.backbone.forward_image(canvas[None]))
    box = canvas_to_normalized(ex, tuple(canvas.shape[-2:]))[0].tolist()
    state = proc.add_geometric_prompt(box, True, state)
    assert torch.allclose(scores, state['scores'], atol=1e-6)
    xyxy = torch.cat([boxes[:, :2] - boxes[:, 2:] / 2, boxes[:, :2] + boxes[:, 2:] / 2], 1)
    assert torch.allclose(xyxy, state['boxes'], atol=1e-6)


@pytest.mark.parametrize('prompt', ['exemplar', 'text'])
def test_predict_keeps_target_detections(setup, prompt):
    model, batch = setup
    model.prompt = prompt
    try:
        out = model.predict(batch['inputs'], batch['data_samples'])
    finally:
        model.prompt = 'exemplar'
    for ds in out:
        p = ds.pred_instances
        h, w = ds.metainfo['ori_shape'][:2]
        queried = set(ds.ref_instances.labels.tolist())
        assert 0 < len(p) <= 100 and set(p.labels.tolist()) <= queried
        assert p.masks.shape[-2:] == (h, w) and p.masks.dtype == torch.bool
        assert (p.bboxes >= 0).all() and (p.bboxes[:, 2] <= w).all()
        assert (p.bboxes[:, 3] <= h).all()
        assert torch.equal(p.scores, p.scores.sort(descending=True).values)


def test_frozen(setup):
    model, _ = setup
    model.train()
    assert not model.sam3.training
    assert not any(p.requires_grad for p in model.parameters())
    model.eval()


def test_bad_inputs(setup, toy_root, bpe, tmp_path):
    model, batch = setup
    with pytest.raises(FileNotFoundError, match='huggingface.co/facebook/sam3'):
        load_sam3_checkpoint(model.sam3, str(tmp_path / 'sam3.pt'))
    with pytest.raises(FileNotFoundError, match='bpe_simple_vocab_16e6'):
        build_sam3_image('tiny', str(tmp_path / 'missing.txt.gz'))
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match='needs a CUDA GPU'):
            build_sam3_image('full', bpe)
    with pytest.raises(ValueError, match='outside its image'):
        check_reference_boxes(torch.tensor([[10., 10., 130., 50.]]), [(112, 112)])
    with pytest.raises(ValueError, match='empty reference set'):
        check_reference_boxes(torch.zeros(0, 4), [])
    ds = batch['data_samples'][0].clone()
    del ds.ref_instances
    with pytest.raises(ValueError, match='has no references'):
        model.predict(batch['inputs'][:1], [ds])
    with pytest.raises(ValueError, match='needs class_split'):
        build_model(sam3_cfg(toy_root, bpe, **{'model.prompt': 'text',
                                                'model.class_split': None}), None, 'cpu')


def test_strict_checkpoint_loading(setup, tmp_path):
    model, _ = setup
    state = model.sam3.state_dict()
    # the released layout: the image model under 'detector.', the tracker dropped
    ckpt = {'model': {**{'detector.' + k: v for k, v in state.items()},
                      'tracker.x': torch.zeros(1)}}
    torch.save(ckpt, tmp_path / 'sam3.pt')
    load_sam3_checkpoint(model.sam3, str(tmp_path / 'sam3.pt'))
    state.pop(next(iter(state)))
    torch.save(state, tmp_path / 'partial.pt')
    with pytest.raises(RuntimeError, match='1 missing keys'):
        load_sam3_checkpoint(model.sam3, str(tmp_path / 'partial.pt'))
