"""Bookkeeping of InSAM-DETR's (target, reference class) pairs: one decoder pass per pair.

Shape shorthand: P (target, class) pairs, E = embed_dims of the DETR.
"""
from typing import Callable, List, Optional, Tuple

import torch
from mmengine.structures import InstanceData
from torch import Tensor

from mmdet.structures import DetDataSample, SampleList
from ..layers.precision import to_float


class ReferencePairs:
    """The (target, reference class) pairs of a batch, in a fixed explicit order: the record
    InSAM-DETR hands its head (``head_inputs_dict['pairs']``, :class:`InContextDETRHead`).

    Attributes:
        img_idx: (P,) index of the target image of each pair.
        labels: (P,) dataset label of the reference class of each pair.
        embeds: (P, E) merged reference embedding added to the pair's content queries.
        shots: (R, T', D) the tokens of every reference (shot), or None (class codes).
        shot_pair: (R,) the pair of each shot, or None.
        target_embedding: the targets' SAM embedding (B, D, h, w) (a tuple for SAM 2), or
            None (a feature cache without it).
        img_shapes: (h, w) of each target in input pixels.
    """

    def __init__(self, img_idx: Tensor, labels: Tensor, embeds: Tensor,
                 shots: Optional[Tensor] = None, shot_pair: Optional[Tensor] = None,
                 target_embedding=None,
                 img_shapes: Optional[List[Tuple[int, int]]] = None) -> None:
        self.img_idx, self.labels, self.embeds = img_idx, labels, embeds
        self.shots, self.shot_pair = shots, shot_pair
        self.target_embedding, self.img_shapes = target_embedding, img_shapes

    def __len__(self) -> int:
        return int(self.img_idx.numel())

    @classmethod
    def empty(cls, like: Tensor, dims: int) -> 'ReferencePairs':
        """No pair: (0,) indices and (0, E) embeddings on ``like``'s device."""
        idx = torch.zeros(0, dtype=torch.long, device=like.device)
        return cls(idx, idx, like.new_zeros(0, dims))

    def to_float(self) -> 'ReferencePairs':
        """A copy whose floating tensors are float32 (for a head run outside autocast)."""
        return ReferencePairs(self.img_idx, self.labels, to_float(self.embeds),
                              to_float(self.shots), self.shot_pair,
                              to_float(self.target_embedding), self.img_shapes)


def kshot_groups(img_idx: Tensor, labels: Tensor) -> Tuple[Tensor, Tensor]:
    """Group references into (target, class) pairs: k references of one class on one
    target are its k shots.

    Args:
        img_idx: (R,) target of each reference. labels: (R,) its class.

    Returns:
        (pairs (P, 2) long (target, class) sorted lexicographically, inverse (R,) the pair
        of each reference); the order is explicit: nothing relies on set ordering, and
        the grouping stays on the device (no per-reference host sync).
    """
    keys = torch.stack([img_idx.to(labels.device), labels], 1).long()
    pairs, inverse = torch.unique(keys, dim=0, sorted=True, return_inverse=True)
    return pairs.reshape(-1, 2), inverse


def pair_samples(batch_data_samples: SampleList, pairs: ReferencePairs,
                 with_gt: bool) -> SampleList:
    """One data sample per pair; its GT = the pair class's instances, relabelled 0."""
    out, host_labels = [], {}
    for b, lb in zip(pairs.img_idx.tolist(), pairs.labels.tolist()):
        src = batch_data_samples[b]
        ds = DetDataSample(metainfo=src.metainfo)
        if with_gt:
            gt = src.gt_instances
            if b not in host_labels:  # one device->host copy per target, not per pair
                host_labels[b] = gt.labels.cpu()
            rows = (host_labels[b] == lb).nonzero()[:, 0]
            sel = gt[rows.to(gt.labels.device)]
            sel.labels = torch.zeros_like(sel.labels)
            ds.gt_instances = sel
        out.append(ds)
    return out


