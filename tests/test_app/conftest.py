"""Fixtures of the annotation-tool tests: a small folder (3 toy images, a corrupt file, a
text file) and the toy matcher with a seeded random tiny SAM, built once."""
import os.path as osp
import shutil

import pytest

APP_IMAGES = ('000000.png', '000001.png', '000002.png')


@pytest.fixture(scope='session')
def app_inferencer(toy_root):
    import torch
    from helpers import matcher_cfg
    from mmsamantics.apis import InContextInferencer
    torch.manual_seed(0)  # the random SAM's weights, hence every mask, are fixed
    return InContextInferencer(matcher_cfg(toy_root), device='cpu')


@pytest.fixture
def app_folder(toy_root, tmp_path):
    folder = tmp_path / 'images'
    folder.mkdir()
    for name in APP_IMAGES:
        shutil.copy(osp.join(toy_root, 'val', name), folder / name)
    (folder / 'broken.png').write_bytes(b'not a png')
    (folder / 'notes.txt').write_text('not an image')
    return str(folder)


@pytest.fixture
def make_session(app_folder, app_inferencer, tmp_path):
    from mmsamantics.app import AnnotationSession

    def make(out=None, folder=None, **kwargs):
        kwargs.setdefault('classes', ['circle', 'square'])
        kwargs.setdefault('report', lambda done, total, name: None)
        return AnnotationSession(folder or app_folder, out or str(tmp_path / 'ann.json'),
                                 app_inferencer, cache_root=str(tmp_path / 'cache'), **kwargs)
    return make
