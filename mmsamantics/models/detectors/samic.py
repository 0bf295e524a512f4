"""SAMIC: an in-context prompter that places SAM point prompts.

Re-implements Nagendra et al., "SAMIC: Segment Anything with In-Context Spatial Prompt
Engineering" (§3, Fig. 5) from the paper:

    reference image + heatmap G^c ----.
    target image ---------------------+--HSNetPrompter--> target heatmap G^t (k shots: mean)
        --peaks (tau = 0.5, contours, moments)--> points --frozen SAM--> masks --> boxes

Training only fits the prompter (KLD + 1 - CC + NSS against the heatmap of the target's
instances of the reference class); SAM is used at test time only. Results are labelled with
the reference class and packed as ``DetDataSample``s, so mmdet's COCO metric gives box/mask AP
and :class:`FewShotSegMetric` gives episode mIoU / FB-IoU.

Reference features: the frozen ResNet's features of a reference (what HSNet masks with the
reference heatmap) depend on the reference image only, so they are computed once per key
(:class:`ReferenceStore`) and can be written to a reference bank
(``tools/misc/encode_references.py``, :meth:`SAMIC.encode_references`) that an evaluation
reads instead of the reference images; the heatmaps still come from the pipeline.

Shape shorthand: B targets, R references of the batch, P (target, reference) pairs, Q
(target, class) queries, s the prompter input side = heatmap side, S the SAM input side.
"""
from contextlib import AbstractContextManager
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmengine.structures import InstanceData
from torch import Tensor

from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmdet.structures.mask import mask2bbox
from segment_anything.utils.amg import remove_small_regions
from ...structures.signature import preprocessing_parts
from ...utils.images import preprocess_images, reference_image_batches
from ..layers.precision import fp32_region
from ..mask_heads.sam_box_prompt_mask_head import _image_slice
from ..matching import mask_nms
from ..samic.hsnet import crop_resize
from ..samic.peaks import extract_peaks
from .in_context_detector import InContextDetector

DEFAULT_TEST_CFG = dict(
    peak_thr=0.5,            # tau of the peak finding (paper: 0.5)
    min_area=1,              # components of fewer heatmap pixels are ignored
    prompt_mode='per_component',  # 'per_component': one SAM call per peak; 'all_points'
    multimask_output=True,   # per_component: SAM's 3 masks, keep the best predicted IoU
    use_sam=True,            # False: heatmaps only (no masks, for heatmap mIoU)
    mask_nms_thr=0.5,        # drop a mask overlapping a better one of its class (IoU); 1 = off
    min_region_area=0,       # remove islands and holes below this area (original pixels) as
                             # SAM's automatic mask generator does; 0 = off (SamPredictor)
    max_per_img=100)


