"""How :class:`InContextInferencer` turns references into features and predicts with them.

Every in-context detector (:class:`~mmsamantics.models.InContextDetector`) turns reference
examples into per-reference features once, with its own ``encode_references``, and predicts
on target images given those features, lent to it with ``using_reference_features``. The
model says what it needs (``reference_kind``, ``reference_needs_masks``,
``reference_feature_shape``), so :class:`ReferenceEncoder` serves every such detector as
it is. A model whose inference needs more work than that registers a subclass under its
class name (SAMIC: its prompter takes the reference image and a heatmap)::

    @REFERENCE_ENCODERS.register_module(name='MyDetector')
    class MyDetectorReferenceEncoder(ReferenceEncoder):
        def encode(self, images, refs, batch_size=4): ...

:func:`build_reference_encoder` picks the encoder of a built model by walking its class
hierarchy, so subclasses of a registered detector work without registering again.

Shape shorthand: B targets, R references, F the per-reference feature shape (InSAM-DETR:
T x D tokens).
"""
from typing import List, Sequence, Tuple

import numpy as np
import torch
from mmcv.transforms import Compose
from mmengine.config import Config
from mmengine.registry import Registry
from mmengine.structures import InstanceData
from torch import Tensor

from mmdet.structures import SampleList
from ..structures import feature_rows, stack_features
from ..structures.reference_store import Feature
from .references import Reference

REFERENCE_ENCODERS = Registry('in-context reference encoder', scope='mmsamantics')