def merge_pairs(per_pair: List[InstanceData], pairs: ReferencePairs, num_imgs: int,
                like: Tensor, max_per_pair: int = 100,
                max_per_img: Optional[int] = None) -> List[InstanceData]:
    """Each image's results: the top ``max_per_pair`` of every (image, class) pair (label =
    the pair's class), concatenated and ranked by score, then cut to ``max_per_img``.

    The authors keep 100 detections per pair and concatenate them (oracle protocol): COCOeval
    already keeps at most 100 per (image, category), so a per-image cut after merging could
    only lower AP. ``max_per_img`` is for open mode, where every class is queried and an
    image's detections compete like a detector's.

    Args:
        per_pair: P results, in the order of ``pairs``. pairs: their (image, class) pairs.
        num_imgs: images of the batch. like: a tensor on the output device.
        max_per_pair: detections kept per pair. max_per_img: per image after merging; None
            keeps every pair's.

    Returns:
        ``num_imgs`` InstanceData (bboxes (N, 4), scores (N,), labels (N,)) sorted by score
        descending; an image without pairs gets empty results.
    """
    merged = []
    for b in range(num_imgs):
        parts = []
        for res, ib, lb in zip(per_pair, pairs.img_idx.tolist(), pairs.labels.tolist()):
            if ib == b:
                res = res[res.scores.argsort(descending=True)[:max_per_pair]]
                res.labels = torch.full_like(res.labels, lb)
                parts.append(res)
        if parts:
            res = InstanceData.cat(parts)
            res = res[res.scores.argsort(descending=True)[:max_per_img]]
        else:
            res = InstanceData(bboxes=like.new_zeros(0, 4), scores=like.new_zeros(0),
                               labels=torch.zeros(0, dtype=torch.long, device=like.device))
        merged.append(res)
    return merged


class GatheredReferences:
    """The references of a batch, per data sample, as the data pipeline packed them.

    Attributes:
        given: per sample, its (R_i, T, D) cached tokens (``ref_tokens``) or None.
        inputs: per sample without cached tokens, its (R_i, 3, S, S) images or None (bank).
        boxes: per sample without cached tokens, its (R_i, 4) boxes.
        keys: per sample, its R_i reference keys.
        labels: (R,) class of every reference. img_idx: (R,) its target.
    """

    def __init__(self) -> None:
        self.given: List[Optional[Tensor]] = []
        self.inputs: List[Optional[Tensor]] = []
        self.boxes: List[Tensor] = []
        self.keys: List[List[str]] = []
        self._labels: List[Tensor] = []
        self._img_idx: List[Tensor] = []

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def labels(self) -> Tensor:
        return torch.cat(self._labels)

    @property
    def img_idx(self) -> Tensor:
        return torch.cat(self._img_idx)


def gather_references(batch_data_samples: SampleList,
                      check_signature: Callable[[Optional[str], str], None]
                      ) -> GatheredReferences:
    """Collect ``ref_instances`` / ``ref_keys`` / ``ref_inputs`` / ``ref_tokens`` of a batch.

    ``check_signature(signature, source)`` refuses cached tokens of another SAM.
    """
    out = GatheredReferences()
    for b, ds in enumerate(batch_data_samples):
        if 'ref_instances' not in ds or len(ds.ref_instances) == 0:
            continue
        r = ds.ref_instances
        ref_keys = ds.metainfo.get('ref_keys')
        if ref_keys is None or len(ref_keys) != len(r):
            raise ValueError('each reference needs a box and a key: use '
                             'LoadInContextReferences + PackInContextDetInputs')
        if 'ref_tokens' in ds:  # pre-encoded: with cached or with image targets
            meta = ds.metainfo
            check_signature(meta.get('ref_tokens_signature', meta.get('feat_cache_signature')),
                            'the cached reference tokens')
            out.given.append(ds.ref_tokens.float())
        else:
            imgs = ds.get('ref_inputs', None)
            if imgs is not None and len(imgs) and len(imgs) != len(r):
                raise ValueError(f'{len(imgs)} reference images for {len(r)} references')
            out.inputs.append(imgs if imgs is not None and len(imgs) else None)
            out.boxes.append(r.bboxes)
            out.given.append(None)
        out._labels.append(r.labels)
        out._img_idx.append(r.labels.new_full((len(r),), b))
        out.keys.append(list(ref_keys))
    return out