@MODELS.register_module()
class SAMIC(InContextDetector):
    """Prompt-then-segment detector: HSNet heatmaps -> peaks -> SAM point prompts.

    Args:
        prompter: config of :class:`HSNetPrompter`.
        backbone: frozen SAM image encoder (:class:`SAMImageEncoder`); test time only.
        mask_head: :class:`SAMBoxPromptMaskHead` config: its frozen SAM decoder takes the
            points and its ``postprocess`` makes full-size masks exactly as SAM does.
        loss_heatmap: config of :class:`SAMICSaliencyLoss`.
        data_preprocessor: :class:`InContextDataPreprocessor` config (SAM mean/std, which
            are ImageNet's, so the same tensors feed the ResNet).
        test_cfg: overrides of ``DEFAULT_TEST_CFG`` (see the comments there). A detection's
            score is the maximum heatmap value of its component times SAM's predicted IoU.
        reference_store: the references' frozen ResNet features (:class:`InContextDetector`):
            ``cache_size`` references kept in memory at test time (1,000 by default: a
            reference holds every HSNet level, several MB for ResNet-50), and a bank
            (``tools/misc/encode_references.py``) refused unless made with this ResNet,
            prompter input size, SAM input size and preprocessing.
    """

    reference_kind = 'samic'
    reference_needs_masks = True
    reference_made_with = 'ResNet weights, input sizes or preprocessing'
    default_reference_store = dict(InContextDetector.default_reference_store,
                                   cache_size=1_000)

    def __init__(self,
                 prompter: dict,
                 backbone: dict,
                 mask_head: dict,
                 loss_heatmap: dict = dict(type='SAMICSaliencyLoss'),
                 data_preprocessor: Optional[dict] = None,
                 train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None,
                 init_cfg: Optional[dict] = None,
                 reference_store: Optional[dict] = None,
                 **legacy) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg,
                         reference_store=reference_store, **legacy)
        self.prompter = MODELS.build(prompter)
        self.backbone = MODELS.build(backbone)
        self.mask_head = MODELS.build(mask_head)
        self.loss_heatmap = MODELS.build(loss_heatmap)
        unknown = set(test_cfg or {}) - set(DEFAULT_TEST_CFG)
        if unknown:
            raise ValueError(f'unknown test_cfg keys {sorted(unknown)}; known: '
                             f'{sorted(DEFAULT_TEST_CFG)}')
        self.test_cfg = dict(DEFAULT_TEST_CFG, **(test_cfg or {}))
        if self.test_cfg['prompt_mode'] not in ('per_component', 'all_points'):
            raise ValueError("test_cfg.prompt_mode must be 'per_component' or 'all_points', "
                             f"got {self.test_cfg['prompt_mode']!r}")
        self.train_cfg = train_cfg

    def signature_parts(self) -> dict:
        """What a reference's ResNet features depend on: the frozen ResNet's weights, the
        prompter input side s, the side S references are resized to (SAM's) and the
        preprocessing. Not the heatmaps (made by the pipeline at every run)."""
        return dict(kind='SAMIC', features='resnet',
                    resnet=self.fingerprint(self.prompter.feature_extractor),
                    input_size=int(self.input_size), sam_size=int(self.backbone.img_size),
                    **preprocessing_parts(self.data_preprocessor))

    @torch.no_grad()
    def encode_references(self, refs: Sequence[dict], batch_size: int = 4,
                          scale: Optional[int] = None) -> Tuple[List[str], Tuple[Tensor, ...]]:
        """The frozen ResNet features of references, each image read and run once (the
        bank builder; equal to the detector's own: same resize, preprocessing and crop).

        Args:
            refs: dicts with ``key`` and ``img`` ((H0, W0, 3) BGR uint8) or ``img_path``.
            batch_size: reference images per ResNet pass.
            scale: longest side of the resized references (default: the SAM input side S,
                as ``LoadInContextReferences`` resizes them).

        Returns:
            (keys (R,), per ResNet level (R, Cf_i, h_i, w_i) float32 on the CPU).
        """
        refs, s = list(refs), int(self.input_size)
        out: List[Optional[Tuple[Tensor, ...]]] = [None] * len(refs)
        for batch in reference_image_batches(refs, scale or self.backbone.img_size,
                                             batch_size):
            x = preprocess_images(self.data_preprocessor, [im for im, _, _ in batch])
            feats = self.prompter.extract_feats(
                crop_resize(x, [im.shape[:2] for im, _, _ in batch], s))
            for i, (_, _, idx) in enumerate(batch):
                for j in idx:
                    out[j] = tuple(f[i].float().cpu() for f in feats)
        if not refs:  # the level shapes of an empty set
            dev = self.data_preprocessor.device
            return [], tuple(f[:0].cpu() for f in self.prompter.extract_feats(
                torch.zeros(1, 3, s, s, device=dev)))
        return ([r['key'] for r in refs],
                tuple(torch.stack([o[lv] for o in out]) for lv in range(len(out[0]))))

    def using_reference_features(self, feats: Dict[str, Sequence[Tensor]]
                                 ) -> AbstractContextManager:
        """Within the block (at test time), references whose key is in ``feats`` use those
        features: per ResNet level, (Cf_i, h_i, w_i), computed with this model."""
        return self.reference_store.lending({k: tuple(f) for k, f in feats.items()})

    @property
    def input_size(self) -> int:
        return self.prompter.input_size

    # ------------------------------------------------------------------ pairs
    def _references(self, samples: SampleList
                    ) -> Tuple[Optional[Tensor], Tensor, Tensor, Tensor, List[str]]:
        """All references of the batch.

        Returns:
            (ref images (R, 3, s, s), None when references come from a bank without their
            images; heatmaps (R, 1, s, s), image index (R,), labels (R,), keys (R,)).
        """
        s, dev = self.input_size, self.data_preprocessor.device
        imgs, maps, img_idx, labels, keys = [], [], [], [], []
        for b, ds in enumerate(samples):
            if 'ref_instances' not in ds or len(ds.ref_instances) == 0:
                continue
            n = len(ds.ref_instances)
            if ds.get('ref_heatmaps', None) is None:
                # (without images, the ResNet features must be lent or in the bank: the
                # reference store says which keys are neither)
                raise ValueError('SAMIC needs reference heatmaps and images (or a reference '
                                 'bank): use LoadInContextReferences(with_mask=True), '
                                 'GenerateSaliencyHeatmaps and PackSAMICInputs')
            shapes = ds.metainfo.get('ref_img_shapes')
            if shapes is None or len(shapes) != n or len(ds.ref_heatmaps) != n:
                raise ValueError(f'{n} references but {len(ds.ref_heatmaps)} heatmaps and '
                                 f'{None if shapes is None else len(shapes)} sizes')
            if ds.get('ref_inputs', None) is not None:
                imgs.append(crop_resize(ds.ref_inputs, shapes, s))
            maps.append(ds.ref_heatmaps.to(dev).float()[:, None])
            img_idx.append(torch.full((n,), b, dtype=torch.long))
            labels.append(ds.ref_instances.labels.cpu())
            keys += list(ds.metainfo.get('ref_keys') or [None] * n)
        if not maps:
            z = torch.zeros(0, dtype=torch.long)
            return (torch.zeros(0, 3, s, s), torch.zeros(0, 1, s, s), z, z, [])
        # a bank run loads no reference image (a batch never mixes the two)
        ref_imgs = torch.cat(imgs) if len(imgs) == len(maps) else None
        return ref_imgs, torch.cat(maps), torch.cat(img_idx), torch.cat(labels), keys

    def _reference_feats(self, ref_imgs: Optional[Tensor], keys: List[str]) -> List[Tensor]:
        """Frozen ResNet features of the references, each computed once per key in eval
        (:class:`ReferenceStore`: lent, else the bank, else cached, else computed).

        Returns:
            per feature level, (R, Cf_i, h_i, w_i).
        """
        if self.training or None in keys:
            if ref_imgs is None:
                raise ValueError('training needs the reference images: a reference bank '
                                 'serves evaluation only (drop model.reference_store.bank)')
            return self.prompter.extract_feats(ref_imgs)
        first: Dict[str, int] = {}
        for j, k in enumerate(keys):
            first.setdefault(k, j)

        def encode(todo: List[str]) -> Tuple[Tensor, ...]:
            if ref_imgs is None:
                raise ValueError(f'references {todo[:5]} are neither in the reference bank '
                                 f'{self.reference_bank!r} nor loaded as images: rebuild the '
                                 'bank for this reference set, or drop --ref-bank')
            return tuple(self.prompter.extract_feats(ref_imgs[[first[k] for k in todo]]))

        return list(self.reference_store.get(keys, encode, self.data_preprocessor.device))

    def _pair_heatmaps(self, batch_inputs: Tensor, samples: SampleList
                       ) -> Tuple[Tensor, Tensor, Tensor]:
        """One heatmap per (target, reference) pair.

        Returns:
            (heatmaps (R, 1, s, s), target index (R,), labels (R,)), pair r = reference r.
        """
        ref_imgs, ref_maps, img_idx, labels, keys = self._references(samples)
        s = self.input_size
        if len(img_idx) == 0:
            return batch_inputs.new_zeros(0, 1, s, s), img_idx, labels
        tgt = crop_resize(batch_inputs, [ds.metainfo['img_shape'][:2] for ds in samples], s)
        tgt_feats = self.prompter.extract_feats(tgt)
        ref_feats = self._reference_feats(ref_imgs, keys)
        idx = img_idx.to(batch_inputs.device)
        pred = self.prompter([f[idx] for f in tgt_feats], ref_feats, ref_maps, (s, s))
        return pred, img_idx, labels

    def extract_feat(self, batch_inputs: Tensor) -> List[Tensor]:
        """The prompter's frozen ResNet features of the (uncropped) targets."""
        s = self.input_size
        return self.prompter.extract_feats(
            crop_resize(batch_inputs, [batch_inputs.shape[-2:]] * len(batch_inputs), s))

    def _forward(self, batch_inputs: Tensor, batch_data_samples: SampleList = None) -> Tensor:
        """(R, 1, s, s) heatmap of every (target, reference) pair (``mode='tensor'``)."""
        return self._pair_heatmaps(batch_inputs, batch_data_samples)[0]

    # ------------------------------------------------------------------ loss
    def loss(self, batch_inputs: Tensor, batch_data_samples: SampleList) -> Dict[str, Tensor]:
        """Saliency loss of every (target, reference) pair against the target heatmap of
        the reference's class (all zeros when the class is absent)."""
        pred, img_idx, _ = self._pair_heatmaps(batch_inputs, batch_data_samples)
        if len(img_idx) == 0:
            raise ValueError('no (target, reference) pair in this batch: every training '
                             'sample needs at least one reference')
        gts = []
        for ds in batch_data_samples:
            if 'ref_instances' not in ds or len(ds.ref_instances) == 0:
                continue
            if ds.get('gt_heatmaps', None) is None:
                raise ValueError('training needs target heatmaps: '
                                 'GenerateSaliencyHeatmaps(with_gt=True) after '
                                 'LoadAnnotations(with_mask=True)')
            gts.append(ds.gt_heatmaps.to(pred.device).float()[:, None])
        gt = torch.cat(gts)
        if gt.shape[-2:] != pred.shape[-2:]:
            raise ValueError(f'target heatmaps are {tuple(gt.shape[-2:])}, the prompter '
                             f'predicts {tuple(pred.shape[-2:])}: set '
                             'GenerateSaliencyHeatmaps(size=...) to the prompter input_size')
        with fp32_region(pred.device):  # the saliency losses' logs and sums in float32
            return self.loss_heatmap(pred.float(), gt)

    # ------------------------------------------------------------------ predict
    def predict(self, batch_inputs: Tensor, batch_data_samples: SampleList,
                rescale: bool = True) -> SampleList:
        """Heatmaps (k shots of a class averaged) -> peaks -> SAM masks, per target.

        Each data sample gets ``pred_instances`` (``bboxes`` (N, 4), ``labels``, ``scores``,
        ``masks`` (N, H0, W0) bool), ``pred_heatmaps`` (Q_b, s, s) on the target's valid
        region and ``heatmap_labels`` (Q_b,), the class of each queried heatmap.
        """
        pred, img_idx, labels = self._pair_heatmaps(batch_inputs, batch_data_samples)
        pred = pred.float()  # heatmaps leave autocast as float32 (peaks, metrics)
        cfg = self.test_cfg
        embeds = (self.backbone(batch_inputs)[-1]
                  if cfg['use_sam'] and len(img_idx) else None)
        for b, ds in enumerate(batch_data_samples):
            sel = img_idx == b
            q_labels = sorted(set(labels[sel].tolist()))
            # k references of a class: the mean of their k heatmaps (paper §3.3)
            rows = [((sel & (labels == lb)).nonzero()[:, 0]).to(pred.device)
                    for lb in q_labels]
            maps = (torch.stack([pred[r].mean(0)[0] for r in rows]) if rows
                    else pred.new_zeros(0, *pred.shape[-2:]))
            ds.pred_heatmaps = maps.detach()
            ds.heatmap_labels = torch.tensor(q_labels, dtype=torch.long)
            meta = ds.metainfo
            ori = tuple(meta['ori_shape'][:2]) if rescale else tuple(meta['img_shape'][:2])
            res = [self._segment(_image_slice(embeds, b), m, lb, meta, ori)
                   for m, lb in zip(maps, q_labels)] if embeds is not None else []
            ds.pred_instances = self._merge(res, ori, batch_inputs.device)
        return batch_data_samples

    def _segment(self, embed: Tensor, heatmap: Tensor, label: int, meta: dict,
                 ori: Tuple[int, int]) -> Optional[InstanceData]:
        """Masks of one class in one target from its (s, s) heatmap; None without a peak."""
        cfg = self.test_cfg
        peaks = extract_peaks(heatmap.float().cpu().numpy(), cfg['peak_thr'], cfg['min_area'])
        if len(peaks.points) == 0:
            return None
        h, w = meta['img_shape'][:2]
        s = heatmap.shape[-1]
        pts = torch.from_numpy(peaks.points).to(heatmap.device)
        # heatmap pixel centre -> SAM input pixel index (SAM adds 0.5 itself)
        pts = (pts + 0.5) * pts.new_tensor([w / s, h / heatmap.shape[-2]]) - 0.5
        values = torch.from_numpy(peaks.values).to(heatmap.device)
        dec = self.mask_head.decoder
        if cfg['prompt_mode'] == 'per_component':
            low, iou = dec.predict_point_masks(embed, pts[:, None], None,
                                               multimask_output=cfg['multimask_output'])
        else:  # all peaks as the points of one prompt
            low, iou = dec.predict_point_masks(embed, pts[None], None, multimask_output=False)
            values = values.max()[None]
        best = iou.argmax(1)
        ar = torch.arange(len(best), device=best.device)
        low, iou = low[ar, best][:, None].float(), iou[ar, best].float()
        masks = self.mask_head.postprocess(low, (h, w), ori)
        if cfg['min_region_area'] > 0:
            masks = self._clean(masks, cfg['min_region_area'])
        res = InstanceData(masks=masks, scores=values * iou.clamp(0, 1),
                           labels=torch.full((len(masks),), label, dtype=torch.long,
                                             device=masks.device))
        res = res[masks.flatten(1).any(1)]  # SAM found nothing at these points
        if len(res) > 1 and cfg['mask_nms_thr'] < 1:
            res = res[mask_nms(res.masks, res.scores, cfg['mask_nms_thr'])]
        return res

    @staticmethod
    def _clean(masks: Tensor, area: float) -> Tensor:
        """SAM's small-region removal (islands, then holes) on (N, H0, W0) bool masks."""
        out = []
        for m in masks.cpu().numpy():
            m, _ = remove_small_regions(m, area, mode='islands')
            m, _ = remove_small_regions(m, area, mode='holes')
            out.append(torch.from_numpy(m))
        return torch.stack(out).to(masks.device) if out else masks

    def _merge(self, parts: List[Optional[InstanceData]], ori: Tuple[int, int],
               device: torch.device) -> InstanceData:
        parts = [p for p in parts if p is not None and len(p)]
        if not parts:
            return InstanceData(bboxes=torch.zeros(0, 4, device=device),
                                scores=torch.zeros(0, device=device),
                                labels=torch.zeros(0, dtype=torch.long, device=device),
                                masks=torch.zeros(0, *ori, dtype=torch.bool, device=device))
        res = InstanceData.cat(parts)
        res = res[res.scores.argsort(descending=True)[:self.test_cfg['max_per_img']]]
        res.bboxes = mask2bbox(res.masks).float()
        return res
