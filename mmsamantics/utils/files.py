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
    write leaves ``path`` as it was); the folder is created when missing. The file gets the
    permissions of any file the user creates (0666 less the umask), not mkstemp's 0600.
    """
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=osp.basename(path) + '.', suffix='.tmp', dir=folder)
    try:
        os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp's 0600: as open() would create it
        with os.fdopen(fd, 'w') as f:
            json.dump(obj, f, indent=indent)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)


def current_umask() -> int:
    """The process's file-creation mask (read by setting it and putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def ensure_writable_folder(folder: str, what: str) -> None:
    """Create ``folder`` if missing and write (then delete) a probe file in it.

    Args:
        folder: the folder. what: the option or file it is for, as the user gave it
            (``"--out-dir 'out'"``), the subject of the error.

    Raises:
        ValueError: ``folder`` is a file, or cannot be created or written; names ``what``
            and the reason.
    """
    if osp.exists(folder) and not osp.isdir(folder):
        raise ValueError(f'{what}: {folder!r} is a file, not a folder; give another path')
    probe = osp.join(folder, f'.write_test.{os.getpid()}')
    try:
        os.makedirs(folder, exist_ok=True)
        with open(probe, 'w') as f:
            f.write('ok')
        os.remove(probe)
    except OSError as e:
        raise ValueError(f'{what} cannot be written ({e.strerror or e}: {folder!r}); give a '
                         'path in a folder you can write to') from None


def file_digest(path: str, algorithm: str = 'sha1') -> str:
    """Hex digest of a file's bytes (``hashlib`` ``algorithm``), read in 1 MiB chunks."""
    h = hashlib.new(algorithm)
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            h.update(chunk)
    return h.hexdigest()
