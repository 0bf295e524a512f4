"""The paper's evaluation protocol in the COCO configs and the k-shot sweep defaults."""
import os.path as osp
import sys

from mmengine.config import Config

from helpers import load_tool
from mmsamantics.engine.preflight import missing_resources

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
MAKE = ('python tools/misc/make_reference_sets.py data/coco/annotations/instances_train2017.json'
        ' --out-dir data/coco/references')


def test_coco_configs_read_the_10_shot_set_and_validate_once():
    for name in ('insam_detr_coco.py', 'insam_detr_coco_novel.py'):
        cfg = Config.fromfile(osp.join(REPO, 'configs', name))
        ds = cfg.test_dataloader.dataset
        assert (ds.ref_set_file, ds.shots, ds.mode) == ('references/refs_seed42.json', 10,
                                                        'oracle')
        assert cfg.train_cfg.val_interval == cfg.train_cfg.max_epochs == 50
        assert cfg.model.test_cfg == dict(max_per_pair=100, max_per_img=100)


def test_missing_set_file_names_the_command_random_only_on_request():
    cfg = Config.fromfile(osp.join(REPO, 'configs', 'insam_detr_coco.py'))
    assert (f'reference set (create: {MAKE}) \'data/coco/references/refs_seed42.json\' '
            '(test_dataloader) not found') in missing_resources(cfg, 'test')
    cfg.merge_from_dict({'test_dataloader.dataset.ref_set_file': None})
    assert not any('reference set' in line for line in missing_resources(cfg, 'test'))


def test_kshot_sweep_defaults_are_the_papers(monkeypatch):
    tool = load_tool('tools/analysis/kshot_eval.py')
    monkeypatch.setattr(sys, 'argv', ['kshot_eval.py', 'CONFIG'])
    args = tool.parse_args()
    assert (args.shots, args.seeds, args.modes) == ([1, 5, 10], [42, 123, 33],
                                                    ['oracle', 'open'])


COCO_INSAM = ('insam-detr_sam-vit-b_16xb3-50e_coco.py',
              'insam-detr_sam-vit-b_16xb3-50e_coco-novel-base.py',
              'insam-detr_sam-vit-b_16xb3-50e_coco_cached.py',
              'insam-detr_sam-vit-l_16xb2-50e_coco.py', 'insam-detr_sam-vit-h_16xb2-50e_coco.py',
              'insam-detr_hq-sam-vit-b_16xb3-50e_coco.py',
              'insam-detr_sam2-hiera-b+_16xb3-50e_coco.py')


def test_real_insam_detr_configs_keep_the_papers_detector():
    """The detector of §5.1 as docs/insam_detr.md states it, in every real-weight config:
    Deformable DETR with box refinement, single stage, 300 queries, 4 levels of width 256,
    encoder 1 layer (FFN 512), decoder 6 layers (8 heads, FFN 1024), dropout 0.1; the
    token-merge MLP 1024 -> 1024 -> 256 on SAM's mask tokens; one class, focal 2 / L1 5 /
    GIoU 2 with Hungarian costs 2 / 5 / 2; AdamW 2e-4, weight decay 1e-4, clip 0.1, lr x 0.1
    on offsets and reference points; 50 epochs, step at 40."""
    for name in COCO_INSAM:
        cfg = Config.fromfile(osp.join(REPO, 'configs', 'insam_detr', name))
        m = cfg.model
        assert (m.type, m.num_queries, m.num_feature_levels, m.with_box_refine,
                m.as_two_stage) == ('InSAMDETR', 300, 4, True, False), name
        assert (m.neck.out_channels, m.neck.num_outs, m.neck.norm_cfg) == (
            256, 4, dict(type='GN', num_groups=32)), name
        enc, dec = m.encoder, m.decoder
        assert (enc.num_layers, enc.layer_cfg.ffn_cfg.feedforward_channels,
                enc.layer_cfg.ffn_cfg.ffn_drop) == (1, 512, 0.1), name
        assert (dec.num_layers, dec.layer_cfg.self_attn_cfg.num_heads,
                dec.layer_cfg.self_attn_cfg.dropout, dec.layer_cfg.ffn_cfg.feedforward_channels,
                dec.layer_cfg.ffn_cfg.ffn_drop) == (6, 8, 0.1, 1024, 0.1), name
        assert [s['type'] for s in m.reference_sources] == ['SAMMaskTokens'], name
        tm = m.token_merge
        assert (tm.type, tuple(tm.hidden_dims), tm.out_dim) == ('TokenMergeMLP', (1024, 1024),
                                                                 256), name
        head = m.bbox_head
        assert (head.type, head.num_classes, head.loss_cls.loss_weight,
                head.loss_bbox.loss_weight, head.loss_iou.loss_weight) == (
            'InContextDETRHead', 1, 2.0, 5.0, 2.0), name
        assert [c['weight'] for c in m.train_cfg.assigner.match_costs] == [2.0, 5.0, 2.0]
        opt = cfg.optim_wrapper
        assert (opt.optimizer.type, opt.optimizer.lr, opt.optimizer.weight_decay,
                opt.clip_grad.max_norm) == ('AdamW', 2e-4, 1e-4, 0.1), name
        mults = {k: v['lr_mult'] for k, v in opt.paramwise_cfg.custom_keys.items()}
        assert (mults['sampling_offsets'], mults['reference_points']) == (0.1, 0.1), name
        assert cfg.train_cfg.max_epochs == 50, name
        assert [(s['type'], s['milestones']) for s in cfg.param_scheduler] == [
            ('MultiStepLR', [40])], name
