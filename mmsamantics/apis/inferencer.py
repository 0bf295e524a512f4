"""In-context inference for users, in the style of mmdet's ``DetInferencer``.

    inferencer = InContextInferencer('configs/insam_detr_toy_shape.py',
                                     'work_dirs/demo/epoch_12.pth')
    inferencer.add_reference('ref.png', 'red circle', box=[40, 30, 120, 110])
    inferencer.add_reference('ref2.png', 'red circle', mask=mask)       # a second shot
    inferencer.add_references_from_coco('refs.json', img_dir='images/', shots=5)
    inferencer.save_bank('bank.pth')                                  # tokens, to share
    results = inferencer('images/', batch_size=4, score_thr=0.3)

References are encoded once when added (one backbone pass per reference image) and kept;
classes get contiguous labels in the order they are first registered. Predictions come from
the detector's own ``predict`` on batches built by the config's test pipeline and the
model's data preprocessor. The per-model-kind work lives in a :class:`ReferenceEncoder`
(:mod:`mmsamantics.apis.reference_encoder`), so every detector of the plugin plugs in here.
"""
import os.path as osp
import time
from collections import Counter, OrderedDict
from contextlib import nullcontext
from typing import Collection, Dict, Iterator, List, Optional, Sequence, Set, Tuple, Union

import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.utils import ProgressBar

from ..structures import feature_rows, map_feature, stack_features
from ..structures.reference_store import Feature
from ..utils.config_paths import load_config
from .categories import register_class
from .inputs import ImageLike, expand_inputs, read_image
from .model_loading import build_inference_model
from .outputs import Drawer, result_to_instances, select, to_result, vis_name
from .preflight import read_bank
from .reference_encoder import build_reference_encoder
from .references import (Reference, check_reference_images, prompt_to_box,
                         read_coco_references)
from .target_images import DEFAULT_MAX_MEGAPIXELS, load_targets, target_scale


