"""Few-shot segmentation episodes (HSNet protocol) for the folder layouts of PASCAL-5i,
COCO-20i and FSS-1000.

An episode is a query image, a class present in it and k support images of that class
(never the query). Following HSNet (Min, Lee, Cho, "Hypercorrelation Squeeze for Few-Shot
Segmentation", ICCV 2021, §4), evaluation uses a FIXED list of
episodes per fold, drawn once from ``seed`` (0):

    ``class_uniform`` (PASCAL-5i, COCO-20i; 1,000 episodes): the class uniformly among the
        fold's test classes, then the query uniformly among the images holding it, then k
        distinct supports among the other images of that class.
    ``per_query`` (FSS-1000): one episode per (image, class) pair in list order (cycled
        when ``num_episodes`` asks for more), k random supports of that class.

Training (``mode='train'``) takes the ``per_query`` pairs of the fold's training classes
and draws new supports every epoch (``set_epoch``, called by :class:`InContextEpochHook`).

Every sample is a dict the SAMIC pipeline reads: ``img_path``, one target instance (the
class's semantic mask as an RLE, ``ignore_flag`` 0), ``references`` (k dicts with
``img_path``, ``bbox`` xyxy, ``label``, ``key``, ``segmentation`` RLE, ``img_hw``) and
``fss_episode`` (label, the query's ground-truth and ignore masks as RLEs at the original
size), which :class:`FewShotSegMetric` scores once ``PackSAMICInputs`` packs it
(``meta_keys`` must name it). Layout readers subclass :class:`FewShotEpisodeDataset` and
provide the images per class and the masks.

Shape shorthand: H0 x W0 original image.
"""
import copy
import os.path as osp
from typing import Dict, List, Optional, Tuple

import numpy as np
from mmengine.dataset import BaseDataset

from ..utils.checkpoint import MissingResourceError
from ..utils.rle import decode_mask, encode_mask  # noqa: F401 (re-exported)

EPISODE_ORDERS = ('class_uniform', 'per_query')
FSS_MODES = ('test', 'train')
# the data_info / metainfo key of an episode's ground truth (PackSAMICInputs meta_keys)
EPISODE_KEY = 'fss_episode'


def mask_box(mask: np.ndarray) -> List[float]:
    """xyxy box (exclusive right/bottom) of a non-empty (H0, W0) bool mask."""
    ys, xs = np.nonzero(mask)
    return [float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)]


