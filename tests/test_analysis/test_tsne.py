"""t-SNE analysis (paper Fig. 5): pooling, reference features, t-SNE/silhouette, the CLI."""
import json
import os.path as osp
import warnings

import cv2
import mmcv
import numpy as np
import pytest
import torch
from pycocotools.coco import COCO
from torch import nn

from helpers import REPO, TOY_CONFIG, load_tool, toy_cfg
from mmsamantics.analysis import (backbone_features, build_backbone, instance_mask,
                                  load_instances, masked_average, model_input_size,
                                  plot_embedding, reference_features, run_tsne,
                                  silhouette_report, nearest_neighbour_accuracy)

TOOL = osp.join(REPO, 'tools', 'analysis', 'tsne.py')
RANDOM_SAM = ['model.backbone.checkpoint=None', 'model.mask_head.decoder.checkpoint=None']


def toy_paths(root):
    return (osp.join(root, 'annotations', 'instances_val.json'), osp.join(root, 'val'),
            osp.join(root, 'annotations', 'splits.json'))


@pytest.fixture(scope='module')
def toy_model(toy_root):
    from mmdet.registry import MODELS
    return MODELS.build(toy_cfg(toy_root).model).eval()


@pytest.fixture(scope='module')
def toy_data(toy_root):
    ann, img_dir, splits = toy_paths(toy_root)
    with warnings.catch_warnings():  # classes too rare in the small fixture world
        warnings.simplefilter('ignore')
        return load_instances(ann, img_dir, per_class=3, min_area=16 ** 2, splits_file=splits)


def test_masked_average_hand_made():
    feat = torch.arange(2 * 4 * 4, dtype=torch.float32).reshape(2, 4, 4)  # stride 16 on 64
    mask = torch.zeros(64, 64, dtype=torch.bool)
    mask[:32, 16:48] = True  # exactly cells (0..1, 1..2)
    assert torch.allclose(masked_average(feat, mask), feat[:, :2, 1:3].mean((1, 2)))
    mask = torch.zeros(64, 64, dtype=torch.bool)
    mask[:8, :16] = True  # half of cell (0, 0) ...
    mask[:16, 16:32] = True  # ... and all of cell (0, 1)
    expect = (0.5 * feat[:, 0, 0] + feat[:, 0, 1]) / 1.5
    assert torch.allclose(masked_average(feat, mask), expect)
    with pytest.raises(ValueError, match='empty'):
        masked_average(feat, torch.zeros(64, 64))


class PixelCoords(nn.Module):
    """Fake backbone: (B, 3, H, W) -> ((B, 2, H, W) y/x pixel coordinates,)."""

    def forward(self, x):
        b, _, h, w = x.shape
        yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing='ij')
        return (torch.stack([yy, xx]).float()[None].expand(b, -1, -1, -1),)


def test_backbone_features_equal_mask_centroid(toy_root, toy_model, toy_data):
    """Pooling pixel coordinates must give each instance's mask centroid (resized pixels)."""
    ann_file = toy_paths(toy_root)[0]
    coco = COCO(ann_file)
    insts = toy_data.instances[:6]
    pooled = backbone_features(PixelCoords(), toy_model.data_preprocessor, insts, 256,
                               batch_size=4)
    assert pooled.shape == (6, 2)
    for inst, got in zip(insts, pooled):
        h, w = inst.img_hw
        new_w, new_h = mmcv.rescale_size((w, h), (256, 256))
        m = cv2.resize(coco.annToMask(inst.ann), (new_w, new_h),
                       interpolation=cv2.INTER_NEAREST)
        ys, xs = np.nonzero(m)
        np.testing.assert_allclose(got.numpy(), [ys.mean(), xs.mean()], atol=1e-3)
    # without a mask the box is used
    inst = insts[0]
    boxed = type(inst)(inst.img_path, inst.img_hw, inst.bbox, inst.label,
                       {k: v for k, v in inst.ann.items() if k != 'segmentation'})
    m = instance_mask(boxed, (100, 100))
    s = 100 / np.array(inst.img_hw)
    x1, y1, x2, y2 = inst.bbox
    assert m.any() and abs(np.nonzero(m)[0].mean() - (y1 + y2) / 2 * s[0]) <= 1


