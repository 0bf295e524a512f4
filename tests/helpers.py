"""Helpers shared by the tests: toy configs pointed at a test toy world, pipeline steps found
by type, the tools run in-process or as subprocesses, the probing toy configs.

Importable as ``helpers`` because setup.cfg's ``[tool:pytest]`` puts ``tests/`` on the path.
"""
import copy
import glob
import importlib.util
import json
import os
import os.path as osp
import re
import subprocess
import sys
from contextlib import contextmanager
from types import ModuleType
from typing import Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np
from mmengine.config import Config

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
TOY_CONFIG = osp.join(REPO, 'configs', 'insam_detr_toy.py')
# the trained ``make demo`` detector and its config (see tests/fixtures/README.md)
TRAINED_CONFIG = osp.join(REPO, 'configs', 'insam_detr_toy_shape.py')


def trained_checkpoint() -> str:
    """The trained ``make demo`` detector's weights (SAM included) in tests/fixtures."""
    found = glob.glob(osp.join(REPO, 'tests', 'fixtures', 'insam_detr_toy_shape-*.pth'))
    assert len(found) == 1, found
    return found[0]


def toy_overrides(root: str, epochs: int = 1) -> dict:
    """cfg-options that point the toy config at ``root`` and shorten the schedule."""
    root = root.rstrip('/') + '/'
    return {
        'train_dataloader.dataset.data_root': root,
        'val_dataloader.dataset.data_root': root,
        'test_dataloader.dataset.data_root': root,
        'val_evaluator.ann_file': root + 'annotations/instances_val.json',
        'test_evaluator.ann_file': root + 'annotations/instances_val.json',
        'val_evaluator.class_splits_file': root + 'annotations/splits.json',
        'test_evaluator.class_splits_file': root + 'annotations/splits.json',
        # random tiny SAM: the tests need no pretraining run
        'model.backbone.checkpoint': None,
        'model.mask_head.decoder.checkpoint': None,
        'train_cfg.max_epochs': epochs,
        'train_cfg.val_interval': epochs,
        'default_hooks.logger.interval': 1,
    }


def toy_cfg(root: str, epochs: int = 1) -> Config:
    cfg = Config.fromfile(TOY_CONFIG)
    cfg.merge_from_dict(toy_overrides(root, epochs))
    return cfg


def toy_model(root: str, train_dataset: Optional[dict] = None, **model) -> Tuple[Config, object]:
    """The toy InSAM-DETR config (``model`` and ``train_dataset`` fields updated) and its
    model, built with seed 0 and initialised."""
    import torch
    from mmdet.registry import MODELS
    cfg = toy_cfg(root)
    cfg.model.update(model)
    cfg.train_dataloader.dataset.update(train_dataset or {})
    torch.manual_seed(0)
    m = MODELS.build(cfg.model)
    m.init_weights()
    return cfg, m


def toy_batch(model, cfg: Config, split: str, idxs: Sequence[int], training: bool) -> dict:
    """Samples ``idxs`` of ``cfg``'s ``split`` dataloader dataset, collated and preprocessed
    by ``model``."""
    from mmdet.registry import DATASETS
    from mmengine.dataset import pseudo_collate
    ds = DATASETS.build(cfg[f'{split}_dataloader'].dataset)
    return model.data_preprocessor(pseudo_collate([ds[i] for i in idxs]), training)


def cli_options(root: str, epochs: int = 1, **extra) -> List[str]:
    """``--cfg-options`` arguments for the tools."""
    opts = dict(toy_overrides(root, epochs), **extra)
    return ['--cfg-options'] + [f'{k}={v}' for k, v in opts.items()]


MATCHER_CONFIG = osp.join(REPO, 'configs', 'matcher_toy.py')


def matcher_cfg(root: str, **extra) -> Config:
    """The training-free matcher's toy config on ``root`` with a random tiny SAM that keeps
    every grid proposal (a random SAM's IoU head is uncalibrated)."""
    cfg = Config.fromfile(MATCHER_CONFIG)
    root = root.rstrip('/') + '/'
    cfg.merge_from_dict({
        'test_dataloader.dataset.data_root': root,
        'test_evaluator.ann_file': root + 'annotations/instances_val.json',
        'test_evaluator.class_splits_file': root + 'annotations/splits.json',
        'model.backbone.checkpoint': None,
        'model.mask_head.decoder.checkpoint': None,
        'model.feature_extractor.checkpoint': None,
        'model.proposal_generator.points_per_side': 6,
        'model.proposal_generator.pred_iou_thresh': -10.0,
        'model.proposal_generator.stability_score_thresh': -1.0,
        **extra})
    return cfg


PERSAM_CONFIG = osp.join(REPO, 'configs', 'persam_toy.py')