class InContextInferencer:
    """Find and segment instances of classes shown by reference examples.

    Args:
        config: config file or :class:`Config` of the detector.
        checkpoint: trained weights (checked key by key: a checkpoint of another config is
            refused). None: a training-free model's own weights (those its config loads).
        device: ``'cpu'``, ``'cuda'``, ``'cuda:1'``...; default CUDA when available.
        cfg_options: overrides merged into the config (as ``--cfg-options``).
        ref_batch_size: reference images per backbone pass when encoding references.
        max_megapixels: targets that need more decoded pixels are skipped (memory); large
            JPEGs are decoded at reduced size (:mod:`mmsamantics.apis.target_images`).
        verbose: keep the INFO logs of model building (weight initialisation, registry);
            by default they are DEBUG.
        random_weights: allow a model with trainable weights and no ``checkpoint`` (its
            weights stay random: for smoke tests only). By default such a model is refused;
            training-free models (matcher, PerSAM, SAM 3) need no checkpoint.
    """

    def __init__(self, config: Union[str, Config], checkpoint: Optional[str] = None,
                 device: Optional[str] = None, cfg_options: Optional[dict] = None,
                 ref_batch_size: int = 4, max_megapixels: float = DEFAULT_MAX_MEGAPIXELS,
                 verbose: bool = False, random_weights: bool = False) -> None:
        cfg = load_config(config) if isinstance(config, str) else config.copy()
        if cfg_options:
            cfg.merge_from_dict(cfg_options)
        self.cfg = cfg
        self.model = build_inference_model(cfg, checkpoint, device, verbose=verbose,
                                           random_weights=random_weights)
        self.device = next(self.model.parameters()).device
        self.encoder = build_reference_encoder(self.model, cfg)
        self.pipeline = self.encoder.target_pipeline()
        self.target_scale = target_scale(cfg, self.encoder.scale)
        self.ref_batch_size = ref_batch_size
        self.max_megapixels = max_megapixels
        self.references: List[Reference] = []
        self._features: Dict[str, Feature] = {}  # key -> (F) tensor or tuple of them
        self._ref_files: Dict[str, str] = {}  # key -> reference file it came from
        self.category_ids: 'OrderedDict[str, int]' = OrderedDict()
        self._provisional: Set[str] = set()  # classes whose id was assigned, not given
        self.failed: List[Tuple[str, str]] = []
        self.stats: dict = {}
        self._drawer: Optional[Drawer] = None

    # ------------------------------------------------------------------ references
    @property
    def classes(self) -> List[str]:
        """Class names in registration order; label ``i`` is ``classes[i]``."""
        return list(self.category_ids)

    def _check_new(self, keys: Sequence[str], classes: Sequence[Tuple[str, Optional[int]]]
                   ) -> Tuple['OrderedDict[str, int]', Set[str]]:
        """Category ids (and provisional names) after adding ``classes``
        (:mod:`mmsamantics.apis.categories`); raises before anything is changed."""
        counts = Counter(keys)
        dup = sorted(k for k, n in counts.items() if n > 1 or k in self._features)
        if dup:
            raise ValueError(f'reference keys must be unique; already used: {dup[:5]}')
        cat_ids, provisional = OrderedDict(self.category_ids), set(self._provisional)
        for name, cid in classes:
            register_class(cat_ids, provisional, name, cid)
        return cat_ids, provisional

    def _add(self, entries: Sequence[Tuple[ImageLike, Reference]]) -> List[Reference]:
        """Encode ``(image, reference)`` entries, one backbone pass per image, and keep them.

        Nothing is kept if any reference fails (unreadable image, duplicate key).
        """
        cat_ids, provisional = self._check_new(
            [r.key for _, r in entries], [(r.class_name, r.category_id) for _, r in entries])
        groups: 'OrderedDict[object, list]' = OrderedDict()
        for img, ref in entries:
            gid = img if isinstance(img, str) else id(img)
            groups.setdefault(gid, [img, []])[1].append(ref)
        new: Dict[str, Feature] = {}
        todo = list(groups.values())
        for s in range(0, len(todo), self.ref_batch_size):
            chunk = todo[s:s + self.ref_batch_size]
            imgs = [read_image(img, 'reference image') for img, _ in chunk]
            feats = self.encoder.encode(imgs, [refs for _, refs in chunk], self.ref_batch_size)
            for (_, refs), f in zip(chunk, feats):
                # copies: a kept view would hold the whole encoded batch alive
                new.update({r.key: map_feature(torch.clone, feature_rows(f, j))
                            for j, r in enumerate(refs)})
        self.category_ids, self._provisional = cat_ids, provisional
        self._features.update(new)
        added = [r for _, r in entries]
        self.references += added
        return added

    def add_reference(self, image: ImageLike, class_name: str, *,
                      box: Optional[Sequence[float]] = None,
                      mask: Optional[np.ndarray] = None,
                      points: Optional[Sequence[Sequence[float]]] = None,
                      key: Optional[str] = None,
                      category_id: Optional[int] = None) -> Reference:
        """Register one example of ``class_name``; call again for more shots of a class.

        Args:
            image: path, or (H, W, 3) uint8 **BGR** array (``cv2.imread`` order; pass
                ``rgb[..., ::-1]`` for an RGB array).
            class_name: the class it shows.
            box: (x1, y1, x2, y2) in pixels of ``image``.
            mask: (H, W) bool mask of the instance: its tight bounding box is used.
            points: clicks (x, y) on the instance: their bounding box grown by 10% of its
                side on each side (at least 2 px) is used; clicks on the extremes work best.
            key: name of the reference (default ``'<class_name>#<n>'``).
            category_id: the class's id in results (default: the next free id).

        Returns:
            The registered :class:`Reference` (its ``box`` is the prompt the model gets).

        Raises:
            ValueError: not exactly one prompt, an empty or degenerate box/mask, an
                unreadable image, a duplicate key.
        """
        img = read_image(image, 'reference image')
        what = f'reference of {class_name!r}'
        b, m, p = prompt_to_box(img.shape[:2], box=box, mask=mask, points=points, what=what)
        if key is None:
            n = sum(r.class_name == class_name for r in self.references)
            key = f'{class_name}#{n}'
            while key in self._features:
                n += 1
                key = f'{class_name}#{n}'
        ref = Reference(key=key, class_name=class_name, box=b, mask=m, points=p,
                        source=image if isinstance(image, str) else '<array>',
                        category_id=category_id)
        return self._add([(img, ref)])[0]

    def add_references_from_coco(self, path: str, img_dir: Optional[str] = None,
                                 shots: Optional[int] = None,
                                 classes: Optional[Sequence[str]] = None) -> List[Reference]:
        """Register the annotations of a COCO-format reference file.

        Classes keep the file's category ids (so results can be scored against a GT file
        with the same categories) and are registered in the order of its ``categories``.
        See :func:`mmsamantics.apis.references.read_coco_references` for ``img_dir``,
        ``shots`` (honours a ``shot`` rank) and ``classes``.
        """
        refs, _ = read_coco_references(path, img_dir, shots, classes)
        check_reference_images(refs, path)
        real = osp.realpath(path)
        if any(self._ref_files.get(r['key']) == real for r in refs):
            raise ValueError(f'the references of {path!r} are already registered')
        for r in refs:  # keys are unique per file path: a same-named file keeps its own
            if r['key'] in self._features:
                r['key'] = f'{path}:{r["key"].rsplit(":", 1)[1]}'
        entries = [(r['img_path'], Reference(
            key=r['key'], class_name=r['class_name'], box=r['bbox'], source=r['img_path'],
            segmentation=r['segmentation'], img_hw=r['img_hw'],
            category_id=r['category_id'])) for r in refs]
        added = self._add(entries)
        self._ref_files.update({r.key: real for r in added})
        return added

    def clear_references(self) -> None:
        """Forget every reference and class."""
        self.references, self._features, self._ref_files = [], {}, {}
        self.category_ids, self._provisional = OrderedDict(), set()

    # ------------------------------------------------------------------ banks
    def save_bank(self, path: str) -> None:
        """Write the references' features to a reference-bank file (shareable).

        The file is the format of :mod:`mmsamantics.structures.reference_bank` (keys, class
        names, features, the model's signature) plus, in ``meta``, the class order, the
        category ids and each reference's box and source.
        """
        if not self.references:
            raise RuntimeError('no reference to save: add references first')
        keys = [r.key for r in self.references]
        tokens, extra = self.encoder.bank_payload([self._features[k] for k in keys])
        self.model.save_bank(
            path, keys, [r.class_name for r in self.references], tokens,
            meta=dict(extra, kind=self.encoder.kind, classes=self.classes,
                      category_ids=dict(self.category_ids),
                      boxes=[[float(v) for v in r.box] for r in self.references],
                      sources=[r.source for r in self.references]),
            signature=self.encoder.signature)

    def load_bank(self, path: str) -> List[Reference]:
        """Add the references of a bank file (from :meth:`save_bank` or
        ``tools/misc/encode_references.py``).

        Raises:
            ValueError: a bank made with another model/SAM or preprocessing (signature), or
                with features of another shape, or whose keys are already registered.
        """
        read_bank(path)  # one clear error for a file that is not a bank
        bank = self.model.load_bank(path, signature=self.encoder.signature)
        tokens = self.encoder.bank_features(bank, path)
        meta = bank.get('meta') or {}
        cids = meta.get('category_ids') or {}
        present = set(bank['labels'])
        order = [c for c in meta.get('classes') or OrderedDict.fromkeys(bank['labels'])
                 if c in present]
        self.category_ids, self._provisional = self._check_new(
            bank['keys'], [(n, cids.get(n)) for n in order + list(bank['labels'])])
        n = len(bank['keys'])
        boxes = meta.get('boxes') or [[0.0] * 4] * n
        sources = meta.get('sources') or ['<bank>'] * n
        added = []
        for k, name, t, b, s in zip(bank['keys'], bank['labels'], tokens, boxes, sources):
            added.append(Reference(key=k, class_name=name, box=np.asarray(b, np.float32),
                                   source=s, category_id=self.category_ids[name]))
            self._features[k] = t
        self.references += added
        return added

    # ------------------------------------------------------------------ prediction
    def _query(self, classes: Optional[Sequence[str]]):
        if not self.references:
            raise RuntimeError('no reference registered: call add_reference(), '
                               'add_references_from_coco() or load_bank() before predicting')
        if classes is None:
            classes = self.classes
        unknown = [c for c in classes if c not in self.category_ids]
        if unknown:
            raise ValueError(f'classes {unknown} have no reference (registered: '
                             f'{self.classes})')
        label = {c: i for i, c in enumerate(self.classes)}
        refs = [r for r in self.references if r.class_name in set(classes)]
        keys = [r.key for r in refs]
        return (keys, torch.tensor([label[r.class_name] for r in refs], dtype=torch.long),
                map_feature(lambda t: t.to(self.device),
                            stack_features([self._features[k] for k in keys])),
                torch.as_tensor(np.stack([r.box for r in refs]), dtype=torch.float32))

    @torch.no_grad()
    def _only_returned(self, score_thr: float, vis_thr: Optional[float], max_dets: int):
        """Masks are decoded only for the detections this call returns or draws."""
        keeping = getattr(getattr(self.model, 'mask_head', None), 'keeping', None)
        thr = score_thr if vis_thr is None else min(score_thr, vis_thr)
        return keeping(thr, max_dets) if keeping is not None else nullcontext()

    def predict(self, inputs, batch_size: int = 1, score_thr: float = 0.3,
                max_dets: int = 100, classes: Optional[Sequence[str]] = None,
                vis_dir: Optional[str] = None, vis_score_thr: Optional[float] = None,
                show_progress: bool = True) -> List[dict]:
        """Detect and segment the registered classes on images.

        Args:
            inputs: an image path, an (H, W, 3) BGR uint8 array, a folder (its images), a
                glob (``'data/*.jpg'``, ``'**'`` recursive), or a list of these.
            batch_size: images per forward pass.
            score_thr: keep detections scoring at least this (use 0 for COCO evaluation:
                AP needs the low-score tail).
            max_dets: at most this many detections per image (the model's
                ``test_cfg.max_per_img`` is an upper bound too).
            classes: query only these classes (default: all registered).
            vis_dir: also draw each image's detections to ``vis_dir/<stem>.png``.
            vis_score_thr: draw only detections scoring at least this (default: all that
                are returned), e.g. to evaluate at ``score_thr=0`` with readable pictures.
            show_progress: show a progress bar.

        Returns:
            One dict per readable image, in input order (see
            :func:`mmsamantics.apis.outputs.to_result`): ``img_path``, ``index``,
            ``height``, ``width``, ``boxes`` (N, 4) xyxy, ``scores``, ``labels`` (names),
            ``label_ids``, ``masks`` (COCO RLEs). Unreadable images, and images the model
            cannot take (too thin, over ``max_megapixels``), are skipped with a warning and
            listed in ``self.failed`` as (path, reason); ``self.stats`` holds counts and
            seconds.

        Raises:
            RuntimeError: no reference registered. ValueError: unknown class, an empty
            folder or a glob without match, ``batch_size`` or ``max_dets`` < 1.
            FileNotFoundError: a single missing path.
        """
        return [r for r in self.iter_predict(inputs, batch_size, score_thr, max_dets,
                                             classes, vis_dir, vis_score_thr, show_progress)
                if 'skipped' not in r]

    def iter_predict(self, inputs, batch_size: int = 1, score_thr: float = 0.3,
                     max_dets: int = 100, classes: Optional[Sequence[str]] = None,
                     vis_dir: Optional[str] = None, vis_score_thr: Optional[float] = None,
                     show_progress: bool = True, done: Collection[int] = ()
                     ) -> Iterator[dict]:
        """:meth:`predict` one image at a time, as each batch is done (to stream results).

        Args:
            done: indices of inputs already processed (a resumed run): not yielded, and
                batches made only of them are not run. Batches keep the boundaries of a
                full run (every ``batch_size`` inputs), so a resumed run computes exactly
                what an uninterrupted one would.
            Others: as :meth:`predict`.

        Yields:
            Per input in order, a result of :meth:`predict`, or ``{'index', 'img_path',
            'skipped': reason}`` for an image that was skipped.
        """
        keys, labels, feats, boxes = self._query(classes)
        images = expand_inputs(inputs)
        for name, v in (('batch_size', batch_size), ('max_dets', max_dets)):
            if isinstance(v, bool) or int(v) != v or v < 1:
                raise ValueError(f'{name} must be an integer >= 1, got {v!r}')
        self.failed, taken, done = [], set(), set(done)
        names = [vis_name(im if isinstance(im, str) else None, i, taken)
                 for i, im in enumerate(images)]
        bar = ProgressBar(len(images) - len(done)) if show_progress else None
        n_res = n_det = 0
        self.stats = dict(images=0, skipped=0, detections=0, seconds=0.0, images_per_s=None)
        t0 = time.perf_counter()
        self.model.eval()
        indexed = list(enumerate(images))
        for s in range(0, len(images), batch_size):
            todo = [i for i, _ in indexed[s:s + batch_size] if i not in done]
            if not todo:
                continue
            batch, skipped = load_targets(indexed[s:s + batch_size], self.pipeline,
                                          self.target_scale, self.max_megapixels)
            results = {idx: dict(index=idx, img_path=p, skipped=why) for idx, p, why in skipped}
            if batch:
                data = self.model.data_preprocessor(
                    pseudo_collate([d for *_, d in batch]), False)
                with torch.no_grad(), self._only_returned(score_thr, vis_score_thr, max_dets):
                    preds = self.encoder.predict(data['inputs'], data['data_samples'], keys,
                                                 labels, feats, boxes)
                for (idx, path, img, ori, _), ds in zip(batch, preds):
                    pred = select(ds.pred_instances, score_thr, max_dets)
                    if idx in todo and vis_dir is not None:
                        shown = pred if vis_score_thr is None else select(
                            pred, vis_score_thr, max_dets)
                        self._draw(img, shown, osp.join(vis_dir, names[idx]))
                    results[idx] = to_result(pred, self.classes, path, idx, ori, img.shape[:2])
            for idx in todo:
                r = results[idx]
                if 'skipped' in r:
                    self.failed.append((r['img_path'], r['skipped']))
                else:
                    n_res, n_det = n_res + 1, n_det + len(r['scores'])
                secs = time.perf_counter() - t0
                self.stats = dict(images=n_res, skipped=len(self.failed), detections=n_det,
                                  seconds=round(secs, 2),
                                  images_per_s=round(n_res / secs, 3) if secs > 0 else None)
                if bar is not None:
                    bar.update()
                yield r
        if bar is not None:
            bar.file.write('\n')  # end the progress bar's line
            bar.file.flush()

    __call__ = predict

    def _draw(self, img: np.ndarray, pred, out_file: str) -> str:
        if self._drawer is None or self._drawer.vis.dataset_meta['classes'] != tuple(
                self.classes):
            self._drawer = Drawer(self.classes, name=f'in_context_inferencer_{id(self)}_'
                                                     f'{len(self.classes)}')
        return self._drawer.draw(img, pred, out_file)

    def visualize(self, image: ImageLike, result: dict, out_file: str) -> str:
        """Draw a result of :meth:`predict` (masks, boxes, names, scores) on its image."""
        return self._draw(read_image(image), result_to_instances(result), out_file)
