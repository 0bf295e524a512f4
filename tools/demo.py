"""The embedded default job (`make demo`): toy world -> train InSAM-DETR -> evaluate -> pictures.

1. writes the synthetic toy world (data/toy_world, 400 train / 100 val images) unless it
   is already there; a world of other parameters in that folder (e.g. the smaller one of
   docs/samic.md) stops the demo with the folder to use instead, unless --force;
2. makes the toy encoders the way the real ones were made, without any label, unless their
   checkpoints exist (the stand-ins for the official weights, so that the demo needs no
   download): the tiny SAM by MAE then class-agnostic promptable segmentation, the tiny
   DINOv2 by self-distillation (docs/toy_semantics.md);
3. trains the toy InSAM-DETR (SAM frozen) on the BASE classes, with the reference-aware
   classification head and negative classes (the paper's design: --config
   configs/insam_detr_toy.py);
4. evaluates box/mask AP on all, base and novel classes, in oracle and open modes, and the
   same with shuffled references (each class given another class's references): a model
   that uses its references loses AP there;
5. writes PNGs: each reference with its box, targets with predicted masks and scores;
6. runs the training-free SAM + DINOv2 matcher (configs/matcher_toy.py, no training) on
   the same toy world for comparison (box/mask AP and AR).

It also writes the k-shot reference sets that tools/infer.py and the README's examples use,
data/toy_world/refs/refs_seed{42,123,33}.json (tools/misc/make_reference_sets.py with the
toy thresholds --min-area 256 --border 4), unless they exist for this world.
"""
import argparse
import hashlib
import importlib.util
import json
import os
import os.path as osp
import sys
import time

import mmcv
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.runner import Runner
from mmengine.structures import InstanceData

import mmsamantics  # noqa: F401
from mmdet.structures import DetDataSample
from mmdet.visualization import DetLocalVisualizer
from mmsamantics.datasets.toy_world import (ToyWorldMismatchError, is_current_toy_world,
                                            make_toy_world, suggest_toy_world_dir,
                                            toy_world_params)
from mmsamantics.engine.pretraining import (pretrain_sam_encoder_mae, pretrain_toy_dinov2,
                                            pretrain_toy_sam)

CONFIG = osp.join(osp.dirname(__file__), '..', 'configs', 'insam_detr_toy_regions.py')
MATCHER_CONFIG = osp.join(osp.dirname(__file__), '..', 'configs', 'matcher_toy.py')


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--config', default=CONFIG)
    p.add_argument('--work-dir', default='work_dirs/demo')
    p.add_argument('--data-root', default='data/toy_world')
    p.add_argument('--epochs', type=int, default=None, help='override max_epochs')
    p.add_argument('--num-vis', type=int, default=4, help='target images to draw')
    p.add_argument('--mae-epochs', type=int, default=8, help='toy SAM MAE epochs')
    p.add_argument('--dino-epochs', type=int, default=30, help='toy DINOv2 epochs')
    p.add_argument('--force', action='store_true',
                   help='replace a toy world of other parameters in --data-root')
    return p.parse_args()


def point_config(cfg: Config, root: str, work_dir: str, epochs) -> Config:
    root = root.rstrip('/') + '/'
    for name in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        cfg[name].dataset.data_root = root
    for name in ('val_evaluator', 'test_evaluator'):
        cfg[name].ann_file = root + 'annotations/instances_val.json'
        cfg[name].class_splits_file = root + 'annotations/splits.json'
    if epochs is not None:
        cfg.train_cfg.max_epochs = epochs
        cfg.train_cfg.val_interval = epochs
        cfg.default_hooks.checkpoint.interval = epochs
    cfg.work_dir = work_dir
    return cfg


def make_encoders(args, sam_ckpt: str, dinov2_ckpt: str, new_world: bool) -> None:
    """The toy SAM (MAE, then promptable segmentation) and the toy DINOv2 (DINO), made
    from the training images without labels, unless their checkpoints exist."""
    img_dir = osp.join(args.data_root, 'train')
    if sam_ckpt and (new_world or not osp.isfile(sam_ckpt)):
        mae = None  # --mae-epochs 0: the promptable stage starts from random weights
        if args.mae_epochs > 0:
            mae = osp.splitext(sam_ckpt)[0] + '_mae.pth'
            print(f'[demo] toy SAM, stage 1: MAE on the images -> {mae} ...', flush=True)
            r = pretrain_sam_encoder_mae(img_dir, mae, epochs=args.mae_epochs)
            print(f'[demo] MAE loss {r["first_loss"]:.3f} -> {r["last_loss"]:.3f} '
                  f'({r["seconds"]:.0f}s)')
        print(f'[demo] toy SAM, stage 2: class-agnostic box/point prompts -> {sam_ckpt} ...',
              flush=True)
        r = pretrain_toy_sam(osp.join(args.data_root, 'annotations', 'instances_train.json'),
                             img_dir, sam_ckpt, init_encoder=mae)
        print(f'[demo] toy SAM: mean mask IoU {r["mean_iou"]:.3f} ({r["seconds"]:.0f}s)')
    if dinov2_ckpt and (new_world or not osp.isfile(dinov2_ckpt)):
        print(f'[demo] toy DINOv2: self-distillation on the images -> {dinov2_ckpt} ...',
              flush=True)
        r = pretrain_toy_dinov2(img_dir, dinov2_ckpt, epochs=args.dino_epochs)
        print(f'[demo] DINO loss {r["first_loss"]:.3f} -> {r["last_loss"]:.3f} '
              f'({r["seconds"]:.0f}s)')


