"""The embedded default job (`make demo`): toy world -> train InSAM-DETR -> evaluate -> pictures.

1. writes the synthetic toy world (data/toy_world, 400 train / 100 val images) unless it
   is already there; a world of other parameters in that folder (e.g. the smaller one of
   docs/samic.md) stops the demo with the folder to use instead, unless --force;
2. makes the toy SAM the way the real one was made, without any label, unless its
   checkpoint exists (the stand-in for the official weights, so that the demo needs no
   download): MAE, then class-agnostic promptable segmentation (docs/toy_semantics.md);
3. trains the toy InSAM-DETR (SAM frozen) on the BASE classes: region and shape tokens,
   the shape-aware head with D4 symmetry, negative classes (configs/insam_detr_toy_shape.py;
   the paper's design: --config configs/insam_detr_toy.py);
4. evaluates box/mask AP on all, base and novel classes in oracle mode, and in open mode on
   two reference choices (the dataset's seeded draw and refs_seed42.json) at 1 and 5 shots,
   each with the family of reference controls (every class given the references of the
   next class, of random other classes, of a class of the same colour or of the same
   shape), derived from the open-mode predictions, and each of the 5 shots alone (k shots
   are judged against the mean of their single shots); prints each control's cost per split
   and per class, and checks the demo's targets; every run is recorded in demo_results.json
   (a later run reads back the runs of the same checkpoint);
5. writes PNGs: each reference with its box, targets with predicted masks and scores;
6. with --with-matcher: pretrains the toy DINOv2 and runs the training-free SAM + DINOv2
   matcher (configs/matcher_toy.py) on the same toy world for comparison.

It also writes the README's k-shot reference sets, data/toy_world/refs/refs_seed{42,123,33}.json
(tools/misc/make_reference_sets.py --min-area 256 --border 4), unless made for this world.
"""
import argparse
import copy
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
from mmsamantics.apis import build_model, make_reference_bank
from mmsamantics.evaluation import (apply_reference_options, control_markdown,
                                    derived_control_summaries)
from mmsamantics.utils.files import file_digest, read_json, write_json_atomic
from mmsamantics.engine import build_runner
from mmsamantics_toy.pretraining import (pretrain_sam_encoder_mae, pretrain_toy_dinov2,
                                         pretrain_toy_sam)
from mmsamantics_toy.toy_world import (ToyWorldMismatchError, is_current_toy_world,
                                       make_toy_world, suggest_toy_world_dir, toy_world_params)

CONFIG = osp.join(osp.dirname(__file__), '..', 'configs', 'insam_detr_toy_shape.py')
MATCHER_CONFIG = osp.join(osp.dirname(__file__), '..', 'configs', 'matcher_toy.py')
DINOV2_CKPT = Config.fromfile(MATCHER_CONFIG).model.feature_extractor.checkpoint


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
    p.add_argument('--with-matcher', action='store_true',
                   help='also pretrain the toy DINOv2 and test the training-free SAM + '
                   'DINOv2 matcher on the same world (about 5 more minutes the first time)')
    return p.parse_args()


def point_config(cfg: Config, root: str, work_dir: str, epochs) -> Config:
    root = root.rstrip('/') + '/'
    for name in ('train_dataloader', 'test_dataloader'):
        if cfg.get(name):  # a training-free method has no training data
            cfg[name].dataset.data_root = root
    cfg.test_evaluator.update(ann_file=root + 'annotations/instances_val.json',
                              class_splits_file=root + 'annotations/splits.json')
    if epochs is not None:
        cfg.train_cfg.max_epochs = epochs
        cfg.default_hooks.checkpoint.interval = epochs
    # no validation inside training: the demo evaluates the checkpoint right after
    cfg.val_dataloader = cfg.val_evaluator = cfg.val_cfg = None
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
    if new_world and not dinov2_ckpt and osp.isfile(DINOV2_CKPT):
        os.remove(DINOV2_CKPT)  # made on another world: never reused by a later --with-matcher
    if dinov2_ckpt and (new_world or not osp.isfile(dinov2_ckpt)):
        print(f'[demo] toy DINOv2: self-distillation on the images -> {dinov2_ckpt} ...',
              flush=True)
        r = pretrain_toy_dinov2(img_dir, dinov2_ckpt, epochs=args.dino_epochs)
        print(f'[demo] DINO loss {r["first_loss"]:.3f} -> {r["last_loss"]:.3f} '
              f'({r["seconds"]:.0f}s)')


