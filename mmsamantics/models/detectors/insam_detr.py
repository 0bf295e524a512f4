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
from functools import partial
from typing import Dict, List, Optional, Tuple

import torch
from mmengine.structures import InstanceData
from torch import Tensor, nn

from mmdet.models.detectors import DeformableDETR
from mmdet.registry import MODELS
from mmdet.structures import OptSampleList, SampleList
from ...structures import ReferenceStore, cache_signature
from ..layers.deformable_attention import FP32DeformableAttention
from ..layers.grouping import group_mean
from ..layers.pair_shared_linear import PairIndex, PairSharedLinear
from .insam_detr_batching import decode_pairs, decoder_im2col_step, head_fp32
from .insam_detr_pairs import (ReferencePairs, gather_references, kshot_groups, merge_pairs,
                               pair_samples)
from .insam_detr_references import REFERENCE_ENCODERS, InSAMReferenceTokensMixin
from .reference_store_mixin import ReferenceStoreMixin


@MODELS.register_module()
class InSAMDETR(InSAMReferenceTokensMixin, ReferenceStoreMixin, DeformableDETR):
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
            reference's tokens never change), least recently used evicted first; 0
            disables the cache.
        ref_cache_dtype: dtype of the cached tokens (``'float16'`` halves their memory;
            ``'float32'`` keeps cached and fresh tokens bit-identical).
        ref_cache_device: where cached tokens are kept (CPU: a large cache never holds
            GPU memory); they are moved to the model's device when used.
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
        reference_encoder: ``'sam_tokens'`` (the paper: SAM mask tokens -> token-merge MLP),
            ``'sam_tokens+regions'`` (also the box average of each SAM encoder level,
            :mod:`.insam_detr_references`; set ``token_merge.num_tokens`` to
            :attr:`num_reference_tokens`), or ``'class_code'``: a learned embedding per
            dataset label replaces the
            reference, a perfect class identity for analysis (the upper bound of what any
            reference encoder could give the decoder); never a way to run on new classes.
        num_class_codes: number of labels with ``'class_code'`` (the dataset's classes).
        **kwargs: :class:`mmdet.models.DeformableDETR` arguments.
    """

    def __init__(self,
                 *args,
                 token_merge: dict,
                 mask_head: dict,
                 kshot_average: str = 'tokens',
                 with_mask: bool = True,
                 ref_cache_size: int = 100_000,
                 ref_cache_dtype: str = 'float32',
                 ref_cache_device: str = 'cpu',
                 ref_batch_size: int = 8,
                 reference_bank: Optional[str] = None,
                 share_value_proj: str = 'inference',
                 reference_encoder: str = 'sam_tokens',
                 num_class_codes: int = 0,
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # the head ranks one pair's queries: it keeps max_per_pair (merge_pairs the rest)
        self.bbox_head.test_cfg = dict(self.test_cfg or {}, max_per_img=min(
            (self.test_cfg or {}).get('max_per_pair', 100), self.num_queries))
        FP32DeformableAttention.convert(self)  # mmcv's CUDA kernel takes no bf16
        if self.as_two_stage:
            raise ValueError('InSAM-DETR adds the reference to learned content queries; '
                             'the two-stage variant has none (set as_two_stage=False)')
        if kshot_average not in ('tokens', 'embeddings'):
            raise ValueError(f"kshot_average must be 'tokens' or 'embeddings', got "
                             f'{kshot_average!r}')
        self.token_merge = MODELS.build(token_merge)
        self.mask_head = MODELS.build(mask_head)
        if self.bbox_head.num_classes != 1:
            raise ValueError('the bbox head answers "matches the reference": num_classes=1')
        self.kshot_average = kshot_average
        if reference_encoder not in REFERENCE_ENCODERS or (
                reference_encoder == 'class_code' and num_class_codes < 1):
            raise ValueError(f'reference_encoder must be one of {REFERENCE_ENCODERS} (with '
                             "num_class_codes >= 1 for 'class_code'); got "
                             f'{reference_encoder!r}, {num_class_codes}')
        self.reference_encoder = reference_encoder
        if reference_encoder == 'class_code':
            self.class_codes = nn.Embedding(num_class_codes, self.embed_dims)
        else:
            tm, dec, n = self.token_merge, self.mask_head.decoder, self.num_reference_tokens
            if (tm.num_tokens, tm.token_dim) != (n, dec.embed_dim):
                raise ValueError(f'token_merge expects {tm.num_tokens}x{tm.token_dim} tokens '
                                 f'but reference_encoder={reference_encoder!r} gives '
                                 f'{n}x{dec.embed_dim}: set token_merge.num_tokens={n}, '
                                 f'token_dim={dec.embed_dim}')
        if getattr(self.bbox_head, 'takes_shape', False) and (
                not reference_encoder.endswith('+shape')
                or self.bbox_head.shape_dims != self.mask_head.decoder.embed_dim):
            raise ValueError(f'{type(self.bbox_head).__name__} compares shape tokens: it needs '
                             "reference_encoder='sam_tokens+regions+shape' (got "
                             f'{reference_encoder!r}) and shape_dims = the SAM prompt width '
                             f'{self.mask_head.decoder.embed_dim} (got '
                             f'{self.bbox_head.shape_dims})')
        self.predict_masks = with_mask
        self.ref_batch_size = ref_batch_size
        self._signature: Optional[str] = None
        self.reference_store = ReferenceStore(
            signature=self._reference_signature, bank_file=reference_bank,
            max_entries=ref_cache_size, cache_dtype=getattr(torch, ref_cache_dtype),
            cache_device=ref_cache_device, made_with='SAM or preprocessing',
            rebuild='tools/misc/cache_embeddings.py / tools/misc/encode_references.py')
        if share_value_proj not in ('inference', 'always', 'never'):
            raise ValueError("share_value_proj must be 'inference', 'always' or 'never', got "
                             f'{share_value_proj!r}')
        self.share_value_proj = share_value_proj
        self._pair_index = PairIndex()
        if share_value_proj != 'never':
            for layer in self.decoder.layers:
                attn = layer.cross_attn
                attn.value_proj = PairSharedLinear.replace(attn.value_proj, self._pair_index)
        # Loading other weights invalidates cached tokens and the cache signature.
        self._register_load_state_dict_pre_hook(lambda *a, **k: self._invalidate_caches())

    # ------------------------------------------------------------------ caches
    @property
    def cache_signature(self) -> str:
        """Signature of the frozen SAM + preprocessing (:mod:`mmsamantics.structures`)."""
        if self._signature is None:
            self._signature = cache_signature(self)
        return self._signature

    def _target_features(self, batch_inputs: Tensor, batch_data_samples: SampleList
                         ) -> Tuple[Tuple[Tensor, ...], Optional[Tensor]]:
        """Neck features and SAM embedding, from SAM or from cached features.

        Cached inputs (B, C_tot, h, w) are the backbone's level outputs (and the embedding
        when the cache stores it) concatenated on channels.
        """
        meta = batch_data_samples[0].metainfo if batch_data_samples else {}
        if 'feat_cache_signature' not in meta:
            return self.extract_feat(batch_inputs)
        self.reference_store.check_signature(meta['feat_cache_signature'],
                                             'the SAM feature cache')
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

    def reference_pairs(self, batch_data_samples: SampleList) -> ReferencePairs:
        """Build the (target, class) pairs of a batch and their merged reference embeddings.

        Each data sample carries ``ref_instances`` (bboxes, labels), metainfo ``ref_keys``
        and either ``ref_inputs`` (R_i, 3, S, S) images, or ``ref_tokens`` (R_i, T, D) read
        from a cache, or nothing when the keys are in the reference bank. References of the
        same class in one sample are k shots of that class and are averaged. Pairs are
        ordered by (image, label), and the label travels with each pair: nothing relies on
        set or ``unique`` ordering. With ``reference_encoder='class_code'`` a pair's
        embedding is its class's learned code and no reference is encoded.
        """
        refs = gather_references(batch_data_samples, self.reference_store.check_signature)
        if not len(refs):
            return ReferencePairs.empty(self.query_embedding.weight, self.embed_dims)
        pairs, inverse = kshot_groups(refs.img_idx, refs.labels)
        if self.reference_encoder == 'class_code':
            return ReferencePairs(pairs[:, 0], pairs[:, 1], self.class_codes(pairs[:, 1]))
        tokens = self._gathered_tokens(refs)
        if self.kshot_average == 'tokens':
            embeds = self.token_merge(group_mean(tokens, inverse, len(pairs)))
        else:
            embeds = group_mean(self.token_merge(tokens), inverse, len(pairs))
        shapes = None  # each shot's shape token (the last one) and its pair
        if self.reference_encoder.endswith('+shape'):
            shapes = (tokens[:, -1].float(), inverse)
        return ReferencePairs(pairs[:, 0], pairs[:, 1], embeds, shapes)

    # ------------------------------------------------------------------ transformer
    def forward_transformer(self, img_feats: Tuple[Tensor, ...],
                            batch_data_samples: OptSampleList = None,
                            pairs: Optional[ReferencePairs] = None,
                            embedding: Optional[Tensor] = None) -> Dict:
        """Encoder once per target; decoder once per (target, reference class) pair.

        ``embedding`` (the targets' SAM embedding) is needed by a head that compares shapes
        (:class:`ShapeAwareDETRHead`): SAM segments the queries' boxes for it.
        """
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
        share = self.share_value_proj == 'always' or (self.share_value_proj == 'inference'
                                                      and not torch.is_grad_enabled())
        head_inputs.update(decode_pairs(self.forward_decoder, decoder_inputs, idx,
                                        decoder_im2col_step(self.decoder),
                                        self._pair_index if share else None))
        if getattr(self.bbox_head, 'takes_reference', False):  # ReferenceAwareDETRHead
            head_inputs['ref_embeds'] = pairs.embeds
        if getattr(self.bbox_head, 'takes_shape', False):  # ShapeAwareDETRHead
            if embedding is None:
                raise ValueError('the shape-aware head segments every query with SAM, which '
                                 'needs the SAM embedding; this feature cache does not store '
                                 'it: rebuild it with --with-embedding')
            shapes = [ds.metainfo['img_shape'] for ds in batch_data_samples]
            head_inputs.update(ref_shapes=pairs.shapes, query_shapes=partial(
                self.query_shape_tokens, embedding, img_idx=pairs.img_idx,
                img_shapes=shapes))
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
        img_feats, embedding = self._target_features(batch_inputs, batch_data_samples)
        pairs = self.reference_pairs(batch_data_samples)
        if len(pairs) == 0:
            raise ValueError('no (target, reference) pair in this batch: every training '
                             'sample needs at least one reference (InContextCocoDataset '
                             'skips targets whose classes have none)')
        head_inputs = self.forward_transformer(img_feats, batch_data_samples, pairs, embedding)
        return head_fp32(self.bbox_head.loss, head_inputs,
                         batch_data_samples=pair_samples(batch_data_samples, pairs, True))

    def _forward(self, batch_inputs: Tensor,
                 batch_data_samples: OptSampleList = None) -> Tuple[Tensor, ...]:
        """Raw head outputs per pair (``mode='tensor'``, e.g. for FLOP counting)."""
        img_feats, embedding = self._target_features(batch_inputs, batch_data_samples)
        head_inputs = self.forward_transformer(img_feats, batch_data_samples,
                                               embedding=embedding)
        return self.bbox_head.forward(**head_inputs)

    def predict(self, batch_inputs: Tensor, batch_data_samples: SampleList,
                rescale: bool = True) -> SampleList:
        """Per target: boxes of every queried class (label = reference class) and masks."""
        img_feats, embedding = self._target_features(batch_inputs, batch_data_samples)
        pairs = self.reference_pairs(batch_data_samples)
        per_pair: List[InstanceData] = []
        if len(pairs):
            head_inputs = self.forward_transformer(img_feats, batch_data_samples, pairs,
                                                   embedding)
            per_pair = head_fp32(
                self.bbox_head.predict, head_inputs, rescale=rescale,
                batch_data_samples=pair_samples(batch_data_samples, pairs, False))
        cfg = self.test_cfg or {}  # oracle: 100 per (image, class) pair as the authors
        open_mode = batch_data_samples[0].metainfo.get('query_mode') != 'oracle'
        results = merge_pairs(per_pair, pairs, len(batch_data_samples), batch_inputs,
                              cfg.get('max_per_pair', 100),
                              cfg.get('max_per_img', 100) if open_mode else None)
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
