"""What every in-context detector exposes of its :class:`ReferenceStore`."""
from contextlib import AbstractContextManager
from typing import Dict, Optional

from torch import Tensor

from ...structures import ReferenceStore


class ReferenceStoreMixin:
    """The reference bank and the lending hook of a detector's ``reference_store``.

    A detector sets ``self.reference_store`` (built with ``signature=
    self._reference_signature``) and defines ``cache_signature``.
    """

    reference_store: ReferenceStore

    # a bound method, not a lambda: a deep copy of the model checks its own signature
    def _reference_signature(self) -> str:
        return self.cache_signature

    def _invalidate_caches(self) -> None:
        """Forget the cached weights' fingerprint (``_signature``) and every stored feature:
        call it when the weights change (a ``load_state_dict`` pre-hook)."""
        self._signature = None
        self.reference_store.reset()

    @property
    def reference_bank(self) -> Optional[str]:
        """The reference-bank file of the store (settable)."""
        return self.reference_store.bank_file

    @reference_bank.setter
    def reference_bank(self, path: Optional[str]) -> None:
        self.reference_store.bank_file = path

    def using_reference_features(self, feats: Dict[str, Tensor]) -> AbstractContextManager:
        """Within the block, references whose key is in ``feats`` use those features (one
        reference's features, as :meth:`encode_references` gives them), computed with this
        model by the caller: no signature check; they take precedence over the bank."""
        return self.reference_store.lending(feats)