def trained_stamp(cfg: Config, sam_ckpt: str) -> dict:
    """What the trained detector depends on: its config and the toy SAM's bytes."""
    return dict(config=hashlib.sha1(cfg.pretty_text.encode()).hexdigest(),
                sam=file_digest(sam_ckpt) if sam_ckpt else None)


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


# (name, reference-set file or None for the dataset's own seeded draw, shots)
REFERENCE_CHOICES = (('default', None), ('refs_seed42', 'refs/refs_seed42.json'))
SHOTS = (1, 5)
CONTROL_FAMILY = ('family',)  # cyclic, random-0/1/2, same-attribute, same-kind
MIN_DROP = 0.4  # every derangement must cost at least 40 % of the base-class box AP50
WITH_MASKS = ('oracle', 'open_default_1shot')  # the runs of the AP table: masks too


def eval_runs(root: str) -> list:
    """(run name, mode, reference choice, reference set, shots, derived controls, shot index)
    of the demo's evaluation: oracle with the dataset's references, then open mode on both
    reference choices at 1 and 5 shots, each with the control family derived from its
    predictions, and each of the other 4 shots alone (the 1-shot run is shot 0): k shots
    are compared with the mean of their single shots, not with one draw of one."""
    runs = [('oracle', 'oracle', 'default', None, 1, (), None)]
    for choice, ref_set in REFERENCE_CHOICES:
        path = osp.join(root, ref_set) if ref_set else None
        for k in SHOTS:
            runs.append((f'open_{choice}_{k}shot', 'open', choice, path, k, CONTROL_FAMILY,
                         None))
        runs += [(f'open_{choice}_shot{i}', 'open', choice, path, 1, (), i)
                 for i in range(1, max(SHOTS))]
    return runs


def reference_banks(cfg: Config, ckpt: str, root: str, out_dir: str, tag: str) -> dict:
    """{reference choice: bank of its max(SHOTS) references}, encoded once by the frozen
    SAM (fewer shots are the first ones of the bank), unless made before for these weights."""
    banks, model = {}, None
    for choice, ref_set in REFERENCE_CHOICES:
        banks[choice] = osp.join(out_dir, f'bank_{choice}_{max(SHOTS)}shot_{tag}.pth')
        if not osp.isfile(banks[choice]):
            model = model or build_model(copy.deepcopy(cfg), ckpt)  # mmdet edits the dict
            make_reference_bank(model, cfg, osp.join(root, ref_set) if ref_set else None,
                                max(SHOTS), banks[choice])
    return banks


def run_config(cfg: Config, run: tuple, banks: dict, ckpt: str, out_dir: str) -> Config:
    """The config of one :func:`eval_runs` run: its mode, references (from the bank) and
    derived controls, and never a reference control (``ref_control='none'`` removes one
    that ``cfg`` might carry: the controls are derived, not run)."""
    name, mode, choice, ref_set, k, controls, shot = run
    cfg_m = copy.deepcopy(cfg)  # Config.copy() would share the dicts edited below
    apply_reference_options(cfg_m, ref_set, k, banks[choice], mode, ref_control='none')
    cfg_m.test_dataloader.dataset.shot_index = shot
    cfg_m.test_evaluator.update(classwise=True, derived_controls=list(controls))
    if name not in WITH_MASKS:  # the controls and targets compare boxes
        cfg_m.model.with_mask = False
        cfg_m.test_evaluator.metric = ['bbox']
    # resume says whether training was reused: no part of the evaluation, nor of its stamp
    cfg_m.load_from, cfg_m.work_dir, cfg_m.resume = ckpt, osp.join(out_dir, name), False
    cfg_m.experiment_name = f'test_{name}'
    return cfg_m