def trained_stamp(cfg: Config, sam_ckpt: str) -> dict:
    """What the trained detector depends on: its config and the toy SAM's bytes."""
    sam = None
    if sam_ckpt:
        with open(sam_ckpt, 'rb') as f:
            sam = hashlib.sha1(f.read()).hexdigest()
    return dict(config=hashlib.sha1(cfg.pretty_text.encode()).hexdigest(), sam=sam)


def reuse_trained(work_dir: str, stamp: dict) -> bool:
    """Resume (a finished run: skip training) when ``work_dir`` holds a run of this very
    config and toy SAM; a run of anything else is never mixed in."""
    path = osp.join(work_dir, 'demo_stamp.json')
    if osp.isfile(path) and osp.isfile(osp.join(work_dir, 'last_checkpoint')):
        with open(path) as f:
            if json.load(f) == stamp:
                return True
    for name in os.listdir(work_dir) if osp.isdir(work_dir) else []:
        if name.endswith('.pth') or name == 'last_checkpoint':
            os.remove(osp.join(work_dir, name))
    return False


def make_reference_files(root: str, new_world: bool) -> str:
    """``ROOT/refs/refs_seed{42,123,33}.json`` from the train annotations, unless present
    (remade for a new world), with the README's make_reference_sets.py command."""
    out = osp.join(root, 'refs')
    if osp.isfile(osp.join(out, 'refs_seed42.json')) and not new_world:
        return out
    path = osp.join(osp.dirname(osp.abspath(__file__)), 'misc', 'make_reference_sets.py')
    spec = importlib.util.spec_from_file_location('make_reference_sets', path)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    print(f'[demo] k-shot reference sets -> {out}', flush=True)
    tool.main([osp.join(root, 'annotations', 'instances_train.json'), '--out-dir', out,
               '--min-area', '256', '--border', '4'])
    return out


def evaluate(cfg: Config, work_dir: str) -> tuple:
    """Oracle and open mode, each also with shuffled references: {run: metrics}, a runner."""
    results = {}
    for mode in ('oracle', 'open'):
        for control in (None, 'shuffled'):
            name = mode + (f'_{control}' if control else '')
            cfg_m = cfg.copy()
            cfg_m.test_dataloader.dataset.mode = mode
            cfg_m.test_dataloader.dataset.ref_control = control
            cfg_m.load_from = osp.join(work_dir, f'epoch_{cfg.train_cfg.max_epochs}.pth')
            cfg_m.experiment_name = f'test_{name}'
            runner = Runner.from_cfg(cfg_m)
            results[name] = runner.test()
            if control is None and mode == 'open':
                tester = runner
    return results, tester


def run_matcher(root: str, work_dir: str, sam_ckpt: str) -> dict:
    """Oracle-mode test of the training-free matcher on the toy world (no checkpoint)."""
    cfg = Config.fromfile(MATCHER_CONFIG)
    root = root.rstrip('/') + '/'
    cfg.test_dataloader.dataset.data_root = root
    cfg.test_evaluator.ann_file = root + 'annotations/instances_val.json'
    cfg.test_evaluator.class_splits_file = root + 'annotations/splits.json'
    cfg.model.backbone.checkpoint = sam_ckpt
    cfg.model.mask_head.decoder.checkpoint = sam_ckpt
    cfg.work_dir = osp.join(work_dir, 'matcher')
    return Runner.from_cfg(cfg).test()


def table(results: dict) -> str:
    rows = ['| model / mode                  | classes | box AP | box AP50 | mask AP | mask AP50 |',
            '|-------------------------------|---------|--------|----------|---------|-----------|']
    for mode, m in results.items():
        for split, p in (('all', ''), ('base', 'base_'), ('novel', 'novel_')):
            g = lambda k: m.get(f'coco/{p}{k}', float('nan'))  # noqa: E731
            name = 'matcher / oracle' if mode == 'matcher' else f'InSAM-DETR / {mode}'
            rows.append(f'| {name:<29} | {split:<7} | {g("bbox_mAP"):.3f}  | '
                        f'{g("bbox_mAP_50"):.3f}    | {g("segm_mAP"):.3f}   | '
                        f'{g("segm_mAP_50"):.3f}     |')
    return '\n'.join(rows)


