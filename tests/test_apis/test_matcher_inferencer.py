"""InContextInferencer with the training-free matcher: same predictions as its test pipeline."""
import mmcv
import numpy as np
import torch
from mmcv.transforms import Compose
from mmengine.dataset import pseudo_collate

from helpers import decode, matcher_cfg, train_refs, val_images
from mmsamantics.apis import InContextInferencer
from mmsamantics.utils.images import decode_coco_mask


def test_matcher_inferencer_equals_model_predict(toy_root):
    torch.manual_seed(0)
    inf = InContextInferencer(matcher_cfg(toy_root), None, device='cpu')
    refs, _ = train_refs(toy_root)
    # the same instances as masks, given to the inferencer and, as COCO polygons, to the
    # dataset pipeline
    for path, name, box, _, ann in refs:
        h, w = mmcv.imread(path).shape[:2]
        inf.add_reference(path, name, mask=decode_coco_mask(ann['segmentation'], h, w))
    img = val_images(toy_root)[0]
    res = inf(img, score_thr=-1.0, max_dets=1000, show_progress=False)[0]
    label = {c: i for i, c in enumerate(inf.classes)}
    pipe = Compose(inf.cfg.test_dataloader.dataset.pipeline)
    data = pipe(dict(img_path=img, img_id=0, references=[
        dict(img_path=p, bbox=b, label=label[n], key=f'direct{i}',
             segmentation=a['segmentation'], img_hw=mmcv.imread(p).shape[:2])
        for i, (p, n, b, _, a) in enumerate(refs)]))
    data = inf.model.data_preprocessor(pseudo_collate([data]), False)
    with torch.no_grad():
        pred = inf.model.predict(data['inputs'], data['data_samples'])[0].pred_instances
    assert len(res['scores']) == len(pred) > 0
    np.testing.assert_allclose(res['scores'], pred.scores.numpy(), atol=1e-4)
    assert res['labels'] == [inf.classes[i] for i in pred.labels.tolist()]
    assert (decode(res['masks']) == pred.masks.numpy()).mean() > 0.999
