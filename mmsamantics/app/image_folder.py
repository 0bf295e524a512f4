"""The folder of images being annotated: what it holds, what is skipped, and safe file access.

The web server never opens a path a client names: a client names an image by its position in
the folder's list or by its listed file name, and only files of that list are ever read, so
``../`` tricks, absolute paths and links out of the folder cannot reach anything else.
"""
import os
import os.path as osp
from typing import Dict, List, Tuple

import cv2
import numpy as np

from ..utils.images import load_image_checked

IMG_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')
# formats every browser shows; others are sent re-encoded as PNG
BROWSER_TYPES = {'.jpg': 'image/jpeg', '.jpeg': 'image/jpeg', '.png': 'image/png',
                 '.bmp': 'image/bmp', '.webp': 'image/webp'}


class ImageFolder:
    """The readable images of one folder (not recursive), sorted by name.

    Unreadable or non-image files are listed in :attr:`skipped` with the reason, and left out.

    Args:
        root: the folder.

    Raises:
        FileNotFoundError: ``root`` is not a folder.
        ValueError: it holds no readable image.
    """

    def __init__(self, root: str) -> None:
        if not osp.isdir(root):
            raise FileNotFoundError(f'image folder not found: {root!r}')
        self.root = osp.realpath(root)
        self.names: List[str] = []
        self.sizes: Dict[str, Tuple[int, int]] = {}
        self.skipped: List[Tuple[str, str]] = []
        stems: Dict[str, str] = {}
        for name in sorted(os.listdir(self.root)):
            path = osp.join(self.root, name)
            if not osp.isfile(path) or name.startswith('.'):
                continue
            reason = self._problem(name, path, stems)
            if reason:
                self.skipped.append((name, reason))
                continue
            stems[osp.splitext(name)[0]] = name
            self.names.append(name)
        if not self.names:
            why = '; '.join(f'{n}: {r}' for n, r in self.skipped[:5])
            raise ValueError(f'no readable image in {root!r} (extensions '
                             f'{", ".join(IMG_EXTENSIONS)})' + (f'; skipped {why}' if why else ''))
        self._index = {n: i for i, n in enumerate(self.names)}

    def _problem(self, name: str, path: str, stems: Dict[str, str]) -> str:
        """Why ``name`` cannot be annotated ('' when it can); records its size."""
        if not name.lower().endswith(IMG_EXTENSIONS):
            return 'not an image file (extension)'
        if osp.splitext(name)[0] in stems:
            # embeddings are cached per file stem (feature-cache layout)
            return f'same name as {stems[osp.splitext(name)[0]]} up to the extension'
        if not osp.realpath(path).startswith(self.root + os.sep):
            return 'a link to a file outside the folder'
        try:
            img = load_image_checked(path)
        except (FileNotFoundError, ValueError):
            return 'cannot be decoded (corrupt or not an image)'
        self.sizes[name] = tuple(int(v) for v in img.shape[:2])
        return ''

    def __len__(self) -> int:
        return len(self.names)

    def index(self, name: str) -> int:
        """Position of a listed file name.

        Raises:
            KeyError: ``name`` is not one of the folder's images (or tries to leave it).
        """
        if name not in self._index:
            raise KeyError(f'{name!r} is not an image of the annotated folder')
        return self._index[name]

    def path(self, name: str) -> str:
        """Absolute path of a listed image (KeyError for anything else)."""
        return osp.join(self.root, self.names[self.index(name)])

    def name_at(self, i: int) -> str:
        if not 0 <= i < len(self.names):
            raise KeyError(f'image index {i} out of range (0..{len(self.names) - 1})')
        return self.names[i]

    def browser_bytes(self, name: str) -> Tuple[bytes, str]:
        """(file content, media type) of a listed image as a browser can show it."""
        path = self.path(name)
        ext = osp.splitext(name)[1].lower()
        if ext in BROWSER_TYPES:
            with open(path, 'rb') as f:
                return f.read(), BROWSER_TYPES[ext]
        ok, buf = cv2.imencode('.png', load_image_checked(path))
        return np.asarray(buf).tobytes(), 'image/png'
