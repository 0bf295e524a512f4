"""InSAM-DETR: in-context instance segmentation on a frozen SAM.

Re-implements §5 / Fig. 2 of Espinosa et al., "There is no SAMantics! Exploring SAM as a
backbone for visual understanding tasks" on top of mmdet's Deformable DETR:

    reference image --SAM encoder--> embedding --SAM decoder(ref box)--> T mask tokens
        --(k-shot mean)--> token-merge MLP --> e (E,)
    target image --SAM encoder--> 4 global-attention block maps --ChannelMapper-->
        Deformable-DETR encoder --> memory, repeated once per (target, reference class)
        --> decoder with content queries + e --> boxes ("matches the reference", 1 class)
        --> SAM box prompts on the target embedding --> masks

Shape shorthand: B targets, P (target, class) pairs, R references, T tokens per reference,
D SAM prompt width, E = embed_dims of the DETR, Q queries.
"""
from collections import ChainMap, OrderedDict
from contextlib import contextmanager
from typing import Dict, Iterator, List, Mapping, Optional, Tuple

import torch
from mmengine.structures import InstanceData
from torch import Tensor

from mmdet.models.detectors import DeformableDETR
from mmdet.registry import MODELS
from mmdet.structures import DetDataSample, OptSampleList, SampleList
from ...cache import cache_signature
from ...cache.reference_bank import load_reference_bank
from ..layers.pair_shared_linear import PairIndex, PairSharedLinear


class ReferencePairs:
    """The (target, reference class) pairs of a batch, in a fixed explicit order.

    Attributes:
        img_idx: (P,) index of the target image of each pair.
        labels: (P,) dataset label of the reference class of each pair.
        embeds: (P, E) merged reference embedding added to the pair's content queries.
    """

    def __init__(self, img_idx: Tensor, labels: Tensor, embeds: Tensor) -> None:
        self.img_idx, self.labels, self.embeds = img_idx, labels, embeds

    def __len__(self) -> int:
        return int(self.img_idx.numel())


