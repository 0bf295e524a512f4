"""The README's Python API block, run as written in what a fresh clone holds after
``make demo`` (the configs, the toy SAM's weights, the demo detector, the toy world and its
reference sets), from that folder: not the repository this test runs from."""
import os
import os.path as osp
import re
import shutil

import torch

from helpers import REPO, load_tool, trained_checkpoint


def _readme_block() -> str:
    with open(osp.join(REPO, 'README.md')) as f:
        blocks = re.findall(r'```python\n(.*?)```', f.read(), re.S)
    (block,) = [b for b in blocks if 'InContextInferencer(' in b]
    return block


def _after_make_demo(root: str, toy_root: str) -> None:
    """The files ``make demo`` leaves that the block reads, under ``root``; the trained
    fixture stands for the demo's detector and its SAM for the pretrained toy SAM."""
    shutil.copytree(osp.join(REPO, 'configs'), osp.join(root, 'configs'))
    state = torch.load(trained_checkpoint(), map_location='cpu', weights_only=True)
    state = state['state_dict']
    sam = {'image_encoder.' + k[len('backbone.encoder.'):]: v.float()
           for k, v in state.items() if k.startswith('backbone.encoder.')}
    sam.update({k[len('mask_head.decoder.'):]: v.float()
                for k, v in state.items() if k.startswith('mask_head.decoder.')})
    os.makedirs(osp.join(root, 'checkpoints'))
    torch.save(sam, osp.join(root, 'checkpoints', 'sam_tiny_toy.pth'))
    os.makedirs(osp.join(root, 'work_dirs', 'demo'))
    shutil.copy(trained_checkpoint(), osp.join(root, 'work_dirs', 'demo', 'epoch_12.pth'))
    toy = osp.join(root, 'data', 'toy_world')
    shutil.copytree(toy_root, toy)
    load_tool('tools/misc/make_reference_sets.py').main([
        osp.join(toy, 'annotations', 'instances_train.json'), '--out-dir',
        osp.join(toy, 'refs'), '--seeds', '42', '--max-shots', '5', '--min-area', '256',
        '--border', '4'])


def test_readme_api_block_runs_as_written_after_make_demo(toy_root, tmp_path, monkeypatch):
    clone = str(tmp_path / 'clone')
    _after_make_demo(clone, toy_root)
    monkeypatch.chdir(clone)
    scope = dict(print=lambda *a: None)
    exec(_readme_block(), scope)
    inf, results = scope['inf'], scope['results']
    val = sorted(os.listdir(osp.join(toy_root, 'val')))
    assert [osp.basename(r['img_path']) for r in results] == val
    assert sorted(os.listdir('vis')) == val and osp.isfile('bank.pth')
    assert 'my shape' in inf.classes and 'red circle' in inf.classes
    assert sum(1 for r in inf.references if r.class_name == 'my shape') == 3
    # the demo's detector finds the toy classes of its reference sets
    found = {lb for r in results for lb, s in zip(r['labels'], r['scores']) if s >= 0.3}
    assert len(found - {'my shape'}) >= 3, found
