"""A class's eligible reference instances, kept serialized in one numpy buffer.

A COCO-sized training set holds about half a million eligible references (train2017: 474k
of 860k instances), each a dict with its image path, box, key and polygon. As Python
objects they take about 1 GB per process, and every dataloader worker that reads them
writes their reference counts, so each worker slowly copies all of it: 8 workers on each
of 8 GPUs can add tens of GB over an epoch. mmengine's ``BaseDataset(serialize_data=True)``
avoids this for the dataset's own records by pickling them into one numpy array; the pool
does the same: one ``bytes`` buffer and its offsets per class (about 0.2 GB for train2017),
a dict unpickled when a reference is drawn. Holding no reference into the loaded COCO
file also lets the process return that memory once the dataset is built.
"""
import pickle
from typing import Iterator, Sequence

import numpy as np


class ReferencePool(Sequence):
    """An immutable sequence of reference dicts (``img_path``, ``img_id``, ``bbox``,
    ``label``, ``key``, ``segmentation``, ``img_hw``) stored pickled; ``pool[i]`` is a new
    dict each time (changing it leaves the pool as it was).

    Args:
        refs: the reference dicts, in the order they are drawn by index.
    """

    def __init__(self, refs: Sequence[dict]) -> None:
        blobs = [pickle.dumps(r, protocol=pickle.HIGHEST_PROTOCOL) for r in refs]
        self._ends = np.cumsum([len(b) for b in blobs], dtype=np.int64)
        self._data = np.frombuffer(b''.join(blobs), np.uint8)

    def __len__(self) -> int:
        return len(self._ends)

    def __getitem__(self, i: int) -> dict:
        if not -len(self) <= i < len(self):
            raise IndexError(f'reference {i} of a pool of {len(self)}')
        i %= len(self)
        start = int(self._ends[i - 1]) if i else 0
        return pickle.loads(self._data[start:int(self._ends[i])])

    def __iter__(self) -> Iterator[dict]:
        return (self[i] for i in range(len(self)))

    def __eq__(self, other) -> bool:
        return isinstance(other, Sequence) and list(self) == list(other)
