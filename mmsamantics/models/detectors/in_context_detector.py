"""The base of every in-context detector: references in, detections of their classes out.

An in-context detector is given, with each target image, references (an annotated instance
of each queried class, named by a key) and finds the instances of those classes. Its
frozen networks turn a reference into per-reference features (InSAM-DETR: SAM tokens; the
matcher: a DINOv2 prototype; PerSAM: a SAM target embedding; SAMIC: ResNet maps; SAM 3:
exemplar crops). What every such detector shares lives here, once:

- its :class:`~mmsamantics.structures.ReferenceStore` (lent features, the reference bank,
  the in-memory cache), built from ``reference_store=dict(bank=..., cache_size=...,
  cache_dtype=..., cache_device=...)``;
- its signature (:func:`~mmsamantics.structures.signature_of` of :meth:`signature_parts`),
  which banks and caches are checked against, with the costly weight fingerprints computed
  once per weights and forgotten with every stored feature when weights are loaded;
- the reference-bank file format: :meth:`save_bank` / :meth:`load_bank`, whichever tool
  writes or reads one (``tools/misc/encode_references.py``, the inference API).

A subclass defines :meth:`signature_parts`, :meth:`encode_references` and
:attr:`reference_feature_shape`, and sets :attr:`reference_kind` (and
:attr:`reference_needs_masks`). Shape shorthand: R references, F the per-reference feature
shape.
"""
import warnings
from contextlib import AbstractContextManager
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn

from mmdet.models.detectors import BaseDetector
from ...structures import ReferenceStore, signature_of, weights_fingerprint
from ...structures.reference_bank import load_reference_bank, save_reference_bank

Feature = Union[Tensor, Tuple[Tensor, ...]]

# model keys of earlier configs -> the key of ``reference_store`` that replaces each
LEGACY_STORE_KEYS = dict(reference_bank='bank', ref_cache_size='cache_size',
                         ref_cache_dtype='cache_dtype', ref_cache_device='cache_device')


