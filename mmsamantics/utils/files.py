"""Reading the small JSON files users hand to the tools, with errors that say what to do."""
import json
import os.path as osp
from typing import Any

from .checkpoint import MissingResourceError


def read_json(path: str, what: str, hint: str = '') -> Any:
    """The parsed JSON at ``path``.

    Args:
        path: the file. what: what it is, for the messages (``'reference file'``).
        hint: how to make or get a right one, appended to the messages.

    Raises:
        MissingResourceError: (a ``FileNotFoundError``) the file does not exist.
        ValueError: it is not valid JSON.
    """
    if not osp.isfile(path):
        raise MissingResourceError(f'{what} not found: {path!r}. {hint}'.strip())
    try:
        with open(path) as f:
            return json.load(f)
    except ValueError as e:
        raise ValueError(f'{what} {path!r} is not valid JSON ({e}). {hint}'.strip()) from e
