"""Data preprocessor that prepares targets AND their reference images for SAM."""
from typing import List, Optional, Sequence, Tuple

import torch
from mmengine.model.utils import stack_batch

from mmdet.models.data_preprocessors import DetDataPreprocessor
from mmdet.models.utils.misc import samplelist_boxtype2tensor
from mmdet.registry import MODELS
from mmdet.structures import SampleList


@MODELS.register_module()
class InContextDataPreprocessor(DetDataPreprocessor):
    """``DetDataPreprocessor`` that also normalises and pads each sample's references.

    SAM's own ``preprocess`` normalises first and pads with 0 afterwards; mmdet's
    preprocessor does the same with ``pad_value=0``, so with SAM's mean/std,
    ``bgr_to_rgb=True`` and ``pad_size_divisor=S`` (after a longest-side resize to S) every
    target and reference becomes an S x S tensor that SAM sees exactly as it was trained.

    After ``forward`` each data sample's ``ref_inputs`` is a (R, 3, S, S) float tensor, and
    its ``ref_masks`` (when the pipeline loads them) a (R, S, S) bool tensor padded with 0
    like the images.

    Inputs read from a SAM feature cache (metainfo ``feat_cache_signature``) are already
    SAM's outputs: they are only stacked to (B, C_tot, h, w) float32, and every sample's
    ``batch_input_shape`` / ``pad_shape`` is set to the S x S input the features came from.

    Args:
        authors_conventions: prepare the inputs as the authors' code does (a model trained
            there then predicts here what it predicts there; docs/insam_detr.md):

            - the channels stay BGR (``bgr_to_rgb`` / ``rgb_to_bgr`` are ignored), while
              SAM's RGB mean/std still normalise them;
            - images are padded with 0-valued pixels BEFORE normalising (their pipeline's
              ``FixShapeResize`` pads, then SAM's ``preprocess`` normalises), so SAM sees
              the padding as ``-mean / std``, not 0;
            - every target's ``img_shape`` becomes the padded S x S input, as their ``Pad``
              records it: mmdet's Deformable DETR then builds no padding mask, and the head
              normalises and clamps boxes by S (theirs), not by the resized size;
            - ``scale_factor`` becomes ``(s, s)``, ``s = min(S / W0, S / H0)``, the ratio
              their ``FixShapeResize`` divides predicted boxes by (mmdet's ``Resize``
              records the ratio of the rounded size, per axis);
            - the resized (valid) size is kept as metainfo ``resized_shape``, where the mask
              head crops SAM's masks (their ``int(H0 * s + 0.5)``).

            Targets must be resized with their long side to S into an S x S input: by
            ``Resize(scale=(S, S), keep_ratio=True)``, or by their ``FixShapeResize(width=S,
            height=S, keep_ratio=True)``, which pads them itself and, for some sizes (e.g.
            640 x 424 to 1023 x 678), resizes the long side to S - 1 (the ``_authors``
            configs use it).
        **kwargs: :class:`mmdet.models.data_preprocessors.DetDataPreprocessor` arguments.
    """

    def __init__(self, *args, authors_conventions: bool = False, **kwargs) -> None:
        if authors_conventions:
            kwargs.update(bgr_to_rgb=False, rgb_to_bgr=False)
        super().__init__(*args, **kwargs)
        if authors_conventions and not self._enable_normalize:
            raise ValueError('authors_conventions normalises with SAM\'s mean and std: give '
                             'data_preprocessor.mean and .std')
        self.authors_conventions = authors_conventions

    def _zero_pixel_padding(self, batch: torch.Tensor,
                            sizes: Sequence[Tuple[int, int]]) -> torch.Tensor:
        """Authors' conventions: the padding of a normalised (B, 3, S, S) batch as 0-valued
        pixels normalised (``-mean / std`` per channel); ``sizes`` are the (h, w) of the
        images before padding."""
        # the same ops as normalising a 0 pixel, so the values are bit-identical
        fill = ((torch.zeros_like(self.mean) - self.mean) / self.std).to(batch.dtype)
        for img, (h, w) in zip(batch, sizes):
            img[:, h:, :] = fill
            img[:, :h, w:] = fill
        return batch

    def _prep_refs(self, refs: List[torch.Tensor]) -> torch.Tensor:
        out = []
        for r in refs:
            r = r.to(self.device).float()
            if self._channel_conversion:
                r = r[[2, 1, 0], ...]
            if self._enable_normalize:
                r = (r - self.mean) / self.std
            out.append(r)
        batch = stack_batch(out, self.pad_size_divisor, self.pad_value)
        if self.authors_conventions:
            batch = self._zero_pixel_padding(batch, [tuple(r.shape[-2:]) for r in refs])
        return batch

    def _authors_metainfo(self, samples: Optional[SampleList]) -> None:
        """Authors' conventions: ``img_shape`` = the padded input, ``scale_factor`` = the
        nominal ratio, the resized size kept as ``resized_shape`` (see the class)."""
        for ds in samples or []:
            meta = ds.metainfo
            side = tuple(meta['batch_input_shape'])
            h0, w0 = meta['ori_shape'][:2]
            s = min(side[1] / w0, side[0] / h0)  # FixShapeResize's expression
            # their mask crop; mmcv's keep-ratio resize rounds the same way
            resized = (int(h0 * s + 0.5), int(w0 * s + 0.5))
            if side[0] != side[1] or tuple(meta['img_shape'][:2]) not in (resized, side):
                raise ValueError(
                    f'authors_conventions expects each target resized with its long side to '
                    f'the S x S input (Resize(scale=(S, S), keep_ratio=True) or their '
                    f'FixShapeResize(width=S, height=S, keep_ratio=True), and '
                    f'pad_size_divisor=S); got an image of {tuple(meta["img_shape"][:2])} '
                    f'from {(h0, w0)} in an input of {side}')
            ds.set_metainfo(dict(resized_shape=resized, img_shape=side, scale_factor=(s, s)))

    def _forward_cached(self, data: dict) -> dict:
        data = self.cast_data(data)
        samples = data['data_samples']
        sizes = {ds.metainfo.get('feat_cache_input_size') for ds in samples}
        if len(sizes) != 1 or None in sizes:
            raise ValueError('a batch mixes cached features and images, or caches of '
                             'different input sizes: use one cache per dataloader')
        s = sizes.pop()
        for ds in samples:
            ds.set_metainfo(dict(batch_input_shape=(s, s), pad_shape=(s, s)))
        if self.boxtype2tensor:
            samplelist_boxtype2tensor(samples)
        return dict(inputs=torch.stack([f.float() for f in data['inputs']]),
                    data_samples=samples)

    def forward(self, data: dict, training: bool = False) -> dict:
        samples = data.get('data_samples') or []
        if samples and 'feat_cache_signature' in samples[0].metainfo:
            data = self._forward_cached(data)
        else:
            sizes = [tuple(x.shape[-2:]) for x in data['inputs']]
            data = super().forward(data, training)
            if self.authors_conventions:
                self._zero_pixel_padding(data['inputs'], sizes)
        if self.authors_conventions:
            self._authors_metainfo(data['data_samples'])
        for ds in data['data_samples'] or []:
            refs = ds.get('ref_inputs', None)
            if isinstance(refs, (list, tuple)):
                ds.ref_inputs = (self._prep_refs(refs) if len(refs) else None)
            masks = ds.get('ref_masks', None)
            if isinstance(masks, (list, tuple)):
                ds.ref_masks = (stack_batch([m[None].to(self.device) for m in masks],
                                            self.pad_size_divisor, 0)[:, 0].bool()
                                if len(masks) else None)
            if 'ref_tokens' in ds:
                ds.ref_tokens = ds.ref_tokens.to(self.device)
            if 'ref_instances' in ds:
                ds.ref_instances = ds.ref_instances.to(self.device)
        return data