def draw(runner: Runner, out_dir: str, num: int, score_thr: float = 0.3) -> list:
    """Reference PNGs (box) and target PNGs (predicted masks, classes, scores)."""
    os.makedirs(out_dir, exist_ok=True)
    model = runner.model
    model.eval()
    dataset = runner.test_dataloader.dataset
    classes = dataset.metainfo['classes']
    vis = DetLocalVisualizer(name='demo_vis', alpha=0.5)
    vis.dataset_meta = dataset.metainfo
    written, refs_drawn = [], set()
    for i in range(min(num, len(dataset))):
        data = model.data_preprocessor(pseudo_collate([dataset[i]]), False)
        with torch.no_grad():
            pred = model.predict(data['inputs'], data['data_samples'])[0]
        info = dataset.get_data_info(i)
        for r in dataset.sample_references(i, info):
            if r['key'] in refs_drawn:
                continue
            refs_drawn.add(r['key'])
            ref_img = mmcv.imread(r['img_path'], channel_order='rgb')
            ref = DetDataSample(gt_instances=InstanceData(
                bboxes=torch.tensor([r['bbox']]), labels=torch.tensor([r['label']])))
            path = osp.join(out_dir, f'reference_{classes[r["label"]].replace(" ", "_")}.png')
            vis.add_datasample('ref', ref_img, ref, draw_pred=False, out_file=path)
            written.append(path)
        img = mmcv.imread(info['img_path'], channel_order='rgb')
        keep = pred.pred_instances.scores >= score_thr
        pred.pred_instances = pred.pred_instances[keep]
        path = osp.join(out_dir, f'target_{i:03d}.png')
        vis.add_datasample('target', img, pred, draw_gt=False, pred_score_thr=score_thr,
                           out_file=path)
        written.append(path)
    return written


def main():
    args = parse_args()
    t0 = time.time()
    new_world = not is_current_toy_world(args.data_root)  # the default 400/100 world
    if new_world:
        print(f'[demo] writing the toy world to {args.data_root} ...', flush=True)
        try:
            make_toy_world(args.data_root, overwrite=args.force)
        except ToyWorldMismatchError as e:
            other = suggest_toy_world_dir(args.data_root, toy_world_params())
            sys.exit(f'error: {e}\nFor the demo: python tools/demo.py --data-root {other} '
                     '(or --force to replace it).')
    make_reference_files(args.data_root, new_world)
    cfg = point_config(Config.fromfile(args.config), args.data_root, args.work_dir,
                       args.epochs)
    sam_ckpt = cfg.model.backbone.checkpoint
    matcher_cfg = Config.fromfile(MATCHER_CONFIG)
    make_encoders(args, sam_ckpt, matcher_cfg.model.feature_extractor.checkpoint, new_world)
    stamp = trained_stamp(cfg, sam_ckpt)
    cfg.resume = reuse_trained(args.work_dir, stamp)
    print(f'[demo] training toy InSAM-DETR for {cfg.train_cfg.max_epochs} epochs on the '
          'base classes ...' if not cfg.resume else '[demo] reusing the trained InSAM-DETR '
          f'in {args.work_dir} (same config and toy SAM; make clean-demo to retrain)',
          flush=True)
    runner = Runner.from_cfg(cfg)
    runner.train()
    with open(osp.join(args.work_dir, 'demo_stamp.json'), 'w') as f:
        json.dump(stamp, f)
    t_train = time.time() - t0
    results, tester = evaluate(cfg, args.work_dir)
    pngs = draw(tester, osp.join(args.work_dir, 'vis'), args.num_vis)
    print('[demo] training-free SAM + DINOv2 matcher (no training; the toy DINOv2) ...',
          flush=True)
    results['matcher'] = run_matcher(args.data_root, args.work_dir, sam_ckpt)
    total = time.time() - t0
    summary = dict(train_seconds=round(t_train, 1), total_seconds=round(total, 1),
                   results={m: {k: float(v) for k, v in r.items()} for m, r in results.items()},
                   pictures=pngs)
    with open(osp.join(args.work_dir, 'demo_results.json'), 'w') as f:
        json.dump(summary, f, indent=1)
    print('\n[demo] toy-world InSAM-DETR, trained on base classes '
          f'({t_train / 60:.1f} min for data, toy-encoder pretraining and training; '
          f'{total / 60:.1f} min in all):')
    print(table(results))
    m = results['matcher']
    print(f'[demo] matcher AR@100: box {m.get("coco/bbox_AR@100", float("nan")):.3f}, mask '
          f'{m.get("coco/segm_AR@100", float("nan")):.3f}')
    print(f'\n[demo] pictures: {osp.join(args.work_dir, "vis")} ({len(pngs)} PNGs); '
          f'numbers: {osp.join(args.work_dir, "demo_results.json")}')
    for mode in ('oracle', 'open'):
        a = results[mode].get('coco/base_bbox_mAP_50', float('nan'))
        b = results[f'{mode}_shuffled'].get('coco/base_bbox_mAP_50', float('nan'))
        print(f'[demo] {mode} base-class box AP50 {a:.3f}, with shuffled references {b:.3f} '
              f'(a model that uses its references loses AP with the wrong ones)')


if __name__ == '__main__':
    main()
