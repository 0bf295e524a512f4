"""SAM 2 point prompts: equal to SAM2ImagePredictor.predict(point_coords=...) for the same
weights; the matcher and SAMIC built from their SAM 2 toy configs predict through them."""
import numpy as np
import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate

from helpers import REPO, matcher_cfg
from mmsamantics.apis import build_dataset, build_model
from mmsamantics.models.matching import masks_to_boxes
from test_models.test_backbones.test_sam2_image_encoder import ref  # noqa: F401 (the fixture: sam2's own model)

pytestmark = pytest.mark.filterwarnings('ignore:`torch.jit.script` is deprecated:FutureWarning')


def test_point_masks_equal_sam2_predictor(ref):  # noqa: F811
    dec, pred, emb = ref['dec'], ref['pred'], ref['out'][-1]
    one = tuple(e[1:2] for e in emb)
    pred.set_image(ref['imgs'][1])
    points = torch.tensor([[[40., 60.], [200., 10.]], [[100., 100.], [5., 250.]],
                           [[128., 30.], [60., 200.]]])
    labels = torch.tensor([[1, 0], [1, 1], [0, 1]], dtype=torch.int)
    for multi in (True, False):
        low, iou = dec.predict_point_masks(one, points, labels, multimask_output=multi)
        k = 3 if multi else 1
        assert low.shape == (3, k, 64, 64) and iou.shape == (3, k)
        for i in range(len(points)):
            _, ref_iou, ref_low = pred.predict(point_coords=points[i].numpy(),
                                               point_labels=labels[i].numpy(),
                                               multimask_output=multi)
            torch.testing.assert_close(low[i].clamp(-32, 32), torch.from_numpy(ref_low),
                                       atol=1e-4, rtol=1e-4)
            torch.testing.assert_close(iou[i], torch.from_numpy(ref_iou), atol=1e-5,
                                       rtol=1e-5)
    # default labels: all foreground, one point per prompt (the matcher's grid)
    low, _ = dec.predict_point_masks(one, points[:, :1])
    _, _, ref_low = pred.predict(point_coords=points[0, :1].numpy(), point_labels=np.ones(1))
    torch.testing.assert_close(low[0].clamp(-32, 32), torch.from_numpy(ref_low), atol=1e-4,
                               rtol=1e-4)
    with pytest.raises(ValueError, match=r'points must be \(N, P, 2\)'):
        dec.predict_point_masks(one, points[0])
    with pytest.raises(ValueError, match='point_labels must be'):
        dec.predict_point_masks(one, points, labels[:2])


def _check(out, ds_list):
    for d in out:
        p = d.pred_instances
        h, w = d.metainfo['ori_shape'][:2]
        assert p.masks.shape[1:] == (h, w) and p.masks.dtype == torch.bool
        assert torch.equal(p.bboxes, masks_to_boxes(p.masks).to(p.bboxes)) or len(p) == 0
        assert set(p.labels.tolist()) <= set(d.ref_instances.labels.tolist())
    return sum(len(d.pred_instances) for d in out)


def test_matcher_on_sam2(toy_root):
    cfg = matcher_cfg(toy_root)
    sam2 = Config.fromfile(f'{REPO}/configs/matcher/matcher_sam2-tiny_dinov2-tiny_toy-world.py')
    cfg.model.backbone = sam2.model.backbone
    cfg.model.mask_head = sam2.model.mask_head
    cfg.test_dataloader.dataset.ref_set_file = None  # references drawn with ref_seed
    torch.manual_seed(0)
    model = build_model(cfg, None, 'cpu')
    assert type(model.mask_head.decoder).__name__ == 'SAM2PromptDecoder'
    ds = build_dataset(cfg, 'test')
    batch = model.data_preprocessor(pseudo_collate([ds[i] for i in range(2)]), False)
    out = model.predict(batch['inputs'], batch['data_samples'])
    assert _check(out, ds) > 0  # every grid proposal kept: the SAM 2 masks reach the output


def test_samic_on_sam2(toy_root):
    cfg = Config.fromfile(f'{REPO}/configs/samic/samic_hsnet-r50_sam2-tiny_1xb4-30e_toy-world.py')
    cfg.test_dataloader.dataset.data_root = toy_root + '/'
    cfg.test_dataloader.dataset.ref_set_file = None  # references drawn with ref_seed
    # a random prompter: peaks wherever its heatmap exceeds the mean
    cfg.model.test_cfg.update(peak_thr=0.0, min_region_area=0)
    torch.manual_seed(0)
    model = build_model(cfg, None, 'cpu')
    assert type(model.mask_head.decoder).__name__ == 'SAM2PromptDecoder'
    ds = build_dataset(cfg, 'test')
    batch = model.data_preprocessor(pseudo_collate([ds[i] for i in range(2)]), False)
    with torch.no_grad():  # as the test loop runs it
        out = model.predict(batch['inputs'], batch['data_samples'])
    assert _check(out, ds) > 0
