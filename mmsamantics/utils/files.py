"""Reading the small JSON files users hand to the tools, with errors that say what to do."""
import hashlib
import json
import os
import os.path as osp
import tempfile
from typing import Any, Optional

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


def write_json_atomic(path: str, obj: Any, indent: Optional[int] = None) -> None:
    """``json.dump`` to a unique temporary file beside ``path``, synced, then renamed over it.

    A reader sees the old file or the new one, never a half-written one (an interrupted
    write leaves ``path`` as it was); the folder is created when missing.
    """
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=osp.basename(path) + '.', suffix='.tmp', dir=folder)
    try:
        with os.fdopen(fd, 'w') as f:
            json.dump(obj, f, indent=indent)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)


def file_digest(path: str, algorithm: str = 'sha1') -> str:
    """Hex digest of a file's bytes (``hashlib`` ``algorithm``), read in 1 MiB chunks."""
    h = hashlib.new(algorithm)
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            h.update(chunk)
    return h.hexdigest()
