"""CLIP / DINOv2 image encoders from timm for linear probing (paper §4.1).

Shape shorthand: B batch, S input side (224), C the feature width: the ViT width for the
DINOv2 CLS token (384 / 768 / 1024 / 1536 for S / B / L / g), the projection width for the
CLIP image embedding (512 for ViT-B/16, 768 for ViT-L/14).

The model is created by ``timm.create_model(model_name, pretrained=False, **timm_kwargs)``
(nothing is downloaded) and the weights are read from a local file: a timm-format state
dict (``.safetensors`` / ``.pth`` / ``.bin`` from the ``timm/<model>`` Hugging Face repo) or
an original release that timm's own ``checkpoint_filter_fn`` converts (the official
``dinov2_vit*14_pretrain.pth``, OpenAI CLIP ``visual.*`` state dicts). The filter also
resamples DINOv2's 518-px position embedding to the 224-px grid the paper uses.
"""
import importlib
import os.path as osp
from typing import Dict, Optional

from mmpretrain.registry import MODELS
from torch import Tensor

from ..utils.checkpoint import MissingResourceError, load_state_dict_file, load_strict
from .frozen_pooled_backbone import FrozenPooledBackbone

FEATURES = ('cls', 'embedding')

# where to get each real model's weights (appended to a missing-file error)
TIMM_WEIGHT_HINTS: Dict[str, str] = {
    **{f'vit_{n}_patch14_dinov2': f'https://dl.fbaipublicfiles.com/dinov2/dinov2_vit{s}14/'
       f'dinov2_vit{s}14_pretrain.pth'
       for n, s in (('small', 's'), ('base', 'b'), ('large', 'l'), ('giant', 'g'))},
    **{m: f'model.safetensors of https://huggingface.co/timm/{m}.openai'
       for m in ('vit_base_patch16_clip_quickgelu_224', 'vit_large_patch14_clip_quickgelu_224',
                 'vit_base_patch16_clip_224', 'vit_large_patch14_clip_224')},
}


def _read_weights(path: str, hint: str) -> Dict[str, Tensor]:
    if path.endswith('.safetensors'):
        if not osp.isfile(path):
            raise MissingResourceError(f'checkpoint file not found: {path!r}. {hint}'.strip())
        from safetensors.torch import load_file
        return load_file(path)
    return load_state_dict_file(path, hint)


@MODELS.register_module()
class TimmProbeBackbone(FrozenPooledBackbone):
    """A frozen timm ViT returning the DINOv2 CLS token or the CLIP image embedding.

    Args:
        model_name: timm model name, e.g. ``vit_small_patch14_dinov2`` or
            ``vit_base_patch16_clip_quickgelu_224``.
        feature: ``'cls'``: the final-norm CLS token of ``forward_features`` (DINOv2);
            ``'embedding'``: the model output, i.e. the CLS token through timm's head, which
            for CLIP weights is the image projection (set ``num_classes`` in
            ``timm_kwargs`` to the embedding width, 512 for ViT-B/16).
        checkpoint: local weight file, or None for random weights (toy configs, tests).
        timm_kwargs: extra ``timm.create_model`` arguments (``img_size=224`` for DINOv2,
            whose timm default is 518; ``embed_dim`` / ``depth`` / ``num_heads`` for tiny
            random models).
        micro_batch: images per encoder call (0 = the whole batch at once).
    """

    def __init__(self,
                 model_name: str,
                 feature: str = 'cls',
                 checkpoint: Optional[str] = None,
                 timm_kwargs: Optional[dict] = None,
                 micro_batch: int = 4,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(micro_batch=micro_batch, init_cfg=init_cfg)
        import timm
        if feature not in FEATURES:
            raise ValueError(f'feature must be one of {FEATURES}, got {feature!r}')
        kwargs = dict(timm_kwargs or {})
        if feature == 'cls':
            kwargs.setdefault('num_classes', 0)  # no head: the CLS token itself
        elif not kwargs.get('num_classes'):
            raise ValueError("feature='embedding' reads timm's head output: set "
                             "timm_kwargs.num_classes to the embedding width (CLIP "
                             'ViT-B/16: 512, ViT-L/14: 768)')
        hint = (f'Download {TIMM_WEIGHT_HINTS[model_name]} and point the config\'s checkpoint '
                'variable at the file (e.g. checkpoints/).' if model_name in TIMM_WEIGHT_HINTS
                else 'Set checkpoint=None for random weights.')
        # read the file first: a missing checkpoint fails before building a 1B model
        state = None if checkpoint is None else _read_weights(checkpoint, hint)
        try:
            self.encoder = timm.create_model(model_name, pretrained=False, **kwargs)
        except RuntimeError as e:  # timm: "Unknown model (...)"
            raise ValueError(f'timm cannot build {model_name!r}: {e}. See '
                             "timm.list_models('*dinov2*') / ('*clip*').") from e
        if getattr(self.encoder, 'global_pool', 'token') != 'token' and feature == 'cls':
            raise ValueError(f'{model_name} pools with {self.encoder.global_pool!r}, not a '
                             "CLS token: use feature='embedding' or a ViT with a class token")
        if state is not None:
            # timm's converter for this architecture: DINOv2 / OpenAI-CLIP layouts, pos-embed
            # resampling to the configured img_size
            filt = getattr(importlib.import_module(type(self.encoder).__module__),
                           'checkpoint_filter_fn', None)
            if filt is not None:
                state = filt(state, self.encoder)
            load_strict(self.encoder, state, source=checkpoint)
        self.feature = feature
        self.out_channels = (self.encoder.num_features if feature == 'cls'
                             else self.encoder.num_classes)
        size = getattr(getattr(self.encoder, 'patch_embed', None), 'img_size', None)
        dynamic = getattr(getattr(self.encoder, 'patch_embed', None), 'dynamic_img_size', False)
        self.img_size = None if size is None or dynamic else int(size[0])
        self._freeze()

    def pool(self, x: Tensor) -> Tensor:
        """Args: x (B, 3, S, S). Returns: (B, C) CLS token or image embedding."""
        if self.feature == 'cls':
            tokens = self.encoder.forward_features(x)  # (B, 1 + registers + N, C), normed
            return tokens[:, 0]
        return self.encoder(x)  # CLS -> norm -> head (CLIP: image projection)