def test_reference_features_equal_model(toy_model, toy_data):
    model, insts = toy_model, toy_data.instances[:5]
    size = model_input_size(model)
    cached = len(model.reference_store)
    tokens, embeds = reference_features(model, insts, size, batch_size=2)
    assert len(model.reference_store) == cached and model.reference_store.max_entries > 0
    imgs, boxes = [], []
    for inst in insts:
        img = mmcv.imread(inst.img_path)
        small = mmcv.imrescale(img, (size, size))
        sy, sx = small.shape[0] / img.shape[0], small.shape[1] / img.shape[1]
        imgs.append(torch.from_numpy(small.transpose(2, 0, 1).copy()))
        boxes.append(torch.tensor(inst.bbox) * torch.tensor([sx, sy, sx, sy]))
    inputs = model.data_preprocessor(dict(inputs=imgs), False)['inputs']
    with torch.no_grad():
        ref = model._reference_tokens(inputs, torch.stack(boxes).float(),
                                      [f'direct{i}' for i in range(len(insts))])
        merged = model.token_merge(ref)
    t, d = model.token_merge.num_tokens, model.token_merge.token_dim
    assert tokens.shape == (5, t * d) and embeds.shape == merged.shape
    torch.testing.assert_close(tokens, ref.flatten(1), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(embeds, merged, atol=1e-5, rtol=1e-5)


def test_tsne_silhouette_and_plot(tmp_path):
    rng = np.random.default_rng(0)
    centres = np.eye(3, 8) * 10
    x = np.concatenate([c + rng.normal(size=(4, 8)) for c in centres])
    labels = np.repeat(np.arange(3), 4)
    rep = silhouette_report(x, labels, ['a', 'b', 'c'], novel_classes=['c'])
    assert rep['all'] > 0.5 and rep['base'] > 0.5 and rep['novel'] is None
    assert set(rep['per_class']) == {'a', 'b', 'c'}
    # leave-one-out 1-NN by cosine, against a hand-made case: 4 points on two rays
    pts4 = np.array([[1., 0.], [2., .1], [0., 1.], [.1, 3.]])
    assert nearest_neighbour_accuracy(pts4, np.array([0, 0, 1, 1])) == 1.0
    assert nearest_neighbour_accuracy(pts4, np.array([0, 1, 0, 1])) == 0.0
    assert nearest_neighbour_accuracy(pts4, np.array([0, 0, 0, 1])) == 0.5
    pts = run_tsne(x, seed=0, perplexity=30)  # clipped below N=12
    assert pts.shape == (12, 2) and np.isfinite(pts).all()
    with pytest.raises(ValueError, match='at least 5'):
        run_tsne(x[:4])
    out = tmp_path / 'p.png'
    plot_embedding(pts, labels, ['a', 'b', 'c'], ['c'], 'title', str(out))
    assert out.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'


def test_build_backbone_from_dict_and_mmpretrain(toy_model, toy_data):
    pre = dict(type='InContextDataPreprocessor', mean=[123.675, 116.28, 103.53],
               std=[58.395, 57.12, 57.375], bgr_to_rgb=True)
    bb, _, size = build_backbone("dict(type='SAMImageEncoder', preset='tiny')", pre, 1024)
    assert size == 256 and not any(p.requires_grad for p in bb.parameters())
    pytest.importorskip('mmpretrain')
    spec = ("dict(type='mmpretrain.VisionTransformer', arch='deit-tiny', img_size=64, "
            "patch_size=16, out_type='featmap')")
    bb, pre_mod, size = build_backbone(spec, pre, 256)
    assert size == 64 and pre_mod.pad_size_divisor == 64
    feats = backbone_features(bb, pre_mod, toy_data.instances[:3], size)
    assert feats.shape == (3, 192) and torch.isfinite(feats).all()
    with pytest.raises(ValueError, match='neither a config file nor'):
        build_backbone('dict(type=', pre, 256)


def test_sam3_backbone_spec(toy_data, tmp_path):
    """The SAM 3 spec file for --backbone-cfg: the released weights named when missing; its
    tiny twin's per-instance features are mask averages of sam3's own vision_features."""
    from mmsamantics.utils import MissingResourceError
    from mmsamantics.utils.images import load_resized, preprocess_images
    spec = osp.join(REPO, 'configs', '_base_', 'models', 'sam3_pe_backbone.py')
    with pytest.raises(MissingResourceError, match='checkpoints/sam3.pt'):
        build_backbone(spec, {}, 1024)
    with open(spec) as f:
        text = f.read().replace("preset='full'", "preset='tiny'").replace(
            'checkpoint=sam3_checkpoint', 'checkpoint=None').replace('= 1008', '= 112')
    (tmp_path / 'sam3_tiny.py').write_text(text)
    bb, pre, size = build_backbone(str(tmp_path / 'sam3_tiny.py'), {}, 1024)
    assert size == 112 and pre.pad_size_divisor == 112
    assert pre.mean.flatten().tolist() == pre.std.flatten().tolist() == [127.5] * 3
    inst = toy_data.instances[0]
    feats = backbone_features(bb, pre, [inst], size)
    img = load_resized(inst.img_path, size)[0]
    inputs = preprocess_images(pre, [img])
    with torch.no_grad():
        vision_features = bb.vision_backbone(inputs)[0][2][0]  # sam3's own neck, level 2
    m = torch.zeros(inputs.shape[-2:], dtype=torch.bool)
    r = instance_mask(inst, img.shape[:2])
    m[:r.shape[0], :r.shape[1]] = torch.from_numpy(r)
    assert feats.shape == (1, 32)
    assert torch.equal(feats[0], masked_average(vision_features, m))


def write_coco(path, counts):
    """A COCO JSON with ``counts[c]`` 40x40 boxes of category c+1 (one image)."""
    cats = [c for c, n in enumerate(counts) for _ in range(n)]
    anns = [dict(id=i + 1, image_id=1, category_id=c + 1, bbox=[0, 0, 40, 40], area=1600,
                 iscrowd=0) for i, c in enumerate(cats)]
    json.dump(dict(images=[dict(id=1, file_name='a.png', height=64, width=64)],
                   annotations=anns,
                   categories=[dict(id=c + 1, name=f'c{c}') for c in range(len(counts))]),
              open(path, 'w'))


@pytest.mark.e2e
def test_errors(toy_root, tmp_path):
    tool = load_tool(TOOL)
    ann, img_dir, splits = toy_paths(toy_root)
    base = ['--ann-file', ann, '--img-dir', img_dir, '--out-dir', str(tmp_path)]
    cases = [
        ([TOY_CONFIG, 'missing.pth', *base], "checkpoint 'missing.pth'"),
        ([TOY_CONFIG, '--ann-file', 'no.json', '--img-dir', img_dir], "annotation file 'no"),
        ([TOY_CONFIG, '--ann-file', ann, '--img-dir', 'no_dir'], "image folder 'no_dir'"),
        ([TOY_CONFIG, *base, '--cfg-options', 'model.backbone.checkpoint=nowhere/sam.pth'],
         "checkpoint 'nowhere/sam.pth'"),
    ]
    for argv, msg in cases:
        with pytest.raises(SystemExit) as e:
            tool.main(argv)
        assert msg in str(e.value), (argv, e.value)
    few = tmp_path / 'few.json'
    write_coco(few, [3, 1, 0])
    with pytest.warns(UserWarning, match="class 'c1' has 1 instance"):
        with pytest.raises(SystemExit, match=r'only 3 instances.*at least 5'):
            tool.main([TOY_CONFIG, '--ann-file', str(few), '--img-dir', str(tmp_path)])
    write_coco(few, [3, 3, 2, 1])
    with pytest.warns(UserWarning, match="'c3'"):
        data = load_instances(str(few), str(tmp_path), per_class=2)
    assert data.class_names == ['c0', 'c1', 'c2'] and list(data.labels) == [0, 0, 1, 1, 2, 2]


@pytest.mark.e2e
def test_cli_end_to_end(toy_root, tmp_path, capsys):
    """The tool's main() (in-process: a subprocess would pay the imports again)."""
    ann, img_dir, splits = toy_paths(toy_root)
    out = tmp_path / 'tsne'
    torch.manual_seed(0)  # the random tiny SAM the tool builds
    load_tool(TOOL).main([TOY_CONFIG, '--ann-file', ann, '--img-dir', img_dir, '--splits-file',
                      splits, '--per-class', '4', '--min-area', '256', '--out-dir', str(out),
                      '--cfg-options', *RANDOM_SAM])
    assert 'silhouette' in capsys.readouterr().out
    for kind in ('tokens', 'mlp', 'backbone'):
        png = (out / f'tsne_{kind}.png').read_bytes()
        assert png[:8] == b'\x89PNG\r\n\x1a\n' and len(png) > 10_000
    summary = json.loads((out / 'tsne_summary.json').read_text())
    assert summary['novel_classes'] and set(summary['novel_classes']) <= set(summary['classes'])
    # fixed-seed values (the random tiny SAM of torch.manual_seed(0) above); the 8-image
    # world has too few novel instances for a novel silhouette
    expected = dict(tokens=(-0.058319, 0.073505), mlp=(-0.064373, 0.070973),
                    backbone=(0.367328, 0.388487))
    for kind, (all_, base) in expected.items():
        sil = summary[kind]['silhouette']
        assert sil['all'] == pytest.approx(all_, abs=1e-4), kind
        assert sil['base'] == pytest.approx(base, abs=1e-4), kind
        assert sil['novel'] is None


def test_pick_output_skips_an_interactive_embedding_tuple():
    """SAM 2 / SAM 3 interactive encoders end with the decoder's embedding tuple: the default
    takes the last feature map; asking for the tuple by index is refused with the fix."""
    from mmsamantics.analysis.tsne import pick_output
    level, emb = torch.randn(2, 8, 4, 4), tuple(torch.randn(2, 8, s, s) for s in (4, 16, 8))
    assert pick_output((level, emb)) is level
    assert pick_output((level, emb), 0) is level
    assert pick_output(level) is level
    with pytest.raises(ValueError, match='embedding of an interactive image encoder'):
        pick_output((level, emb), -1)
    with pytest.raises(ValueError, match='expected'):
        pick_output((torch.randn(2, 8, 4),))
