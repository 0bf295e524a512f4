"""One store of per-reference features for every in-context detector.

A reference (one annotated instance, named by a key) is turned into features by frozen
networks, so its features never change while the weights do not. Every detector looks them
up the same way, in this order:

1. **lent**: features the caller computed with this model itself and lends for a block
   (:meth:`ReferenceStore.lending`; the inference API's registered references);
2. **bank**: a reference-bank file (:mod:`mmsamantics.structures.reference_bank`), loaded
   lazily and refused unless its signature is the owner's current one (checked again
   whenever that signature changes, e.g. when a mode that the features depend on is
   switched);
3. **cache**: an in-memory LRU cache of features computed earlier, bounded to
   ``max_entries``, its entries cloned and kept in ``cache_dtype`` on ``cache_device``
   (CPU by default) so that a large cache never holds GPU memory or a batch alive;
4. **encode**: the detector's own callable, called once with every key still missing.

A feature is a tensor of shape F (InSAM-DETR: T x D tokens; the matcher: 1 x C) or a tuple
of tensors (SAMIC: one ResNet map per level); lookups return them stacked on a new first
dimension, R x F, on the caller's device and dtype.
"""
from collections import OrderedDict
from contextlib import contextmanager
from typing import (Callable, Dict, Hashable, Iterator, List, Mapping, Optional, Sequence,
                    Tuple, Union)

import torch
from torch import Tensor

from .reference_bank import load_reference_bank

Feature = Union[Tensor, Tuple[Tensor, ...]]
Encoder = Callable[[List[str]], Feature]


def map_feature(fn: Callable[[Tensor], Tensor], feat: Feature) -> Feature:
    """``fn`` applied to a feature's tensor (or to each tensor of a tuple feature)."""
    return tuple(fn(f) for f in feat) if isinstance(feat, (tuple, list)) else fn(feat)


def feature_rows(feat: Feature, rows) -> Feature:
    """Rows ``rows`` (an int, a list or an index tensor) of a batched feature: a tensor,
    or a tuple of tensors (SAM 2 / HQ-SAM embeddings, SAMIC's levels, SAM 3's crops)."""
    return map_feature(lambda f: f[rows], feat)


def stack_features(feats: Sequence[Feature]) -> Feature:
    """R features of shape F (tensors, or tuples of tensors) -> (R, *F) (a tuple of those)."""
    if isinstance(feats[0], (tuple, list)):
        return tuple(torch.stack([f[i] for f in feats]) for i in range(len(feats[0])))
    return torch.stack(list(feats))


