"""InContextInferencer with the training-free matcher: same predictions as its test pipeline."""
import torch

from helpers import (assert_same_predictions, inferencer_vs_pipeline, matcher_cfg, train_refs,
                     val_images)
from mmsamantics.apis import InContextInferencer


def test_matcher_inferencer_equals_model_predict(toy_root):
    torch.manual_seed(0)
    inf = InContextInferencer(matcher_cfg(toy_root), None, device='cpu')
    # the same instances as masks, given to the inferencer and, as COCO polygons, to the
    # dataset pipeline
    res, pred = inferencer_vs_pipeline(inf, val_images(toy_root)[0], train_refs(toy_root)[0])
    assert_same_predictions(inf, res, pred)