def persam_cfg(root: str, **extra) -> Config:
    """The toy config on ``root`` with a random tiny SAM (whose logits lie around -0.02:
    a lower mask threshold gives it non-empty masks; every peak is kept)."""
    cfg = Config.fromfile(PERSAM_CONFIG)
    root = root.rstrip('/') + '/'
    cfg.merge_from_dict({
        'test_dataloader.dataset.data_root': root,
        'test_evaluator.ann_file': root + 'annotations/instances_val.json',
        'test_evaluator.class_splits_file': root + 'annotations/splits.json',
        'model.backbone.checkpoint': None, 'model.mask_head.decoder.checkpoint': None,
        'model.mask_head.mask_threshold': -0.05,
        'model.test_cfg.score_thr': -1.0, **extra})
    return cfg


# ---------------------------------------------------------------- pipeline steps by type
def scrambled_class_ids(ann_file: str, out_dir) -> str:
    """A copy of a COCO file whose annotations carry other class ids (1 + 7i mod 12), for the
    tests that no class label reaches a class-agnostic stage; returns its path."""
    with open(ann_file) as f:
        data = json.load(f)
    for i, a in enumerate(data['annotations']):
        a['category_id'] = 1 + (7 * i) % 12
    path = osp.join(str(out_dir), 'scrambled.json')
    with open(path, 'w') as f:
        json.dump(data, f)
    return path


def _step_type(step) -> str:
    """The ``type`` of a config step (a dict) or the class name of a built transform."""
    if isinstance(step, dict):
        t = step['type']
        return t if isinstance(t, str) else t.__name__
    return type(step).__name__


def find_step(pipeline: Sequence, type_name: str) -> int:
    """Index of the one step of ``pipeline`` whose type is ``type_name``.

    Works on config pipelines (lists of dicts) and on built ones (``Compose.transforms``).
    Raises if there is none or more than one, so a config change cannot silently move an
    override onto another step.
    """
    hits = [i for i, s in enumerate(pipeline) if _step_type(s) == type_name]
    if len(hits) != 1:
        raise AssertionError(f'{len(hits)} steps of type {type_name!r} in the pipeline '
                             f'{[_step_type(s) for s in pipeline]}; expected one')
    return hits[0]


def cached_pipeline(cache_dir: str, flip_prob: float = 0.0) -> list:
    """A training pipeline reading SAM features and reference tokens from the frozen-feature
    cache at ``cache_dir`` (no image is read)."""
    return [
        dict(type='LoadAnnotations', with_bbox=True),
        dict(type='LoadCachedSAMFeatures', cache_dir=cache_dir),
        dict(type='RandomFlipCachedFeatures', prob=flip_prob),
        dict(type='LoadCachedReferenceTokens', cache_dir=cache_dir),
        dict(type='PackInContextDetInputs'),
    ]


def cached_twin(cfg: Config, cache_dir: str, batch_size: int = 8) -> tuple:
    """A model of ``cfg`` (seed 0, eval), its training set without flips (exact equivalence
    needs none) and the same set read from the frozen-feature cache written at ``cache_dir``.

    Returns:
        (model, plain dataset, cached dataset, cache items, build stats)
    """
    import torch
    from mmdet.registry import DATASETS, MODELS
    from mmsamantics.apis import build_feature_cache, cache_items
    from mmsamantics.datasets import FeatureCache
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.eval()
    plain_cfg = copy.deepcopy(cfg.train_dataloader.dataset)
    update_step(plain_cfg.pipeline, 'RandomFlip', prob=0.0)
    plain = DATASETS.build(plain_cfg)
    items = cache_items(plain)
    stats = build_feature_cache(model, items, FeatureCache(cache_dir), dtype='float32',
                                batch_size=batch_size)
    cached_cfg = copy.deepcopy(cfg.train_dataloader.dataset)
    cached_cfg.pipeline = cached_pipeline(cache_dir)
    return model, plain, DATASETS.build(cached_cfg), items, stats


def update_step(pipeline: Sequence, type_name: str, **fields):
    """Update the step of type ``type_name`` in place with ``fields``; return the step."""
    step = pipeline[find_step(pipeline, type_name)]
    step.update(fields)
    return step


def built_step(dataset, type_name: str):
    """The transform of class ``type_name`` in a built dataset's pipeline."""
    transforms = dataset.pipeline.transforms
    return transforms[find_step(transforms, type_name)]


def step_options(cfg: Union[Config, str], loader: str, type_name: str, **fields) -> dict:
    """``--cfg-options`` entries setting ``fields`` on the step of type ``type_name`` in
    ``{loader}.dataset.pipeline``; the index is looked up by type in ``cfg`` (a config or
    its file)."""
    if isinstance(cfg, str):
        cfg = Config.fromfile(cfg)
    i = find_step(cfg[loader].dataset.pipeline, type_name)
    return {f'{loader}.dataset.pipeline.{i}.{k}': v for k, v in fields.items()}