def evaluate(cfg: Config, work_dir: str, root: str) -> tuple:
    """Every run of :func:`eval_runs`: {run: metrics}, and the runner of the open run on the
    dataset's references (for the pictures). The references are read from banks; a run
    whose record matches the checkpoint and its settings is read back instead of run again
    (a later ``make demo`` is quick)."""
    ckpt = osp.join(work_dir, f'epoch_{cfg.train_cfg.max_epochs}.pth')
    weights = file_digest(ckpt)
    out_dir = osp.join(work_dir, 'eval')
    banks = reference_banks(cfg, ckpt, root, out_dir, weights[:8])
    results = {}
    for run in eval_runs(root):
        name, cfg_m = run[0], run_config(cfg, run, banks, ckpt, out_dir)
        stamp = dict(weights=weights, config=hashlib.sha1(cfg_m.pretty_text.encode()).hexdigest())
        record = osp.join(out_dir, f'{name}.json')
        saved = read_json(record, 'demo run record') if osp.isfile(record) else {}
        if saved.get('stamp') == stamp:  # this checkpoint, these settings: read back
            results[name] = saved['metrics']
            continue
        results[name] = build_runner(cfg_m).test()
        write_json_atomic(record, dict(stamp=stamp, metrics=results[name]))
    cfg_m = copy.deepcopy(cfg)  # the pictures: the dataset's references, their images drawn
    cfg_m.test_dataloader.dataset.update(mode='open', ref_control=None)
    cfg_m.load_from, cfg_m.work_dir = ckpt, osp.join(out_dir, 'vis')
    tester = build_runner(cfg_m)
    tester.load_or_resume()  # the weights; draw() builds the test dataloader
    return results, tester


def check_targets(results: dict, controls: dict) -> dict:
    """The demo model's targets on each reference choice: open base box AP50 >= 0.40 (1 and
    5 shots), every derangement >= 40 % below the right references on base classes (and
    beaten per class on average), 5 shots >= 1 shot on novel classes: the mean of the 5
    shots each alone (one draw of one shot can be unusually good)."""
    out = {}
    for choice, _ in REFERENCE_CHOICES:
        runs = {k: results[f'open_{choice}_{k}shot'] for k in SHOTS}
        ap = {k: runs[k]['coco/base_bbox_mAP_50'] for k in SHOTS}
        novel = {k: runs[k]['coco/novel_bbox_mAP_50'] for k in SHOTS}
        rows = {k: [(row['base_drop'], group, row['pass']) for group, row in
                    controls[f'open_{choice}_{k}shot'].items() if group != 'right']
                for k in SHOTS}
        worst = {k: min(r) for k, r in rows.items()}
        single = [novel[1]] + [results[f'open_{choice}_shot{i}']['coco/novel_bbox_mAP_50']
                               for i in range(1, max(SHOTS))]
        out[choice] = {
            'open base AP50 >= 0.40': dict(value=ap, met=all(v >= 0.40 for v in ap.values())),
            f'every derangement >= {100 * MIN_DROP:.0f} % below (base)': dict(
                value={k: f'{w[1]} {100 * w[0]:.0f} %' for k, w in worst.items()},
                met=all(w[0] >= MIN_DROP for w in worst.values())),
            'right beats every derangement per class': dict(
                value={k: sum(p for *_, p in r) for k, r in rows.items()},
                met=all(p for r in rows.values() for *_, p in r)),
            '5-shot >= 1-shot, mean of single shots (novel)': dict(
                value={'5-shot': novel[5], '1-shot mean': round(sum(single) / len(single), 3),
                       'single shots': single},
                met=novel[5] >= sum(single) / len(single)),
        }
    return out


