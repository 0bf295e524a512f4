"""The config files: each loads and builds its model, short names are aliases of canonical
files, every canonical file names its own work_dir, no class list is restated, metafiles point
at real configs."""
import ast
import glob
import os.path as osp
import re

import pytest
import yaml
from mmengine.config import Config

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = osp.join(REPO, 'configs')
FAMILIES = ('insam_detr', 'matcher', 'samic', 'linear_probe', 'persam', 'sam3')
# test-only (training-free) families: no schedule part in their file names
TEST_ONLY = ('matcher_', 'persam_', 'sam3-exemplar_')
# short name -> canonical file (the names users type; tests and tools/demo.py use them)
ALIASES = {
    'insam_detr_coco.py': 'insam_detr/insam-detr_sam-vit-b_16xb3-50e_coco.py',
    'insam_detr_coco_novel.py': 'insam_detr/insam-detr_sam-vit-b_16xb3-50e_coco-novel-base.py',
    'insam_detr_toy.py': 'insam_detr/insam-detr_sam-tiny_1xb4-12e_toy-world.py',
    'insam_detr_toy_ref_head.py': 'insam_detr/insam-detr_sam-tiny_ref-head_1xb4-12e_toy-world.py',
    'insam_detr_toy_regions.py':
        'insam_detr/insam-detr_sam-tiny_regions_ref-head_1xb4-12e_toy-world.py',
    'insam_detr_toy_shape.py':
        'insam_detr/insam-detr_sam-tiny_regions-shape_shape-head-d4-top30_1xb4-12e_toy-world.py',
    'matcher_coco.py': 'matcher/matcher_sam-vit-h_dinov2-vit-l14_coco.py',
    'matcher_toy.py': 'matcher/matcher_sam-tiny_dinov2-tiny_toy-world.py',
    'samic_coco.py': 'samic/samic_hsnet-r50_sam-vit-b_1xb4-300e_coco-20i.py',
    'samic_toy.py': 'samic/samic_hsnet-r50_sam-tiny_1xb4-30e_toy-world.py',
    'persam_coco.py': 'persam/persam_sam-vit-h_coco.py',
    'persam_toy.py': 'persam/persam_sam-tiny_toy-world.py',
    'sam3_coco.py': 'sam3/sam3-exemplar_sam3_coco.py',
    'sam3_toy.py': 'sam3/sam3-exemplar_sam3-tiny_toy-world.py',
}
# {algo}_{backbone}[_{backbone}]_{N}xb{M}-{sched}_{dataset}[_{variant}].py; the
# training-free matcher is test-only and has no schedule part (mmdet's habit for such files)
NAME = re.compile(r'[a-z0-9-]+(_[a-z0-9+.-]+)+\.py')
SCHEDULE = re.compile(r'_\d+xb\d+-\d+e_')


def _rel(path):
    return osp.relpath(path, CONFIGS)


LEAVES = sorted(_rel(p) for p in glob.glob(osp.join(CONFIGS, '**', '*.py'), recursive=True)
                if '_base_' not in _rel(p).split(osp.sep))
CANONICAL = [p for p in LEAVES if osp.dirname(p) in FAMILIES]


@pytest.mark.parametrize('rel', LEAVES)
def test_config_loads(rel):
    cfg = Config.fromfile(osp.join(CONFIGS, rel))
    assert cfg.get('model') is not None