class ReferenceEncoder:
    """Base class: encode references once, predict on targets with them.

    Args:
        model: the built detector, in eval mode on its device.
        cfg: the config it was built from (its test pipeline is reused for targets).
    """

    def __init__(self, model, cfg: Config) -> None:
        self.model = model
        self.cfg = cfg
        self.scale = self.reference_scale()  # references are resized to S x S like targets

    @property
    def kind(self) -> str:
        """Short name of the features, written into reference banks."""
        return self.model.reference_kind

    @property
    def with_masks(self) -> bool:
        """Whether ``encode_references`` is given each reference's mask (else its box)."""
        return self.model.reference_needs_masks

    @property
    def signature(self) -> str:
        """Fingerprint of everything the features depend on (weights, preprocessing).

        Reference banks store it; a bank whose signature differs is refused. Default: the
        detector's ``cache_signature``; an encoder that makes other features overrides it.
        """
        return self.model.cache_signature

    @property
    def feature_shape(self) -> Tuple[int, ...]:
        """Shape F of one reference's features."""
        return tuple(self.model.reference_feature_shape)

    def encode(self, images: Sequence[np.ndarray], refs: Sequence[Sequence[Reference]],
               batch_size: int = 4) -> List[Tensor]:
        """Features of the references of each image.

        Args:
            images: (H_i, W_i, 3) BGR uint8 images.
            refs: the references on each image (boxes in original pixels).
            batch_size: reference images per backbone pass (memory: a SAM ViT-H image
                holds ~3 GB of fp32 activations).

        Returns:
            Per image, a (n_i, *F) tensor in the order of ``refs[i]``.
        """
        dicts = [dict(key=r.key, img=img, bbox=r.box,
                      mask=r.instance_mask() if self.with_masks else None)
                 for img, rs in zip(images, refs) for r in rs]
        _, feats = self.model.encode_references(
            dicts, batch_size=max(1, min(batch_size, len(images))), scale=self.scale)
        return list(feats.split([len(rs) for rs in refs]))

    def predict(self, inputs: Tensor, data_samples: SampleList, keys: List[str],
                labels: Tensor, features: Feature, boxes: Tensor) -> SampleList:
        """Predict every queried class on a batch of targets.

        Args:
            inputs: (B, 3, H, W) targets after the model's data preprocessor.
            data_samples: their data samples (image metainfo).
            keys: (R,) keys of the references to use.
            labels: (R,) class index of each reference; references sharing a label are
                shots of one class.
            features: (R, *F) their features (a tuple of those for tuple features), on the
                model's device.
            boxes: (R, 4) their boxes (original pixels of their own image).

        Returns:
            The data samples with ``pred_instances`` (``bboxes`` in original pixels,
            ``scores``, ``labels`` = class index, ``masks`` (N, H, W) bool when predicted).
        """
        device = inputs.device
        # boxes are not used: every key is found in the lent features
        self.attach_references(data_samples, keys, labels, boxes, device)
        lent = {k: feature_rows(features, j) for j, k in enumerate(keys)}
        with torch.no_grad(), self.model.using_reference_features(lent):
            return self.model.predict(inputs, data_samples)

    def bank_payload(self, features: List[Feature]) -> Tuple[Feature, dict]:
        """What a bank stores of the registered references' features: (the features (R, *F)
        as the model's own bank holds them, more ``meta``)."""
        return stack_features(features), {}

    def bank_features(self, bank: dict, path: str) -> List[Feature]:
        """The per-reference features of a bank read by :meth:`InContextDetector.load_bank`
        (its signature checked), refused if their shape is not :attr:`feature_shape`."""
        tokens = bank['tokens'].float()
        if tuple(tokens.shape[1:]) != self.feature_shape:
            raise ValueError(f'reference bank {path!r} holds features of shape '
                             f'{tuple(tokens.shape[1:])}; this model uses '
                             f'{self.feature_shape}')
        return list(tokens)

    @staticmethod
    def attach_references(data_samples: SampleList, keys: List[str], labels: Tensor,
                          boxes: Tensor, device) -> None:
        """Give every target the queried references (``ref_instances``, ``ref_keys``), as
        the dataset pipeline would; their features are lent to the model by the caller."""
        for ds in data_samples:
            ds.ref_instances = InstanceData(bboxes=boxes.to(device), labels=labels.to(device))
            ds.set_metainfo(dict(ref_keys=list(keys)))

    def reference_scale(self) -> int:
        """S of ``LoadInContextReferences(scale=(S, S))`` in the test pipeline (else the SAM
        input size): references are resized as the detector's own pipeline resizes them."""
        pipeline = self.cfg.get('test_dataloader', {}).get('dataset', {}).get('pipeline', [])
        for t in pipeline or []:
            if str(t.get('type', '')).split('.')[-1] == 'LoadInContextReferences':
                return int(max(t['scale']))
        return int(self.model.backbone.img_size)

    def target_pipeline(self) -> Compose:
        """The config's test pipeline without its loading and reference transforms.

        Images are read by the inferencer (paths or arrays), and references are attached
        by :meth:`predict`, so what remains is the resize (and any other geometric
        transform) plus packing into a plain ``PackDetInputs``.
        """
        pipeline = self.cfg.get('test_dataloader', {}).get('dataset', {}).get('pipeline')
        if pipeline is None:
            pipeline = self.cfg.get('test_pipeline')
        if pipeline is None:
            raise ValueError('the config has neither test_dataloader.dataset.pipeline nor '
                             'test_pipeline: the inferencer reuses its resize settings')
        steps = []
        for t in pipeline:
            name = t['type'] if isinstance(t['type'], str) else t['type'].__name__
            name = name.split('.')[-1]
            if name.startswith('Load'):
                continue
            if name.startswith('Pack'):
                t = dict(type='mmdet.PackDetInputs',
                         **({'meta_keys': t['meta_keys']} if 'meta_keys' in t else {}))
            steps.append(t)
        return Compose(steps)


def build_reference_encoder(model, cfg: Config) -> ReferenceEncoder:
    """The registered encoder of ``model``'s class (or of its nearest registered base),
    else :class:`ReferenceEncoder` for an in-context detector with features of one fixed
    shape."""
    for klass in type(model).__mro__:
        encoder = REFERENCE_ENCODERS.module_dict.get(klass.__name__)
        if encoder is not None:
            return encoder(model, cfg)
    try:
        model.reference_feature_shape
    except (AttributeError, NotImplementedError):
        raise ValueError(f'{type(model).__name__} cannot take registered references: the '
                         'inference API needs an in-context detector (InContextDetector) '
                         'whose reference features have one fixed shape '
                         '(reference_feature_shape), or a ReferenceEncoder registered under '
                         'its class name (mmsamantics/apis/reference_encoder.py)') from None
    return ReferenceEncoder(model, cfg)