# ---------------------------------------------------------------- the tools
PY = sys.executable


def load_tool(rel_path: str) -> ModuleType:
    """The tool ``rel_path`` (e.g. ``'tools/analysis/tsne.py'``, or an absolute path) as a
    module, to call its ``main(argv)`` in-process (a subprocess would pay the imports again)."""
    path = osp.join(REPO, rel_path)
    name = 'tool_' + re.sub(r'\W', '_', osp.relpath(path, REPO)[:-3])
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def run_tool(args: List[str], timeout: int = 300, env: Optional[dict] = None) -> Tuple[int, str]:
    """Run ``args`` in a subprocess from the repository root; (return code, stdout + stderr)."""
    e = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1', **(env or {}))
    p = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=timeout, env=e)
    return p.returncode, p.stdout + p.stderr


def log_metrics(log: str, phase: str = 'test') -> dict:
    """The ``coco/*`` metrics of the last ``Epoch(phase)`` line of a tool's log."""
    line = [ln for ln in log.splitlines() if f'Epoch({phase})' in ln and 'coco/bbox_mAP' in ln][-1]
    return {k: float(v) for k, v in re.findall(r'(coco/\S+): (-?[\d.]+)', line)}


def dumped_predictions(path: str) -> dict:
    """``{img_id: (boxes, scores, labels, mask RLEs)}`` of a test tool's ``--out`` file."""
    import pickle
    with open(path, 'rb') as f:
        results = pickle.load(f)
    out = {}
    for r in results:
        p = r['pred_instances']
        out[r['img_id']] = (p['bboxes'].numpy(), p['scores'].numpy(), p['labels'].numpy(),
                            p['masks'])
    assert len(out) == len(results), 'an image predicted twice'
    return out


def assert_same_dumped_predictions(a: dict, b: dict):
    """The same detections per image, up to float rounding (the two runs' processes differ
    in the order of a few float sums: boxes agree to 1e-3 px, not bit for bit)."""
    from pycocotools import mask as mask_util
    assert sorted(a) == sorted(b)
    for img_id, (boxes, scores, labels, masks) in a.items():
        b_boxes, b_scores, b_labels, b_masks = b[img_id]
        assert np.array_equal(labels, b_labels), img_id
        assert np.allclose(scores, b_scores, atol=1e-5), img_id
        assert np.allclose(boxes, b_boxes, atol=1e-3), img_id
        ious = mask_util.iou(masks, b_masks, [0] * len(masks)).diagonal()
        empty = (mask_util.area(masks) == 0) & (mask_util.area(b_masks) == 0)
        assert ((ious > 0.99) | empty).all(), (img_id, ious)


# ---------------------------------------------------------------- toy world files
def val_paths(root: str) -> Tuple[str, str]:
    """(annotation file, image folder) of the toy world's val split."""
    return osp.join(root, 'annotations', 'instances_val.json'), osp.join(root, 'val')


def val_images(root: str) -> List[str]:
    return sorted(glob.glob(osp.join(root, 'val', '*.png')))


def train_refs(root: str, num_classes: int = 2, shots: int = 2):
    """(img_path, class name, xyxy box, category id, ann) of a few large train instances,
    and the train annotation document."""
    with open(osp.join(root, 'annotations/instances_train.json')) as f:
        doc = json.load(f)
    imgs = {im['id']: im['file_name'] for im in doc['images']}
    out = []
    for cat in doc['categories']:
        anns = [a for a in doc['annotations'] if a['category_id'] == cat['id']
                and min(a['bbox'][2:]) >= 16 and not a.get('iscrowd')][:shots]
        if len(anns) == shots:
            out += [(osp.join(root, 'train', imgs[a['image_id']]), cat['name'],
                     [a['bbox'][0], a['bbox'][1], a['bbox'][0] + a['bbox'][2],
                      a['bbox'][1] + a['bbox'][3]], cat['id'], a) for a in anns]
        if len(out) == num_classes * shots:
            return out, doc
    raise AssertionError('toy world without enough references')


def write_train_refs(root: str, path: str, num_classes: int = 2, shots: int = 2) -> list:
    """Write a COCO reference file of ``train_refs`` to ``path``; return its annotations."""
    refs, doc = train_refs(root, num_classes=num_classes, shots=shots)
    anns = [r[4] for r in refs]
    with open(path, 'w') as f:
        json.dump(dict(images=[im for im in doc['images']
                               if im['id'] in {a['image_id'] for a in anns}],
                       annotations=anns, categories=doc['categories']), f)
    return anns


