"""Checks of inference inputs that need no model, so that a bad one fails in a second.

Building the model (and encoding references) takes long; a mistyped bank or a wrong
reference file should not wait for it. The signature check of a bank (same SAM weights,
same preprocessing) needs the model and follows its build, still before any image.
"""
from typing import List, Optional, Sequence

from mmengine.config import Config

from ..structures.reference_bank import load_reference_bank
from ..utils.checkpoint import MissingResourceError

BANK_HINT = ('make one with tools/infer.py --save-bank or tools/misc/encode_references.py, '
             'with the config and checkpoint you infer with')


def config_encoder_kind(cfg: Config) -> Optional[str]:
    """``reference_kind`` of the config's detector (None if it has none)."""
    from mmdet.registry import MODELS
    from mmengine.registry import init_default_scope
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    klass = MODELS.get(cfg.model.type) if isinstance(cfg.model.type, str) else cfg.model.type
    return getattr(klass, 'reference_kind', None) or None


def read_bank(path: str) -> dict:
    """:func:`load_reference_bank` with one clear error for a file that is not a bank."""
    try:
        return load_reference_bank(path)
    except (MissingResourceError, ValueError):
        raise
    except Exception as e:  # noqa: BLE001 - torch raises many types for a foreign file
        raise ValueError(f'{path!r} is not a reference bank ({type(e).__name__} while '
                         f'reading it); {BANK_HINT}') from None


def check_bank_file(path: str, cfg: Config) -> List[str]:
    """Read a bank and check it was made by a model of the config's kind.

    Returns:
        Its class names (in bank order, each once).

    Raises:
        ValueError: not a bank, or a bank of another kind of model.
    """
    bank = read_bank(path)
    kind, want = (bank.get('meta') or {}).get('kind'), config_encoder_kind(cfg)
    if kind and want and kind != want:
        raise ValueError(f'reference bank {path!r} holds {kind} features; the config\'s '
                         f'model takes {want} features: {BANK_HINT}')
    return list(dict.fromkeys(bank['labels']))


def check_classes(asked: Optional[Sequence[str]], known: Sequence[str], source: str) -> None:
    """Raise ValueError naming the ``asked`` classes that ``source`` has no reference of."""
    unknown = [c for c in asked or () if c not in known]
    if unknown:
        raise ValueError(f'--classes {unknown} have no reference in {source} (its classes: '
                         f'{list(known)})')
