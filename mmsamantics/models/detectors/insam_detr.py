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
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmengine.structures import InstanceData
from torch import Tensor, nn

from mmdet.models.detectors import DeformableDETR
from mmdet.registry import MODELS
from mmdet.structures import OptSampleList, SampleList
from ...structures import sam_cache_parts
from ..layers.deformable_attention import FP32DeformableAttention
from ..layers.grouping import group_mean
from ..layers.pair_shared_linear import PairIndex, PairSharedLinear
from ..reference_sources import sources_name, token_slices
from .in_context_detector import InContextDetector
from .insam_detr_batching import decode_pairs, decoder_im2col_step, head_fp32
from .insam_detr_legacy import legacy_insam_detr_args, probe_decoder_width
from .insam_detr_pairs import (ReferencePairs, gather_references, kshot_groups, merge_pairs,
                               pair_samples)
from .insam_detr_references import InSAMReferenceTokensMixin


@MODELS.register_module()
class InSAMDETR(InSAMReferenceTokensMixin, InContextDetector, DeformableDETR):
    """Deformable DETR conditioned on SAM reference tokens, with a SAM box-prompt mask head.

    The backbone must return ``(*level_feats, sam_embedding)`` (:class:`SAMImageEncoder`);
    the level features go through the neck, the embedding feeds SAM's decoder. The bbox head
    is an :class:`InContextDETRHead` with ``num_classes=1``: a query either matches the
    reference or not; it receives the batch's :class:`ReferencePairs` as ``pairs``.

    Of mmdet's :class:`DeformableDETR`, ``forward_transformer`` (the decoder runs once per
    (target, class) pair, on the target's memory) and ``pre_decoder`` (the reference
    embedding is added to the content queries) are extended; ``loss``, ``predict`` and
    ``_forward`` are rewritten because the head works on pairs (one data sample per pair,
    made once per batch by :meth:`_prepare`), runs outside autocast, and ``predict`` merges
    the pairs of each target and adds SAM's masks.

    Args:
        token_merge: config of :class:`TokenMergeMLP`; its input size (``num_tokens``,
            ``token_dim``) is derived from the reference sources.
        mask_head: config of :class:`SAMBoxPromptMaskHead`; its frozen SAM decoder also
            produces the reference tokens.
        reference_sources: the tokens a reference is encoded into, concatenated in order
            (:mod:`mmsamantics.models.reference_sources`); the paper's is
            ``[dict(type='SAMMaskTokens')]``.
        kshot_average: ``'tokens'`` averages the k references' raw tokens before the MLP (the
            authors' evaluation); ``'embeddings'`` averages the MLP outputs.
        with_mask: predict masks at test time (boxes only when False).
        ref_batch_size: references encoded by SAM per forward.
        share_value_proj: project each target's memory once in every decoder
            cross-attention instead of once per pair (:class:`PairSharedLinear`; exact):
            ``'inference'`` (default) when no gradient is needed, where open-mode queries
            make many pairs per target; ``'always'`` also in training, where pairs are few;
            ``'never'``.
        reference_store: the reference bank and cache (:class:`InContextDetector`).
        **kwargs: :class:`mmdet.models.DeformableDETR` arguments.
    """

    reference_kind = 'insam_detr'
    reference_made_with = 'SAM or preprocessing'
    reference_rebuild = 'tools/misc/cache_embeddings.py / tools/misc/encode_references.py'

    def __init__(self,
                 *args,
                 token_merge: dict,
                 mask_head: dict,
                 reference_sources: Sequence[dict] = (dict(type='SAMMaskTokens'),),
                 kshot_average: str = 'tokens',
                 with_mask: bool = True,
                 ref_batch_size: int = 8,
                 share_value_proj: str = 'inference',
                 **kwargs) -> None:
        reference_sources = legacy_insam_detr_args(type(self).__name__, kwargs,
                                                   reference_sources)
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
        if self.bbox_head.num_classes != 1:
            raise ValueError('the bbox head answers "matches the reference": num_classes=1')
        self.reference_sources = nn.ModuleList(MODELS.build(s) for s in reference_sources)
        if not len(self.reference_sources):
            raise ValueError("reference_sources is empty: list at least one, e.g. "
                             "[dict(type='SAMMaskTokens')]")
        # the token-merge input is what the sources give; the SAM decoder that fixes it is
        # probed with the RNG restored, so weights are drawn as if the MLP came first
        n, width = probe_decoder_width(mask_head, self.reference_sources,
                                       list(self.backbone.out_channels)[:-1])
        self.token_merge = MODELS.build(_merge_cfg(token_merge, n, width))
        self.mask_head = MODELS.build(mask_head)
        dec = self.mask_head.decoder
        self._token_slices = token_slices(self.reference_sources,
                                          list(self.backbone.out_channels)[:-1], dec)
        self.bbox_head.bind(self.reference_sources, self._token_slices, dec,
                            self.backbone.img_size)
        self.kshot_average = kshot_average
        self.predict_masks = with_mask
        self.ref_batch_size = ref_batch_size
        if share_value_proj not in ('inference', 'always', 'never'):
            raise ValueError("share_value_proj must be 'inference', 'always' or 'never', got "
                             f'{share_value_proj!r}')
        self.share_value_proj = share_value_proj
        self._pair_index = PairIndex()
        if share_value_proj != 'never':
            for layer in self.decoder.layers:
                attn = layer.cross_attn
                attn.value_proj = PairSharedLinear.replace(attn.value_proj, self._pair_index)

    # ------------------------------------------------------------------ caches
    def signature_parts(self) -> dict:
        """The frozen SAM (encoder and decoder weights, blocks, input size), the
        preprocessing and the reference sources (:func:`sam_cache_parts`; the weights of
        sources that hold their own, e.g. SAM 3's exemplar encoder)."""
        parts = sam_cache_parts(self, self.fingerprint, sources_name(self.reference_sources))
        if any(True for _ in self.reference_sources.parameters()):
            parts['reference_source_weights'] = self.fingerprint(self.reference_sources)
        return parts

    @property
    def reference_feature_shape(self) -> Tuple[int, ...]:
        """(T', D): the tokens of one reference."""
        return (int(self.num_reference_tokens), int(self.mask_head.decoder.embed_dim))

    def _target_features(self, batch_inputs: Tensor, batch_data_samples: SampleList
                         ) -> Tuple[Tuple[Tensor, ...], Optional[Tensor]]:
        """Neck features and SAM embedding, from SAM (one backbone pass) or from cached
        features.

        Cached inputs (B, C_tot, h, w) are the backbone's level outputs (and the embedding
        when the cache stores it) concatenated on channels.
        """
        meta = batch_data_samples[0].metainfo if batch_data_samples else {}
        if 'feat_cache_signature' not in meta:
            *levels, embedding = self.backbone(batch_inputs)
            return self.neck(tuple(levels)), embedding
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
    def extract_feat(self, batch_inputs: Tensor) -> Tuple[Tensor, ...]:
        """mmdet's contract: the neck's levels (B, E, h, w) of the targets. (Training and
        inference take the SAM embedding from the same backbone pass: :meth:`_prepare`.)"""
        *levels, _ = self.backbone(batch_inputs)
        return self.neck(tuple(levels))

    def _prepare(self, batch_inputs: Tensor, batch_data_samples: SampleList, with_gt: bool
                 ) -> Tuple[Tuple[Tensor, ...], ReferencePairs, SampleList]:
        """Everything a batch needs, made once: the targets' neck features, its pairs
        record (with the targets' SAM embedding) and one data sample per pair (its GT: the
        pair class's instances, with ``with_gt``)."""
        img_feats, embedding = self._target_features(batch_inputs, batch_data_samples)
        pairs = self.reference_pairs(batch_data_samples, embedding)
        return img_feats, pairs, pair_samples(batch_data_samples, pairs, with_gt)

    def reference_pairs(self, batch_data_samples: SampleList,
                        target_embedding=None) -> ReferencePairs:
        """Build the (target, class) pairs of a batch and their merged reference embeddings.

        Each data sample carries ``ref_instances`` (bboxes, labels), metainfo ``ref_keys``
        and either ``ref_inputs`` (R_i, 3, S, S) images, or ``ref_tokens`` (R_i, T, D) read
        from a cache, or nothing when the keys are in the reference bank. References of the
        same class in one sample are k shots of that class and are averaged. Pairs are
        ordered by (image, label), and the label travels with each pair: nothing relies on
        set or ``unique`` ordering. ``target_embedding`` (the targets' SAM embedding) is
        carried for a head that segments its queries.
        """
        shapes = [ds.metainfo.get('img_shape') for ds in batch_data_samples]
        refs = gather_references(batch_data_samples, self.reference_store.check_signature)
        if not len(refs):
            empty = ReferencePairs.empty(self.query_embedding.weight, self.embed_dims)
            empty.target_embedding, empty.img_shapes = target_embedding, shapes
            return empty
        pairs, inverse = kshot_groups(refs.img_idx, refs.labels)
        tokens, embeds = self.pair_embeddings(refs, pairs, inverse)
        return ReferencePairs(pairs[:, 0], pairs[:, 1], embeds, tokens,
                              None if tokens is None else inverse, target_embedding, shapes)

    def pair_embeddings(self, refs, pairs: Tensor, inverse: Tensor
                        ) -> Tuple[Optional[Tensor], Tensor]:
        """The tokens of every shot (R, T', D) and the merged embedding of every pair
        (P, E) (``pairs`` (P, 2) (target, class); ``inverse`` (R,) the pair of each shot).
        Override to condition on something other than the references' tokens."""
        tokens = self._gathered_tokens(refs)
        if self.kshot_average == 'tokens':
            embeds = self.token_merge(group_mean(tokens, inverse, len(pairs)))
        else:
            embeds = group_mean(self.token_merge(tokens), inverse, len(pairs))
        return tokens, embeds

    # ------------------------------------------------------------------ transformer
    def forward_transformer(self, img_feats: Tuple[Tensor, ...],
                            batch_data_samples: OptSampleList = None,
                            pairs: Optional[ReferencePairs] = None) -> Dict:
        """Encoder once per target; decoder once per (target, reference class) pair.

        Returns the head's inputs: ``hidden_states``, ``references`` and ``pairs`` (built
        from ``batch_data_samples`` when not given).
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
        head_inputs['pairs'] = pairs
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
        img_feats, pairs, samples = self._prepare(batch_inputs, batch_data_samples, True)
        if len(pairs) == 0:
            raise ValueError('no (target, reference) pair in this batch: every training '
                             'sample needs at least one reference (InContextCocoDataset '
                             'skips targets whose classes have none)')
        head_inputs = self.forward_transformer(img_feats, batch_data_samples, pairs)
        return head_fp32(self.bbox_head.loss, head_inputs, batch_data_samples=samples)

    def _forward(self, batch_inputs: Tensor,
                 batch_data_samples: OptSampleList = None) -> Tuple[Tensor, ...]:
        """Raw head outputs per pair (``mode='tensor'``, e.g. for FLOP counting)."""
        img_feats, pairs, _ = self._prepare(batch_inputs, batch_data_samples, False)
        out = self.forward_transformer(img_feats, batch_data_samples, pairs)
        return self.bbox_head.forward(out['hidden_states'], out['references'], pairs)

    def predict(self, batch_inputs: Tensor, batch_data_samples: SampleList,
                rescale: bool = True) -> SampleList:
        """Per target: boxes of every queried class (label = reference class) and masks."""
        img_feats, pairs, samples = self._prepare(batch_inputs, batch_data_samples, False)
        per_pair: List[InstanceData] = []
        if len(pairs):
            head_inputs = self.forward_transformer(img_feats, batch_data_samples, pairs)
            per_pair = head_fp32(self.bbox_head.predict, head_inputs, rescale=rescale,
                                 batch_data_samples=samples)
        cfg = self.test_cfg or {}  # oracle: 100 per (image, class) pair as the authors
        open_mode = batch_data_samples[0].metainfo.get('query_mode') != 'oracle'
        results = merge_pairs(per_pair, pairs, len(batch_data_samples), batch_inputs,
                              cfg.get('max_per_pair', 100),
                              cfg.get('max_per_img', 100) if open_mode else None)
        if self.predict_masks:
            embedding = pairs.target_embedding
            if embedding is None:
                raise ValueError('masks need the SAM embedding, which this feature cache does '
                                 'not store: rebuild it with --with-embedding, or set '
                                 'model.with_mask=False for boxes only')
            metas = [ds.metainfo for ds in batch_data_samples]
            if not rescale:  # boxes are in input pixels: segment at the input size
                metas = [dict(m, scale_factor=(1.0, 1.0), ori_shape=m['img_shape'],
                              resized_shape=m['img_shape']) for m in metas]
            results = self.mask_head.predict(embedding, results, metas)
        return self.add_pred_to_datasample(batch_data_samples, results)


def _merge_cfg(token_merge: dict, num_tokens: int, width: int) -> dict:
    """The token-merge config with its input size derived from the reference sources; a
    size the config states must agree."""
    cfg = dict(token_merge)
    for key, value in (('num_tokens', num_tokens), ('token_dim', width)):
        if cfg.get(key, value) != value:
            raise ValueError(f'token_merge.{key}={cfg[key]} but the reference sources give '
                             f'{value}: drop token_merge.{key} (it is derived)')
        cfg[key] = value
    return cfg