def random_toy_checkpoint(root: str, path: str) -> str:
    """Save a full toy detector checkpoint (SAM included) with the random weights of
    ``torch.manual_seed(0)`` to ``path``; return ``path``."""
    import torch
    from mmengine.runner import save_checkpoint

    from mmdet.registry import MODELS
    torch.manual_seed(0)
    model = MODELS.build(toy_cfg(root).model)
    model.init_weights()
    save_checkpoint({'state_dict': model.state_dict(), 'meta': {}}, path)
    return path


def decode(rles) -> np.ndarray:
    """COCO RLEs -> N x H x W bool masks (an empty array for no RLE)."""
    from pycocotools import mask as mask_util
    return mask_util.decode(rles).transpose(2, 0, 1).astype(bool) if rles else np.zeros((0,))


# ---------------------------------------------------------------- linear probing
PROBE_CONFIGS = osp.join(REPO, 'configs', 'linear_probe')
TOY_PROBES = {k: osp.join(PROBE_CONFIGS, f'linear-probe_{k}_1xb16-10e_toy-cls.py')
              for k in ('sam-tiny', 'sam2-tiny', 'sam3-tiny', 'clip-tiny', 'dinov2-tiny')}


def toy_probe_cfg(kind: str, root: str, epochs: int = 2, **options) -> Config:
    """Toy probe config ``kind`` on ``root``, ``epochs`` long, one checkpoint at the end."""
    cfg = Config.fromfile(TOY_PROBES[kind])
    opts = {'train_dataloader.dataset.data_root': root,
            'val_dataloader.dataset.data_root': root,
            'test_dataloader.dataset.data_root': root,
            'train_cfg.max_epochs': epochs,
            'default_hooks.checkpoint.interval': epochs,
            'default_hooks.logger.interval': 1}
    opts.update(options)
    cfg.merge_from_dict(opts)
    return cfg


def numpy_topk(scores: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Percentage of rows whose label is among the k highest scores."""
    top = np.argsort(-scores, axis=1, kind='stable')[:, :k]
    return 100.0 * float(np.mean([labels[i] in top[i] for i in range(len(labels))]))


# ---------------------------------------------------------------- inferencer vs pipeline
def inferencer_vs_pipeline(inf, img: str, refs: list, steps: Optional[list] = None):
    """(inferencer result of ``img``, the model's own prediction through its test pipeline)
    for references ``refs`` (``train_refs`` items) registered as masks with keys
    ``direct{i}``; ``steps`` replaces the test pipeline (e.g. without target annotations)."""
    import mmcv
    import torch
    from mmcv.transforms import Compose
    from mmengine.dataset import pseudo_collate
    from mmsamantics.utils.images import decode_coco_mask
    for i, (path, name, _, _, ann) in enumerate(refs):
        h, w = mmcv.imread(path).shape[:2]
        inf.add_reference(path, name, mask=decode_coco_mask(ann['segmentation'], h, w),
                          key=f'direct{i}')
    res = inf(img, score_thr=-1.0, max_dets=1000, show_progress=False)[0]
    label = {c: i for i, c in enumerate(inf.classes)}
    pipe = Compose(steps or inf.cfg.test_dataloader.dataset.pipeline)
    data = pipe(dict(img_path=img, img_id=0, references=[
        dict(img_path=p, bbox=b, label=label[n], key=f'direct{i}',
             segmentation=a['segmentation'], img_hw=mmcv.imread(p).shape[:2])
        for i, (p, n, b, _, a) in enumerate(refs)]))
    data = inf.model.data_preprocessor(pseudo_collate([data]), False)
    with torch.no_grad():
        pred = inf.model.predict(data['inputs'], data['data_samples'])[0].pred_instances
    return res, pred


def assert_same_predictions(inf, res: dict, pred) -> None:
    """The inferencer's result ``res`` equals the model's own ``pred`` (non-empty): scores,
    labels, boxes (original pixels, xyxy) and masks."""
    assert len(res['scores']) == len(pred) > 0
    np.testing.assert_allclose(res['scores'], pred.scores.numpy(), atol=1e-4)
    np.testing.assert_allclose(np.asarray(res['boxes'], np.float32).reshape(-1, 4),
                               pred.bboxes.numpy(), atol=1e-2)
    assert res['labels'] == [inf.classes[i] for i in pred.labels.tolist()]
    assert (decode(res['masks']) == pred.masks.numpy()).mean() > 0.999


@contextmanager
def using_bank(model, cfg: Config, bank: str) -> Iterator[Config]:
    """Within the block, ``model`` reads ``bank``; yields a copy of ``cfg`` whose test pipeline
    is in bank mode (what ``tools/test.py --ref-bank`` does: no reference image read)."""
    from mmsamantics.evaluation.kshot import apply_reference_options
    banked = copy.deepcopy(cfg)  # Config.copy would share the pipeline dicts
    apply_reference_options(banked, ref_bank=bank)
    model.reference_bank = bank
    try:
        yield banked
    finally:
        model.reference_bank = None