@MODELS.register_module()
class InSAMDETR(DeformableDETR):
    """Deformable DETR conditioned on SAM reference tokens, with a SAM box-prompt mask head.

    The backbone must return ``(*level_feats, sam_embedding)`` (:class:`SAMImageEncoder`);
    the level features go through the neck, the embedding feeds SAM's decoder. The bbox head
    has ``num_classes=1``: a query either matches the reference or not.

    Args:
        token_merge: config of :class:`TokenMergeMLP`.
        mask_head: config of :class:`SAMBoxPromptMaskHead`; its frozen SAM decoder also
            produces the reference tokens.
        kshot_average: ``'tokens'`` averages the k references' raw tokens before the MLP (the
            authors' evaluation); ``'embeddings'`` averages the MLP outputs.
        with_mask: predict masks at test time (boxes only when False).
        ref_cache_size: reference token sets kept in memory (SAM is frozen, so a
            reference's tokens never change); 0 disables the cache.
        ref_batch_size: references encoded by SAM per forward.
        reference_bank: file written by ``tools/misc/encode_references.py``: the tokens of
            a fixed reference set, computed once (k-shot evaluation). References found in
            it are never re-encoded, and their images need not be loaded.
        share_value_proj: project each target's memory once in every decoder
            cross-attention instead of once per pair (:class:`PairSharedLinear`; exact):
            ``'inference'`` (default) when no gradient is needed, where open-mode queries
            make many pairs per target (ViT-B geometry, 12 classes: 15.2 s vs 16.6 s per
            image on CPU); ``'always'`` also in training, where pairs are few (<= 4) and the
            backward of the indexing cost as much as it saved on CPU; ``'never'``.
        **kwargs: :class:`mmdet.models.DeformableDETR` arguments.
    """

    def __init__(self,
                 *args,
                 token_merge: dict,
                 mask_head: dict,
                 kshot_average: str = 'tokens',
                 with_mask: bool = True,
                 ref_cache_size: int = 100_000,
                 ref_batch_size: int = 8,
                 reference_bank: Optional[str] = None,
                 share_value_proj: str = 'inference',
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.as_two_stage:
            raise ValueError('InSAM-DETR adds the reference to learned content queries; '
                             'the two-stage variant has none (set as_two_stage=False)')
        if kshot_average not in ('tokens', 'embeddings'):
            raise ValueError(f"kshot_average must be 'tokens' or 'embeddings', got "
                             f'{kshot_average!r}')
        self.token_merge = MODELS.build(token_merge)
        self.mask_head = MODELS.build(mask_head)
        dec = self.mask_head.decoder
        tm = self.token_merge
        if (tm.num_tokens, tm.token_dim) != (dec.num_mask_tokens, dec.embed_dim):
            raise ValueError(f'token_merge expects {tm.num_tokens}x{tm.token_dim} tokens but the '
                             f'SAM decoder gives {dec.num_mask_tokens}x{dec.embed_dim}: set '
                             f'token_merge.num_tokens={dec.num_mask_tokens}, '
                             f'token_dim={dec.embed_dim}')
        if self.bbox_head.num_classes != 1:
            raise ValueError('the bbox head answers "matches the reference": num_classes=1')
        self.kshot_average = kshot_average
        self.predict_masks = with_mask
        self.ref_cache_size = ref_cache_size
        self.ref_batch_size = ref_batch_size
        self._ref_cache: 'OrderedDict[str, Tensor]' = OrderedDict()
        self._signature: Optional[str] = None
        self._checked_signatures: set = set()
        self.reference_bank = reference_bank
        if share_value_proj not in ('inference', 'always', 'never'):
            raise ValueError("share_value_proj must be 'inference', 'always' or 'never', got "
                             f'{share_value_proj!r}')
        self.share_value_proj = share_value_proj
        self._pair_index = PairIndex()
        if share_value_proj != 'never':
            for layer in self.decoder.layers:
                attn = layer.cross_attn
                attn.value_proj = PairSharedLinear.replace(attn.value_proj, self._pair_index)
        self._bank: Optional[Dict[str, Tensor]] = None
        self._lent_tokens: Dict[str, Tensor] = {}
        # Loading other weights invalidates cached tokens and the cache signature.
        self._register_load_state_dict_pre_hook(lambda *a, **k: self._invalidate_caches())

    def _invalidate_caches(self) -> None:
        self._ref_cache.clear()
        self._signature = None
        self._checked_signatures = set()
        self._bank = None  # re-checked against the new weights on next use

    # ------------------------------------------------------------------ caches
    @property
    def cache_signature(self) -> str:
        """Signature of the frozen SAM + preprocessing (see :mod:`mmsamantics.cache`)."""
        if self._signature is None:
            self._signature = cache_signature(self)
        return self._signature

    def check_signature(self, signature: str, source: str) -> None:
        """Refuse cached SAM outputs made by other weights or preprocessing."""
        if signature in self._checked_signatures:
            return
        if signature != self.cache_signature:
            raise ValueError(
                f'{source} was made with another SAM or preprocessing (signature '
                f'{signature}, this model {self.cache_signature}). Rebuild it with this '
                'config and checkpoint (tools/misc/cache_embeddings.py / '
                'tools/misc/encode_references.py).')
        self._checked_signatures.add(signature)

    @contextmanager
    def using_reference_tokens(self, tokens: Dict[str, Tensor]) -> Iterator[None]:
        """Within the block, references whose key is in ``tokens`` use those (T, D) tokens.

        For callers that computed the tokens with this model themselves (e.g. the
        inference API's registered references), so no signature check is needed. They take
        precedence over ``reference_bank``.
        """
        saved = self._lent_tokens
        self._lent_tokens = tokens
        try:
            yield
        finally:
            self._lent_tokens = saved

    def _bank_tokens(self) -> Mapping[str, Tensor]:
        """key -> (T, D) tokens: lent tokens, then ``reference_bank`` (may be empty)."""
        bank = self._file_bank_tokens()
        return ChainMap(self._lent_tokens, bank) if self._lent_tokens else bank

    def _file_bank_tokens(self) -> Dict[str, Tensor]:
        if self.reference_bank is None:
            return {}
        if self._bank is None:
            bank = load_reference_bank(self.reference_bank)
            self.check_signature(bank['signature'], f'reference bank {self.reference_bank!r}')
            device = self.query_embedding.weight.device
            self._bank = {k: t.to(device).float() for k, t in zip(bank['keys'], bank['tokens'])}
        return self._bank

    def _target_features(self, batch_inputs: Tensor, batch_data_samples: SampleList
                         ) -> Tuple[Tuple[Tensor, ...], Optional[Tensor]]:
        """Neck features and SAM embedding, from SAM or from cached features.

        Cached inputs (B, C_tot, h, w) are the backbone's level outputs (and the embedding
        when the cache stores it) concatenated on channels.
        """
        meta = batch_data_samples[0].metainfo if batch_data_samples else {}
        if 'feat_cache_signature' not in meta:
            return self.extract_feat(batch_inputs)
        self.check_signature(meta['feat_cache_signature'], 'the SAM feature cache')
        chans = list(self.backbone.out_channels)
        c = batch_inputs.shape[1]
        if c == sum(chans):
            *levels, embedding = batch_inputs.split(chans, dim=1)
        elif c == sum(chans[:-1]):
            levels, embedding = batch_inputs.split(chans[:-1], dim=1), None
        else:
            raise ValueError(f'cached features have {c} channels; the backbone gives levels '
                             f'{chans[:-1]} + embedding {chans[-1]}')
        return self.neck(tuple(levels)), embedding

    # ------------------------------------------------------------------ features
    def extract_feat(self, batch_inputs: Tensor) -> Tuple[Tuple[Tensor, ...], Tensor]:
        """Returns (neck feats: levels of (B, E, h, w), SAM embedding (B, D, h, w))."""
        *levels, embedding = self.backbone(batch_inputs)
        return self.neck(tuple(levels)), embedding

    def _encode_reference_tokens(self, inputs: Optional[Tensor], boxes: Tensor,
                                 keys: List[str], rows: Optional[List[int]] = None) -> Tensor:
        """(R', 3, S, S) images + (R, 4) boxes -> (R, T, D) tokens.

        Tokens come from the reference bank, else the in-memory cache, else SAM.
        ``rows[j]`` is the image of reference j in ``inputs`` (default: j; -1 = no image,
        allowed when its key is in the bank or the cache).
        """
        bank = self._bank_tokens()
        rows = list(range(len(keys))) if rows is None else rows
        todo = OrderedDict()
        for j, k in enumerate(keys):
            if k not in bank and k not in self._ref_cache and k not in todo:
                todo[k] = j
        missing = [k for k, j in todo.items() if rows[j] < 0 or inputs is None]
        if missing:
            raise ValueError(f'references {missing[:3]} have no image and are not in the '
                             f'reference bank {self.reference_bank!r}: load their images '
                             '(LoadInContextReferences) or encode them into the bank '
                             '(tools/misc/encode_references.py)')
        new: Dict[str, Tensor] = {}
        idx = list(todo.values())
        for s in range(0, len(idx), self.ref_batch_size):
            chunk = idx[s:s + self.ref_batch_size]
            with torch.no_grad():
                emb = self.backbone(inputs[[rows[j] for j in chunk]])[-1]
                tok = self.mask_head.decoder.mask_tokens(emb, boxes[chunk])
            for j, t in zip(chunk, tok):
                new[keys[j]] = t
        tokens = torch.stack([bank[k] if k in bank else new[k] if k in new
                              else self._ref_cache[k] for k in keys])
        if self.ref_cache_size > 0:
            for k, t in new.items():
                self._ref_cache[k] = t
            for k in keys:
                if k in self._ref_cache:
                    self._ref_cache.move_to_end(k, last=True)
            while len(self._ref_cache) > self.ref_cache_size:
                self._ref_cache.popitem(last=False)
        return tokens

    def reference_pairs(self, batch_data_samples: SampleList) -> ReferencePairs:
        """Build the (target, class) pairs of a batch and their merged reference embeddings.

        Each data sample carries ``ref_instances`` (bboxes, labels), metainfo ``ref_keys``
        and either ``ref_inputs`` (R_i, 3, S, S) images, or ``ref_tokens`` (R_i, T, D) read
        from a cache, or nothing when the keys are in the reference bank. References of the
        same class in one sample are k shots of that class and are averaged. Pairs are
        ordered by (image, label), and the label travels with each pair: nothing relies on
        set or ``unique`` ordering.
        """
        given, inputs, boxes, labels, img_of, keys = [], [], [], [], [], []
        for b, ds in enumerate(batch_data_samples):
            if 'ref_instances' not in ds or len(ds.ref_instances) == 0:
                continue
            r = ds.ref_instances
            ref_keys = ds.metainfo.get('ref_keys')
            if ref_keys is None or len(ref_keys) != len(r):
                raise ValueError('each reference needs a box and a key: use '
                                 'LoadInContextReferences + PackInContextDetInputs')
            if 'ref_tokens' in ds:
                self.check_signature(ds.metainfo.get('feat_cache_signature'),
                                     'the cached reference tokens')
                given.append(ds.ref_tokens.float())
            else:
                imgs = ds.get('ref_inputs', None)
                if imgs is not None and len(imgs) and len(imgs) != len(r):
                    raise ValueError(f'{len(imgs)} reference images for {len(r)} references')
                inputs.append(imgs if imgs is not None and len(imgs) else None)
                boxes.append(r.bboxes)
                given.append(None)
            labels.append(r.labels)
            img_of.append(r.labels.new_full((len(r),), b))
            keys.append(list(ref_keys))
        device = self.query_embedding.weight.device
        if not keys:
            empty = torch.zeros(0, dtype=torch.long, device=device)
            return ReferencePairs(empty, empty,
                                  self.query_embedding.weight.new_zeros(0, self.embed_dims))
        # encode all references that have no cached tokens in one batched call
        enc_keys = [k for g, ks in zip(given, keys) if g is None for k in ks]
        encoded = None
        if enc_keys:
            # row of each reference in the stacked images; -1 = no image (bank only)
            rows, avail, n = [], [], 0
            for x, b in zip(inputs, boxes):
                if x is None:
                    rows += [-1] * len(b)
                else:
                    rows += list(range(n, n + len(x)))
                    avail.append(x)
                    n += len(x)
            encoded = self._encode_reference_tokens(
                torch.cat(avail) if avail else None, torch.cat(boxes).float(), enc_keys,
                rows=rows)
        parts, e = [], 0
        for g, ks in zip(given, keys):
            if g is None:
                parts.append(encoded[e:e + len(ks)])
                e += len(ks)
            else:
                parts.append(g)
        tokens = torch.cat(parts)
        labels_t, img_t = torch.cat(labels), torch.cat(img_of)
        pair_ids = sorted({(int(b), int(lb)) for b, lb in zip(img_t, labels_t)})
        groups = [((img_t == b) & (labels_t == lb)).nonzero()[:, 0] for b, lb in pair_ids]
        if self.kshot_average == 'tokens':
            embeds = self.token_merge(torch.stack([tokens[g].mean(0) for g in groups]))
        else:
            per_ref = self.token_merge(tokens)
            embeds = torch.stack([per_ref[g].mean(0) for g in groups])
        pairs = torch.tensor(pair_ids, dtype=torch.long, device=device)
        return ReferencePairs(pairs[:, 0], pairs[:, 1], embeds)

    @staticmethod
    def pair_samples(batch_data_samples: SampleList, pairs: ReferencePairs,
                     with_gt: bool) -> SampleList:
        """One data sample per pair; its GT = the pair class's instances, relabelled 0."""
        out = []
        for b, lb in zip(pairs.img_idx.tolist(), pairs.labels.tolist()):
            src = batch_data_samples[b]
            ds = DetDataSample(metainfo=src.metainfo)
            if with_gt:
                gt = src.gt_instances
                sel = gt[gt.labels == lb]
                sel.labels = torch.zeros_like(sel.labels)
                ds.gt_instances = sel
            out.append(ds)
        return out

    # ------------------------------------------------------------------ transformer
    def forward_transformer(self, img_feats: Tuple[Tensor, ...],
                            batch_data_samples: OptSampleList = None,
                            pairs: Optional[ReferencePairs] = None) -> Dict:
        """Encoder once per target; decoder once per (target, reference class) pair."""
        if pairs is None:
            pairs = self.reference_pairs(batch_data_samples)
        encoder_inputs, decoder_inputs = self.pre_transformer(img_feats, batch_data_samples)
        enc_out = self.forward_encoder(**encoder_inputs)
        idx = pairs.img_idx
        memory = enc_out['memory'][idx]
        memory_mask = enc_out['memory_mask']
        memory_mask = memory_mask[idx] if memory_mask is not None else None
        decoder_inputs['memory_mask'] = memory_mask
        decoder_inputs['valid_ratios'] = decoder_inputs['valid_ratios'][idx]
        tmp_dec_in, head_inputs = self.pre_decoder(memory, memory_mask,
                                                   enc_out['spatial_shapes'],
                                                   ref_embeds=pairs.embeds)
        decoder_inputs.update(tmp_dec_in)
        if self.share_value_proj == 'always' or (self.share_value_proj == 'inference'
                                                 and not torch.is_grad_enabled()):
            self._pair_index.set(idx)
        try:
            head_inputs.update(self.forward_decoder(**decoder_inputs))
        finally:
            self._pair_index.clear()
        return head_inputs

    def pre_decoder(self, memory: Tensor, memory_mask: Tensor, spatial_shapes: Tensor,
                    ref_embeds: Optional[Tensor] = None) -> Tuple[Dict, Dict]:
        """Deformable DETR's ``pre_decoder`` + the reference embedding on the content queries.

        Args:
            memory: (P, N, E) encoder memory repeated per pair.
            ref_embeds: (P, E) merged reference embedding of each pair; added to every
                content query (``query``), not to the positional part (``query_pos``).
        """
        decoder_inputs, head_inputs = super().pre_decoder(memory, memory_mask, spatial_shapes)
        if ref_embeds is not None:
            decoder_inputs['query'] = decoder_inputs['query'] + ref_embeds[:, None, :]
        return decoder_inputs, head_inputs

    # ------------------------------------------------------------------ modes
    def loss(self, batch_inputs: Tensor, batch_data_samples: SampleList) -> Dict:
        img_feats, _ = self._target_features(batch_inputs, batch_data_samples)
        pairs = self.reference_pairs(batch_data_samples)
        if len(pairs) == 0:
            raise ValueError('no (target, reference) pair in this batch: every training '
                             'sample needs at least one reference (InContextCocoDataset '
                             'skips targets whose classes have none)')
        head_inputs = self.forward_transformer(img_feats, batch_data_samples, pairs)
        return self.bbox_head.loss(
            **head_inputs,
            batch_data_samples=self.pair_samples(batch_data_samples, pairs, with_gt=True))

    def _forward(self, batch_inputs: Tensor,
                 batch_data_samples: OptSampleList = None) -> Tuple[Tensor, ...]:
        """Raw head outputs per pair (``mode='tensor'``, e.g. for FLOP counting)."""
        img_feats, _ = self._target_features(batch_inputs, batch_data_samples)
        head_inputs = self.forward_transformer(img_feats, batch_data_samples)
        return self.bbox_head.forward(**head_inputs)

    def predict(self, batch_inputs: Tensor, batch_data_samples: SampleList,
                rescale: bool = True) -> SampleList:
        """Per target: boxes of every queried class (label = reference class) and masks."""
        img_feats, embedding = self._target_features(batch_inputs, batch_data_samples)
        pairs = self.reference_pairs(batch_data_samples)
        per_pair: List[InstanceData] = []
        if len(pairs):
            head_inputs = self.forward_transformer(img_feats, batch_data_samples, pairs)
            per_pair = self.bbox_head.predict(
                **head_inputs, rescale=rescale,
                batch_data_samples=self.pair_samples(batch_data_samples, pairs, False))
        results = self._merge_pairs(per_pair, pairs, len(batch_data_samples), batch_inputs)
        if self.predict_masks:
            if embedding is None:
                raise ValueError('masks need the SAM embedding, which this feature cache does '
                                 'not store: rebuild it with --with-embedding, or set '
                                 'model.with_mask=False for boxes only')
            metas = [ds.metainfo for ds in batch_data_samples]
            if not rescale:  # boxes are in input pixels: segment at the input size
                metas = [dict(m, scale_factor=(1.0, 1.0), ori_shape=m['img_shape'])
                         for m in metas]
            results = self.mask_head.predict(embedding, results, metas)
        return self.add_pred_to_datasample(batch_data_samples, results)

    def _merge_pairs(self, per_pair: List[InstanceData], pairs: ReferencePairs,
                     num_imgs: int, like: Tensor) -> List[InstanceData]:
        """Concatenate each image's per-class results and keep the top ``max_per_img``."""
        max_per_img = self.test_cfg.get('max_per_img', 100) if self.test_cfg else 100
        merged = []
        for b in range(num_imgs):
            parts = []
            for res, ib, lb in zip(per_pair, pairs.img_idx.tolist(), pairs.labels.tolist()):
                if ib == b:
                    res.labels = torch.full_like(res.labels, lb)
                    parts.append(res)
            if parts:
                res = InstanceData.cat(parts)
                keep = res.scores.argsort(descending=True)[:max_per_img]
                res = res[keep]
            else:
                res = InstanceData(bboxes=like.new_zeros(0, 4), scores=like.new_zeros(0),
                                   labels=torch.zeros(0, dtype=torch.long, device=like.device))
            merged.append(res)
        return merged
