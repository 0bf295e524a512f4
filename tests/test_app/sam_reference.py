"""SAM's own masks for a prompt (``segment_anything.SamPredictor`` on the embedding of a fresh
encoder pass): the reference the annotation tool's masks are compared with."""
import numpy as np
import torch
from segment_anything import SamPredictor
from segment_anything.modeling import Sam

from mmsamantics.utils.images import load_resized, preprocess_images


def sam_masks(model, path, points=None, box=None, multimask=False):
    """(masks (K, H0, W0) bool, IoU (K,)) of SamPredictor.predict for one prompt on ``path``.

    ``points`` are ``[x, y, label]`` rows in original pixels, ``box`` xyxy.
    """
    dec = model.mask_head.decoder
    sam = Sam(image_encoder=model.backbone.encoder, prompt_encoder=dec.prompt_encoder,
              mask_decoder=dec.mask_decoder).eval()
    pred = SamPredictor(sam)
    img, _, ori = load_resized(path, model.backbone.img_size)
    with torch.no_grad():
        pred.features = model.backbone(preprocess_images(model.data_preprocessor, [img]))[-1]
    pred.original_size, pred.input_size, pred.is_image_set = tuple(ori), img.shape[:2], True
    pts = None if not points else np.asarray(points, np.float32)
    masks, iou, _ = pred.predict(
        point_coords=None if pts is None else pts[:, :2],
        point_labels=None if pts is None else pts[:, 2],
        box=None if box is None else np.asarray(box, np.float32), multimask_output=multimask)
    return masks.astype(bool), iou