class InContextDetector(BaseDetector):
    """:class:`mmdet.models.BaseDetector` + the reference store, signature and banks.

    Args:
        reference_store: the store's settings, over :attr:`default_reference_store`:
            ``bank`` (a reference-bank file, or None), ``cache_size`` (features kept in
            memory, least recently used evicted first; 0 disables the cache),
            ``cache_dtype`` (``'float32'`` keeps cached features bit-identical to fresh
            ones; ``'float16'`` halves their memory), ``cache_device`` (where cached
            features live; the CPU by default, so a large cache never holds GPU memory).
        *args, **kwargs: the arguments of the detector's other bases. The keys of earlier
            configs (``reference_bank``, ``ref_cache_size``, ``ref_cache_dtype``,
            ``ref_cache_device``) are still read, with a warning naming the new key.
    """

    #: short name of the features, written into reference banks (a bank of another kind
    #: is refused before the model is built)
    reference_kind: str = ''
    #: whether :meth:`encode_references` reads each reference's mask (else its box only)
    reference_needs_masks: bool = False
    #: what the signature covers, for the refusal message of a bank or cache
    reference_made_with: str = 'weights or preprocessing'
    #: the command(s) that rebuild a refused bank or cache
    reference_rebuild: str = 'tools/misc/encode_references.py'
    default_reference_store: dict = dict(bank=None, cache_size=100_000,
                                         cache_dtype='float32', cache_device='cpu')

    def __init__(self, *args, reference_store: Optional[dict] = None, **kwargs) -> None:
        store = self._store_settings(reference_store, kwargs)
        super().__init__(*args, **kwargs)
        self._fingerprints: Dict[int, Tuple[nn.Module, str]] = {}
        self.reference_store = ReferenceStore(
            signature=self._reference_signature, bank_file=store['bank'],
            max_entries=store['cache_size'], cache_dtype=getattr(torch, store['cache_dtype']),
            cache_device=store['cache_device'], namespace=self._reference_namespace,
            made_with=self.reference_made_with, rebuild=self.reference_rebuild)
        # other weights make every stored feature and fingerprint stale
        self._register_load_state_dict_pre_hook(self._on_load_state_dict)

    def _store_settings(self, given: Optional[dict], kwargs: dict) -> dict:
        """``default_reference_store`` updated by the legacy keys popped from ``kwargs``,
        then by ``given``; unknown keys raise."""
        out = dict(self.default_reference_store)
        for old, new in LEGACY_STORE_KEYS.items():
            if old in kwargs:
                value = kwargs.pop(old)
                if value != out[new]:
                    warnings.warn(f'model.{old} is now model.reference_store.{new}; the old '
                                  'key is read for now', FutureWarning, stacklevel=3)
                out[new] = value
        unknown = set(given or {}) - set(out)
        if unknown:
            raise ValueError(f'unknown reference_store keys {sorted(unknown)}; known: '
                             f'{sorted(out)}')
        out.update(given or {})
        if out['cache_dtype'] not in ('float32', 'float16', 'bfloat16'):
            raise ValueError("reference_store.cache_dtype must be 'float32', 'float16' or "
                             f"'bfloat16', got {out['cache_dtype']!r}")
        return out

    # ------------------------------------------------------------------ signature
    def signature_parts(self) -> dict:
        """Everything the reference features depend on, JSON-serialisable (weights through
        :meth:`fingerprint`, input sizes, modes, preprocessing)."""
        raise NotImplementedError(f'{type(self).__name__} must define signature_parts()')

    @property
    def cache_signature(self) -> str:
        """16-hex-digit fingerprint of :meth:`signature_parts`; banks, feature caches and
        cached tokens made with another one are refused."""
        return signature_of(self.signature_parts())

    def fingerprint(self, module: nn.Module) -> str:
        """:func:`weights_fingerprint` of a submodule, computed once per loaded weights."""
        held = self._fingerprints.get(id(module))
        if held is None or held[0] is not module:
            held = self._fingerprints[id(module)] = (module, weights_fingerprint(module))
        return held[1]

    # bound methods, not lambdas: a deep copy of the model reads its own state
    def _reference_signature(self) -> str:
        return self.cache_signature

    def _reference_namespace(self) -> Optional[str]:
        """The part of a cache key besides the reference key: a setting switchable at run
        time that the features depend on (the matcher's feature mode); None: one."""
        return None

    def _on_load_state_dict(self, *args, **kwargs) -> None:
        self._invalidate_caches()

    def _invalidate_caches(self) -> None:
        """Forget the weight fingerprints and every stored feature (weights changed)."""
        self._fingerprints = {}
        self.reference_store.reset()

    # ------------------------------------------------------------------ references
    def encode_references(self, refs: Sequence[dict], batch_size: int = 4,
                          scale: Optional[int] = None) -> Tuple[List[str], Feature]:
        """Features of references, each image read and run once.

        Args:
            refs: dicts with ``key``, ``bbox`` (xyxy, original pixels), ``img`` ((H0, W0, 3)
                BGR uint8) or ``img_path``, and ``mask`` when
                :attr:`reference_needs_masks`.
            batch_size: reference images per backbone pass.
            scale: longest side the references are resized to (default: the detector's).

        Returns:
            (keys (R,), features (R, *F) on the CPU) in the order of ``refs``; equal to the
            features the detector computes itself from a dataset reference.
        """
        raise NotImplementedError(f'{type(self).__name__} must define encode_references()')

    @property
    def reference_feature_shape(self) -> Tuple[int, ...]:
        """F, the shape of one reference's features (a bank of another shape is refused)."""
        raise NotImplementedError(f'{type(self).__name__} must define '
                                  'reference_feature_shape')

    @property
    def reference_bank(self) -> Optional[str]:
        """The reference-bank file of the store (settable)."""
        return self.reference_store.bank_file

    @reference_bank.setter
    def reference_bank(self, path: Optional[str]) -> None:
        self.reference_store.bank_file = path

    def using_reference_features(self, feats: Dict[str, Feature]) -> AbstractContextManager:
        """Within the block, references whose key is in ``feats`` use those features (one
        reference's features, as :meth:`encode_references` gives them), computed with this
        model by the caller: no signature check; they take precedence over the bank."""
        return self.reference_store.lending(feats)

    # ------------------------------------------------------------------ banks
    def save_bank(self, path: str, keys: List[str], labels: List[str], feats: Feature,
                  meta: Optional[dict] = None, signature: Optional[str] = None) -> None:
        """Write ``feats`` (R, *F) of ``keys`` (class names ``labels``) to a bank file,
        with this model's signature (or ``signature``: features made by another encoder of
        the model, e.g. the inference API's for SAMIC) and :attr:`reference_kind`."""
        meta = dict(meta or {})
        meta.setdefault('kind', self.reference_kind)
        save_reference_bank(path, keys, labels, feats,
                            self.cache_signature if signature is None else signature, meta)

    def load_bank(self, path: str, signature: Optional[str] = None) -> dict:
        """Read a bank, refused unless made with this model's signature and features of
        :attr:`reference_feature_shape` (or, with ``signature``: made with that one, the
        features of another encoder of the model, whose shape the caller checks).

        Returns:
            The bank: ``keys``, ``labels``, ``tokens`` (R, *F), ``signature``, ``meta``.
        """
        bank = load_reference_bank(path)
        if signature is not None:
            if bank['signature'] != signature:
                raise ValueError(
                    f'reference bank {path!r} was made with another model (signature '
                    f'{bank["signature"]}, this model {signature}): re-encode the references '
                    'with this config and checkpoint (tools/infer.py --save-bank)')
            return bank
        self.reference_store.check_signature(bank['signature'], f'reference bank {path!r}')
        feats = bank['tokens']
        if isinstance(feats, Tensor) and tuple(feats.shape[1:]) != tuple(
                self.reference_feature_shape):
            raise ValueError(f'reference bank {path!r} holds features of shape '
                             f'{tuple(feats.shape[1:])}; this model uses '
                             f'{tuple(self.reference_feature_shape)}')
        return bank