class FewShotEpisodeDataset(BaseDataset):
    """Fixed evaluation episodes (or per-epoch training episodes) of a few-shot layout.

    Subclasses implement :meth:`load_images` (the images holding each class) and
    :meth:`load_mask` (one image's class and ignore masks).

    Args:
        mode: ``'test'`` (fixed episodes over the test classes) or ``'train'``.
        shots: k support images per episode.
        num_episodes: episodes of the evaluation list (1,000 in HSNet for PASCAL-5i and
            COCO-20i); None with ``per_query``: one per (image, class) pair.
        seed: seed of the episode list (HSNet: 0); training supports use (seed, epoch,
            index).
        episode_order: ``'class_uniform'`` or ``'per_query'`` (module docstring).
        **kwargs: :class:`mmengine.dataset.BaseDataset` arguments (``data_root``,
            ``ann_file``, ``data_prefix``, ``pipeline``, ``test_mode``...).
    """

    def __init__(self, *args, mode: str = 'test', shots: int = 1,
                 num_episodes: Optional[int] = 1000, seed: int = 0,
                 episode_order: str = 'class_uniform', **kwargs) -> None:
        if mode not in FSS_MODES:
            raise ValueError(f'mode must be one of {FSS_MODES}, got {mode!r}')
        if episode_order not in EPISODE_ORDERS:
            raise ValueError(f'episode_order must be one of {EPISODE_ORDERS}, got '
                             f'{episode_order!r}')
        if shots < 1:
            raise ValueError(f'shots must be >= 1, got {shots}')
        if num_episodes is not None and num_episodes < 1:
            raise ValueError(f'num_episodes must be >= 1 or None, got {num_episodes}')
        if num_episodes is None and episode_order == 'class_uniform' and mode == 'test':
            raise ValueError("episode_order='class_uniform' needs num_episodes (HSNet: 1000)")
        self.mode, self.shots, self.seed = mode, shots, seed
        self.num_episodes, self.episode_order = num_episodes, episode_order
        self.epoch = 0
        super().__init__(*args, **kwargs)

    # ------------------------------------------------------------------ subclass API
    def load_images(self) -> Tuple[List[str], List[dict], Dict[int, List[int]]]:
        """(class names, image records, label -> indices of the records holding it).

        A record has at least ``img_path`` and ``key`` (unique, for feature caches); the
        rest is what :meth:`load_mask` needs.
        """
        raise NotImplementedError

    def load_mask(self, record: dict, label: int) -> Tuple[np.ndarray, np.ndarray]:
        """(class mask, ignore mask), both (H0, W0) bool, of ``label`` in ``record``."""
        raise NotImplementedError

    # ------------------------------------------------------------------ loading
    def _require(self, path: str, what: str, hint: str) -> None:
        if not osp.exists(path):
            raise MissingResourceError(f'{what} not found: {path!r}. {hint}')

    def load_data_list(self) -> List[dict]:
        classes, self.records, per_class = self.load_images()
        self._metainfo['classes'] = list(classes)
        self.per_class = {lb: list(ix) for lb, ix in per_class.items()}
        short = [classes[lb] for lb in range(len(classes))
                 if len(self.per_class.get(lb, ())) < self.shots + 1]
        if short:
            raise ValueError(f'{self.shots}-shot episodes need at least {self.shots + 1} '
                             f'images of each class (the query and {self.shots} other '
                             f'supports); too few for {short} in {self.ann_file}')
        if self.mode == 'train' or self.episode_order == 'per_query':
            members = {lb: set(ix) for lb, ix in self.per_class.items()}
            pairs = [(lb, i) for i in range(len(self.records))
                     for lb in sorted(members) if i in members[lb]]
            if self.mode == 'train':
                return [dict(label=lb, query=i) for lb, i in pairs]
            n = self.num_episodes or len(pairs)
            rng = np.random.default_rng(self.seed)
            return [dict(label=lb, query=i, supports=self._supports(rng, lb, i))
                    for lb, i in (pairs[e % len(pairs)] for e in range(n))]
        rng = np.random.default_rng(self.seed)
        labels = sorted(self.per_class)
        episodes = []
        for _ in range(self.num_episodes):
            lb = labels[int(rng.integers(len(labels)))]
            imgs = self.per_class[lb]
            q = imgs[int(rng.integers(len(imgs)))]
            episodes.append(dict(label=lb, query=q, supports=self._supports(rng, lb, q)))
        return episodes

    def _supports(self, rng: np.random.Generator, label: int, query: int) -> List[int]:
        """k distinct images of ``label`` other than ``query``."""
        others = [i for i in self.per_class[label] if i != query]
        return [others[j] for j in rng.choice(len(others), self.shots, replace=False)]

    # ------------------------------------------------------------------ samples
    def set_epoch(self, epoch: int) -> None:
        """Training supports change with the epoch (:class:`InContextEpochHook`)."""
        self.epoch = epoch

    def _masks(self, idx: int, label: int) -> Tuple[np.ndarray, np.ndarray]:
        fg, ignore = self.load_mask(self.records[idx], label)
        if not (fg & ~ignore).any():
            raise ValueError(f'{self.records[idx]["img_path"]!r} is listed for class '
                             f'{self.metainfo["classes"][label]!r} but its mask has no '
                             'pixel of it')
        return fg & ~ignore, ignore

    def prepare_data(self, idx: int):
        ep = self.get_data_info(idx)
        lb, q = ep['label'], ep['query']
        supports = ep.get('supports')
        if supports is None:  # training: new supports every epoch
            rng = np.random.default_rng([self.seed, self.epoch, idx])
            supports = self._supports(rng, lb, q)
        rec = self.records[q]
        fg, ignore = self._masks(q, lb)
        rle = encode_mask(fg)
        refs = []
        for s in supports:
            m, _ = self._masks(s, lb)
            refs.append(dict(img_path=self.records[s]['img_path'], label=lb,
                             key=self.records[s]['key'], bbox=mask_box(m),
                             segmentation=encode_mask(m), img_hw=tuple(m.shape)))
        info = dict(img_path=rec['img_path'], img_id=idx, height=fg.shape[0],
                    width=fg.shape[1], seg_map_path=None,
                    instances=[dict(bbox=mask_box(fg), bbox_label=lb, mask=rle,
                                    ignore_flag=0)],
                    references=refs)
        info[EPISODE_KEY] = dict(label=lb, gt=rle, ignore=encode_mask(ignore),
                                 query=rec['key'], supports=[r['key'] for r in refs])
        return self.pipeline(copy.deepcopy(info))