def _weight_entries(node):
    """``(dict, key)`` of every weight or vocabulary file a model config names: checkpoint
    paths, ``Pretrained`` init configs and SAM 3's tokenizer vocabulary."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k in ('checkpoint', 'pretrained', 'bpe_path') and isinstance(v, str):
                yield node, k
            elif k == 'init_cfg' and isinstance(v, dict) and v.get('type') == 'Pretrained':
                yield node, k
            else:
                yield from _weight_entries(v)
    elif isinstance(node, list):
        for v in node:
            yield from _weight_entries(v)


def _required_weights(model: dict) -> list:
    return sorted({node[k]['checkpoint'] if k == 'init_cfg' else node[k]
                   for node, k in _weight_entries(model)})


def _without_weights(model: dict, bpe_path: str) -> dict:
    """``model`` (a model config dict, changed in place) with every checkpoint path removed
    and the SAM 3 tokenizer pointed at a tiny vocabulary: the files do not exist here."""
    for node, k in list(_weight_entries(model)):
        node[k] = bpe_path if k == 'bpe_path' else None
    return model


def _build(cfg: Config, bpe_path: str):
    """The config's model, in its registry's scope, on the meta device (no memory, no init)
    where the model allows it; on the CPU otherwise (sam2's Hiera reads values at init)."""
    import torch
    from mmengine.registry import MODELS, DefaultScope
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'mmdet')):
        try:
            with torch.device('meta'):  # (a fresh dict: detectors update what they get)
                return MODELS.build(_without_weights(cfg.model.to_dict(), bpe_path))
        except RuntimeError as e:
            if 'meta' not in str(e):
                raise
            return MODELS.build(_without_weights(cfg.model.to_dict(), bpe_path))


def _sam_reference_shapes(preset: str) -> dict:
    """Parameter shapes of segment-anything's own image encoder for ``preset``."""
    import torch
    from segment_anything import sam_model_registry
    with torch.device('meta'):
        encoder = sam_model_registry[preset](checkpoint=None).image_encoder
    return {k: tuple(v.shape) for k, v in encoder.state_dict().items()}


@pytest.mark.parametrize('rel', LEAVES)
def test_config_builds_its_model(rel, tmp_path):
    """Every config's model builds (the real ones without their weights, on the meta
    device), and every real SAM image encoder in it has exactly the parameters of
    segment-anything's model of that size."""
    import torch
    from mmsamantics.models.backbones import SAMImageEncoder
    from mmsamantics.models.sam3 import write_tiny_bpe
    cfg = Config.fromfile(osp.join(CONFIGS, rel))
    bpe = write_tiny_bpe(str(tmp_path / 'bpe.txt.gz'))
    if cfg.model.get('type') == 'SAM3ExemplarDetector' and cfg.model.get(
            'preset', 'full') != 'tiny' and not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match='needs a CUDA GPU'):
            _build(cfg, bpe)
        return
    model = _build(cfg, bpe)
    assert sum(p.numel() for p in model.parameters()) > 0
    for m in model.modules():
        if isinstance(m, SAMImageEncoder) and m.preset != 'tiny':
            shapes = {k: tuple(v.shape) for k, v in m.encoder.state_dict().items()}
            assert shapes == _sam_reference_shapes(m.preset), (rel, m.preset)


def test_short_names_are_exactly_the_aliases():
    top = sorted(p for p in LEAVES if osp.dirname(p) == '')
    assert top == sorted(ALIASES)


@pytest.mark.parametrize('alias', sorted(ALIASES))
def test_alias_is_one_line_and_equals_its_canonical_file(alias):
    with open(osp.join(CONFIGS, alias)) as f:
        code = [ln for ln in f.read().splitlines() if ln.strip() and not ln.startswith('#')]
    assert code == [f"_base_ = './{ALIASES[alias]}'"]
    a = Config.fromfile(osp.join(CONFIGS, alias)).to_dict()
    c = Config.fromfile(osp.join(CONFIGS, ALIASES[alias])).to_dict()
    assert a == c
    # one work_dir for both names: the canonical one
    assert a['work_dir'] == './work_dirs/' + osp.splitext(osp.basename(ALIASES[alias]))[0]


@pytest.mark.parametrize('rel', CANONICAL)
def test_canonical_name_and_own_work_dir(rel):
    name = osp.basename(rel)
    assert NAME.fullmatch(name), name
    if not name.startswith(TEST_ONLY):
        assert SCHEDULE.search(name), f'{name}: no _{{N}}xb{{M}}-{{E}}e_ part'
    # set in the file itself, not inherited: a config based on another one must not write
    # into the other one's folder
    with open(osp.join(CONFIGS, rel)) as f:
        tree = ast.parse(f.read())
    assigned = {t.id for node in tree.body if isinstance(node, ast.Assign)
                for t in node.targets if isinstance(t, ast.Name)}
    assert 'work_dir' in assigned, rel
    cfg = Config.fromfile(osp.join(CONFIGS, rel))
    assert cfg.work_dir == './work_dirs/' + osp.splitext(name)[0]