class ReferenceStore:
    """Per-reference features: lent, else bank, else LRU cache, else encoded.

    Args:
        signature: callable giving the owner's current signature (weights + preprocessing
            + anything else the features depend on); needed for a bank and for
            :meth:`check_signature`. Give a bound method, not a lambda, so that a deep copy
            of the owner checks its own signature.
        bank_file: reference-bank file, or None.
        max_entries: features kept in the in-memory cache (least recently used evicted
            first); 0 disables the cache.
        cache_dtype: dtype of the cached copies (float16 halves their memory; float32
            keeps them bit-identical to freshly computed ones).
        cache_device: device of the cached copies.
        namespace: callable giving the part of the cache key besides the reference key
            (e.g. the matcher's feature mode), so features computed in one setting are
            never returned in another; None: one namespace.
        made_with: what a signature covers, for the refusal message (``'SAM or
            preprocessing'``).
        rebuild: the command(s) that rebuild a refused file, for the refusal message.
    """

    def __init__(self,
                 signature: Optional[Callable[[], str]] = None,
                 bank_file: Optional[str] = None,
                 max_entries: int = 100_000,
                 cache_dtype: torch.dtype = torch.float16,
                 cache_device: Union[str, torch.device] = 'cpu',
                 namespace: Optional[Callable[[], Hashable]] = None,
                 made_with: str = 'weights or preprocessing',
                 rebuild: str = 'tools/misc/encode_references.py') -> None:
        if max_entries < 0:
            raise ValueError(f'max_entries must be >= 0 (0 = no cache), got {max_entries}')
        self._signature_fn = signature
        self.max_entries = int(max_entries)
        self.cache_dtype = cache_dtype
        self.cache_device = torch.device(cache_device)
        self._namespace = namespace
        self.made_with = made_with
        self.rebuild = rebuild
        self._bank_file = bank_file
        self._cache: 'OrderedDict[Tuple[Hashable, str], Feature]' = OrderedDict()
        self._lent: Mapping[str, Feature] = {}
        self._bank: Optional[Dict[str, Feature]] = None
        self._bank_signature: Optional[str] = None  # the signature the bank was checked for
        self._checked: set = set()  # (their signature, ours) pairs found equal

    # ------------------------------------------------------------------ state
    @property
    def bank_file(self) -> Optional[str]:
        return self._bank_file

    @bank_file.setter
    def bank_file(self, path: Optional[str]) -> None:
        self._bank_file, self._bank, self._bank_signature = path, None, None

    def spawn(self, max_entries: Optional[int] = None) -> 'ReferenceStore':
        """An empty store with the same settings (signature, bank, cache dtype/device,
        namespace), holding ``max_entries`` (default: this store's)."""
        return ReferenceStore(self._signature_fn, self._bank_file,
                              self.max_entries if max_entries is None else max_entries,
                              self.cache_dtype, self.cache_device, self._namespace,
                              self.made_with, self.rebuild)

    def reset(self) -> None:
        """Forget everything computed or checked for the current weights (call it when
        they change): the cache, the loaded bank and the checked signatures."""
        self._cache.clear()
        self._bank, self._bank_signature = None, None
        self._checked = set()

    def __len__(self) -> int:
        """Number of cached features (all namespaces)."""
        return len(self._cache)

    def cached_keys(self) -> List[str]:
        """Reference keys cached in the current namespace, least recently used first."""
        ns = self._current_namespace()
        return [k for n, k in self._cache if n == ns]

    def _current_namespace(self) -> Hashable:
        return None if self._namespace is None else self._namespace()

    # ------------------------------------------------------------------ signatures
    @property
    def signature(self) -> str:
        if self._signature_fn is None:
            raise ValueError('this reference store has no signature: it cannot check banks '
                             'or caches')
        return self._signature_fn()

    def check_signature(self, signature: Optional[str], source: str) -> None:
        """Refuse features made by other weights or preprocessing.

        Args:
            signature: the signature ``source`` was made with.
            source: what is checked, for the message (``"reference bank 'b.pth'"``).

        Raises:
            ValueError: naming ``source``, both signatures and the rebuilding command.
        """
        mine = self.signature
        if (signature, mine) in self._checked:
            return
        if signature != mine:
            raise ValueError(
                f'{source} was made with another {self.made_with} (signature {signature}, '
                f'this model {mine}). Rebuild it with this config and checkpoint '
                f'({self.rebuild}).')
        self._checked.add((signature, mine))

    # ------------------------------------------------------------------ sources
    @contextmanager
    def lending(self, feats: Mapping[str, Feature]) -> Iterator[None]:
        """Within the block, keys of ``feats`` take those features (shape F each) before
        anything else. For features computed with this same model (no signature check)."""
        saved, self._lent = self._lent, feats
        try:
            yield
        finally:
            self._lent = saved

    def bank(self) -> Dict[str, Feature]:
        """key -> feature of ``bank_file`` (empty without one), checked against the current
        signature; loaded on first use and again when the signature has changed."""
        if self._bank_file is None:
            return {}
        sig = self.signature
        if self._bank is None or self._bank_signature != sig:
            raw = load_reference_bank(self._bank_file)
            self.check_signature(raw['signature'], f'reference bank {self._bank_file!r}')
            # floats as float32; integer features (SAM 3's uint8 crop pixels) stay compact
            toks = map_feature(lambda t: t.float() if t.is_floating_point() else t, raw['tokens'])
            self._bank = {k: feature_rows(toks, j) for j, k in enumerate(raw['keys'])}
            self._bank_signature = sig
        return self._bank

    # ------------------------------------------------------------------ lookup
    def get(self, keys: Sequence[str], encode: Optional[Encoder] = None,
            device: Optional[Union[str, torch.device]] = None,
            dtype: torch.dtype = torch.float32) -> Feature:
        """Features of ``keys``: lent, else bank, else cache, else ``encode``.

        Args:
            keys: (R,) reference keys, repeats allowed; at least one.
            encode: called once with the distinct keys found nowhere (in first-seen order),
                returns their features stacked, (n, *F); None: a missing key raises.
            device: where the result goes (default: where each feature is).
            dtype: floating dtype of the result.

        Returns:
            (R, *F) features in the order of ``keys`` (a tuple of those for tuple features).
        """
        if not len(keys):
            raise ValueError('no reference key to look up')
        lent, bank, ns = self._lent, self.bank(), self._current_namespace()
        found: Dict[str, Feature] = {}
        missing: List[str] = []
        for k in dict.fromkeys(keys):
            if k in lent:
                found[k] = lent[k]
            elif k in bank:
                found[k] = bank[k]
            elif (ns, k) in self._cache:
                found[k] = self._cache[(ns, k)]
            else:
                missing.append(k)
        if missing:
            if encode is None:
                raise KeyError(f'references {missing[:5]} are neither lent, in the bank nor '
                               'cached, and nothing can encode them')
            new = encode(missing)
            for j, k in enumerate(missing):
                found[k] = feature_rows(new, j)
        self._remember(ns, [k for k in found if k not in lent and k not in bank], found)
        return stack_features([map_feature(lambda f: f.to(device=device, dtype=dtype), found[k])
                       for k in keys])

    def _remember(self, ns: Hashable, keys: List[str], found: Dict[str, Feature]) -> None:
        """Cache copies of new features, mark ``keys`` as just used, evict the oldest."""
        if self.max_entries == 0:
            return
        for k in keys:
            if (ns, k) not in self._cache:  # a copy: never a view that keeps a batch alive
                self._cache[(ns, k)] = map_feature(lambda f: f.detach().to(
                    self.cache_device, self.cache_dtype, copy=True), found[k])
            self._cache.move_to_end((ns, k))
        while len(self._cache) > self.max_entries:
            self._cache.popitem(last=False)