def run_matcher(root: str, work_dir: str, sam_ckpt: str) -> dict:
    """Oracle-mode test of the training-free matcher on the toy world (no checkpoint)."""
    cfg = point_config(Config.fromfile(MATCHER_CONFIG), root, osp.join(work_dir, 'matcher'),
                       None)
    cfg.model.backbone.checkpoint = cfg.model.mask_head.decoder.checkpoint = sam_ckpt
    return build_runner(cfg).test()


def table(results: dict) -> str:
    rows = ['| model / mode                  | classes | box AP | box AP50 | mask AP | mask AP50 |',
            '|-------------------------------|---------|--------|----------|---------|-----------|']
    for mode in ('oracle', 'open_default_1shot', 'matcher'):
        m = results.get(mode)
        if m is None:
            continue
        name = 'matcher / oracle' if mode == 'matcher' else f'InSAM-DETR / {mode.split("_")[0]}'
        for split, p in (('all', ''), ('base', 'base_'), ('novel', 'novel_')):
            g = lambda k: m.get(f'coco/{p}{k}', float('nan'))  # noqa: E731
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
    make_encoders(args, sam_ckpt, DINOV2_CKPT if args.with_matcher else None, new_world)
    stamp = trained_stamp(cfg, sam_ckpt)
    cfg.resume = reuse_trained(args.work_dir, stamp)
    print(f'[demo] training toy InSAM-DETR for {cfg.train_cfg.max_epochs} epochs on the '
          'base classes ...' if not cfg.resume else '[demo] reusing the trained InSAM-DETR '
          f'in {args.work_dir} (same config and toy SAM; make clean-demo to retrain)',
          flush=True)
    build_runner(cfg).train()
    write_json_atomic(osp.join(args.work_dir, 'demo_stamp.json'), stamp)
    t_train = time.time() - t0
    results, tester = evaluate(cfg, args.work_dir, args.data_root)
    pngs = draw(tester, osp.join(args.work_dir, 'vis'), args.num_vis)
    if args.with_matcher:
        print('[demo] training-free SAM + DINOv2 matcher (no training; the toy DINOv2) ...',
              flush=True)
        results['matcher'] = run_matcher(args.data_root, args.work_dir, sam_ckpt)
    with open(osp.join(args.data_root, 'annotations', 'splits.json')) as f:
        controls = derived_control_summaries(results, json.load(f))
    targets = check_targets(results, controls)
    total = time.time() - t0
    write_json_atomic(osp.join(args.work_dir, 'demo_results.json'), dict(
        config=osp.relpath(args.config), train_seconds=round(t_train, 1),
        total_seconds=round(total, 1), results=results, controls=controls, targets=targets,
        pictures=pngs))
    report(results, controls, targets, t_train, total, args.work_dir, len(pngs))


def report(results: dict, controls: dict, targets: dict, t_train: float, total: float,
           work_dir: str, num_pngs: int) -> None:
    """The demo's printout: the AP table, the control family of every open run, targets."""
    print('\n[demo] toy-world InSAM-DETR, trained on base classes '
          f'({t_train / 60:.1f} min for data, toy-encoder pretraining and training; '
          f'{total / 60:.1f} min in all; right references, no control):')
    print(table(results))
    if 'matcher' in results:
        m = results['matcher']
        print(f'[demo] matcher AR@100: box {m.get("coco/bbox_AR@100", float("nan")):.3f}, '
              f'mask {m.get("coco/segm_AR@100", float("nan")):.3f}')
    for name, summary in controls.items():
        print(f'\n[demo] reference controls, open mode, {name[5:].replace("_", " ")} '
              '(a model that uses its references loses AP under every one):')
        print(control_markdown(summary))
    print('\n[demo] targets:')
    for choice, checks in targets.items():
        for what, c in checks.items():
            print(f'  {choice:<12} {what:<40} {"met" if c["met"] else "NOT MET":<8} {c["value"]}')
    print(f'\n[demo] pictures: {osp.join(work_dir, "vis")} ({num_pngs} PNGs); '
          f'numbers: {osp.join(work_dir, "demo_results.json")}')


if __name__ == '__main__':
    main()