def test_cli_work_dir_wins(monkeypatch):
    """tools/train.py / test.py: --work-dir, else the config's work_dir (the canonical one)."""
    from argparse import Namespace

    from mmsamantics.engine import load_tool_config, preflight
    monkeypatch.setattr(preflight, 'check_resources', lambda cfg, phase: None)  # no files
    monkeypatch.setenv('LOCAL_RANK', '0')
    for alias, canonical in (('matcher_toy.py', ALIASES['matcher_toy.py']),
                             ('insam_detr_toy.py', ALIASES['insam_detr_toy.py'])):
        args = Namespace(config=osp.join(CONFIGS, alias), launcher='none', cfg_options=None,
                         work_dir=None, local_rank=0)
        expected = './work_dirs/' + osp.splitext(osp.basename(canonical))[0]
        assert load_tool_config(args, 'test').work_dir == expected
        args.config = osp.join(CONFIGS, canonical)
        assert load_tool_config(args, 'test').work_dir == expected
        args.work_dir = 'work_dirs/elsewhere'
        assert load_tool_config(args, 'test').work_dir == 'work_dirs/elsewhere'


def _quoted_lists(tree):
    """Lengths and contents of list/tuple literals made only of string constants."""
    for node in ast.walk(tree):
        if isinstance(node, (ast.List, ast.Tuple)) and node.elts and all(
                isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.elts):
            yield [e.value for e in node.elts]


# string lists that are not class names (e.g. COCO metric items)
NOT_CLASSES = {('mAP', 'mAP_50', 'mAP_75', 'mAP_s', 'mAP_m', 'mAP_l', 'AR@100')}


@pytest.mark.parametrize('rel', sorted(
    _rel(p) for p in glob.glob(osp.join(CONFIGS, '**', '*.py'), recursive=True)))
def test_no_class_list_restated(rel):
    """Class names live in mmsamantics/datasets/class_splits.py; configs name a split."""
    with open(osp.join(CONFIGS, rel)) as f:
        tree = ast.parse(f.read())
    for names in _quoted_lists(tree):
        assert len(names) < 5 or tuple(names) in NOT_CLASSES, f'{rel}: {names[:5]}...'
    for node in ast.walk(tree):  # nor built from colour/shape words (the toy world)
        if isinstance(node, ast.ListComp):
            words = {n.value for n in ast.walk(node)
                     if isinstance(n, ast.Constant) and isinstance(n.value, str)}
            assert not words & {'red', 'circle', 'person'}, rel


def test_metafiles():
    for family in FAMILIES:
        path = osp.join(CONFIGS, family, 'metafile.yml')
        with open(path) as f:
            meta = yaml.safe_load(f)
        collections = {c['Name'] for c in meta['Collections']}
        for c in meta['Collections']:
            assert c['Paper']['URL'] and c['Paper']['Title'], (family, c['Name'])
        assert meta['Models'], family
        for m in meta['Models']:
            assert m['In Collection'] in collections, m['Name']
            assert osp.isfile(osp.join(REPO, m['Config'])), m['Config']
            assert m['Config'].startswith(f'configs/{family}/'), m['Config']
            assert 'Weights' not in m, 'no released weights: no Weights entry'
            # the files the config needs, as its checkpoint fields name them
            cfg = Config.fromfile(osp.join(REPO, m['Config']))
            assert m['Required Weights'] == _required_weights(cfg.model.to_dict()), m['Name']
            for r in m.get('Results', []):
                assert r['Task'] and r['Dataset'] and r['Metrics'], m['Name']
        assert osp.isfile(osp.join(CONFIGS, family, 'README.md')), family
