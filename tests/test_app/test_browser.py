"""The page in a real browser (headless Chromium driven by Playwright): click a point, see the
mask, pick a class, save; the saved annotation is SAM's mask for that point, exactly, and the
pixels the page draws (the live mask, the added instance) are SAM's masks too.

Chromium comes from the system (Debian's ``chromium``, installed by
``tools/misc/install_browser.sh``), since browser downloads are not possible. With
``SAMBOX_DOCS_SCREENSHOT=1`` the test uses the pretrained toy SAM (``make demo``) and writes
the screenshot of ``docs/annotate.md``.
"""
import json
import os
import os.path as osp
import shutil
import socket
import threading
import time

import numpy as np
import pytest

from helpers import REPO
from mmsamantics.app.coco_io import decode_mask
from sam_reference import sam_masks

pytest.importorskip('uvicorn', reason='the annotation tool is the optional extra [app]')
sync_api = pytest.importorskip('playwright.sync_api', reason='the [app] extra is not installed')
CHROMIUM = shutil.which('chromium') or '/usr/bin/chromium'
pytestmark = pytest.mark.skipif(not osp.isfile(CHROMIUM), reason='no system Chromium: run '
                                'tools/misc/install_browser.sh')
CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic',
                 '--no-first-run', '--disable-background-networking',
                 '--disable-component-update', '--disable-sync']
DOCS = os.environ.get('SAMBOX_DOCS_SCREENSHOT') == '1'


# the overlay's alpha values (app.js draw()): the live candidate mask, an added instance
LIVE_ALPHA, INSTANCE_ALPHAS = 150, (110, 200)
OVERLAY_ALPHA_JS = """() => { const c = document.getElementById('overlay');
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  return [c.width, c.height, Array.from(d.filter((_, i) => i % 4 === 3))]; }"""


def _overlay_alpha(page) -> np.ndarray:
    """(H, W) alpha channel of the page's overlay canvas (drawn at the image's size)."""
    w, h, alpha = page.evaluate(OVERLAY_ALPHA_JS)
    return np.asarray(alpha, np.uint8).reshape(h, w)


def _outside_marker(shape, point) -> np.ndarray:
    """(H, W) bool: the pixels away from the prompt point's marker (a disk drawn over the
    mask with radius max(2, W / 150), anti-aliased)."""
    h, w = shape
    yy, xx = np.mgrid[:h, :w]
    r = max(2.0, w / 150) + 2
    return (xx + 0.5 - point[0]) ** 2 + (yy + 0.5 - point[1]) ** 2 > r ** 2


def _best_sam_mask(model, path, points) -> np.ndarray:
    """SAM's most confident mask (single- and multi-mask outputs) for ``points``."""
    single, s_iou = sam_masks(model, path, points)
    multi, m_iou = sam_masks(model, path, points, multimask=True)
    return np.concatenate([single, multi])[int(np.argmax(np.concatenate([s_iou, m_iou])))]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.fixture
def server(make_session, toy_root, tmp_path):
    import uvicorn
    from mmsamantics.apis import InContextInferencer
    from mmsamantics.app import AnnotationSession
    from mmsamantics.app.server import create_app
    if DOCS:  # the pretrained toy SAM on the toy world's validation images
        inf = InContextInferencer(osp.join(REPO, 'configs', 'matcher_toy.py'), device='cpu')
        session = AnnotationSession(
            osp.join(REPO, 'data', 'toy_world', 'val'), str(tmp_path / 'ann.json'), inf,
            cache_root=str(tmp_path / 'cache'), classes=['circle', 'triangle', 'square'])
    else:
        session = make_session()
    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(create_app(session.start()), host='127.0.0.1',
                                        port=port, log_level='warning'))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    for _ in range(200):
        if srv.started:
            break
        time.sleep(0.05)
    yield f'http://127.0.0.1:{port}', session
    srv.should_exit = True
    thread.join(10)
    session.job.stop()


def test_click_to_saved_sam_mask_in_chromium(server, tmp_path):
    url, session = server
    click = (150.0, 135.0) if not DOCS else (205.0, 100.0)  # DOCS: the red triangle
    click2 = (60.0, 60.0)  # DOCS: a circle
    second = session.store.categories[1]['name']
    with sync_api.sync_playwright() as p:
        # Playwright gives every launch a fresh temporary profile
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=dict(width=1100, height=700))
            page.goto(url)
            page.wait_for_selector('body[data-image="0"]', timeout=10000)
            box = page.locator('#overlay').bounding_box()
            h, w = session.folder.sizes[session.folder.names[0]]
            page.mouse.click(box['x'] + click[0] * box['width'] / w,
                             box['y'] + click[1] * box['height'] / h)
            page.wait_for_selector('#mask-status[data-ready="1"]', timeout=10000)
            assert page.locator('#mask-status').inner_text().startswith('SAM IoU ')
            page.keyboard.press('2')  # the second class
            assert page.locator('#classes li.selected').inner_text().startswith(second)
            page.keyboard.press('Enter')
            page.wait_for_selector('#instances li', timeout=10000)
            page.click('#save')
            page.wait_for_function("document.getElementById('save-status').textContent"
                                   ".startsWith('saved 1')", timeout=10000)
            # a second object, not added: the screenshot shows SAM's live mask and IoU
            page.mouse.click(box['x'] + click2[0] * box['width'] / w,
                             box['y'] + click2[1] * box['height'] / h)
            page.wait_for_selector('#mask-status[data-ready="1"]', timeout=10000)
            alpha = _overlay_alpha(page)
            shot = osp.join(REPO, 'docs', 'images', 'annotate.png') if DOCS else str(
                tmp_path / 'annotate.png')
            os.makedirs(osp.dirname(shot), exist_ok=True)
            page.screenshot(path=shot)
        finally:
            browser.close()
    assert osp.getsize(shot) > 10000
    doc = json.load(open(session.store.out_path))
    (ann,) = doc['annotations']
    cats = {c['id']: c['name'] for c in doc['categories']}
    assert cats[ann['category_id']] == second
    (prompt,) = ann['sambox']['prompts']
    (x, y, label), = prompt['points']
    assert label == 1 and abs(x - click[0]) < 1 and abs(y - click[1]) < 1
    path = session.folder.path(doc['images'][ann['image_id'] - 1]['file_name'])
    single, s_iou = sam_masks(session.segmenter.model, path, prompt['points'])
    multi, m_iou = sam_masks(session.segmenter.model, path, prompt['points'], multimask=True)
    ious = np.concatenate([s_iou, m_iou])
    assert prompt['mask_index'] == int(np.argmax(ious))  # SAM's most confident mask
    ref = np.concatenate([single, multi])[prompt['mask_index']]
    mask = decode_mask(ann['segmentation'])
    assert (mask & ref).sum() / (mask | ref).sum() == 1.0
    assert ann['sambox']['sam_iou'] == round(float(ious[prompt['mask_index']]), 4)
    # what the page shows: the added instance and the live mask of the second click, pixel
    # for pixel (the point markers aside) up to the few pixels whose logit lies at the
    # threshold (the random test SAM's masks are ragged; the page's mask comes from the
    # session's cached embedding, the reference from a fresh encoder pass)
    assert alpha.shape == mask.shape
    live = _best_sam_mask(session.segmenter.model, path, [[*click2, 1]])
    away = _outside_marker(alpha.shape, click2) & _outside_marker(alpha.shape, click)
    drawn_live = alpha == LIVE_ALPHA
    drawn_instance = np.isin(alpha, INSTANCE_ALPHAS)
    assert live[away].sum() > 1000 and (mask & ~live)[away].sum() > 100
    assert _iou(drawn_live[away], live[away]) > 0.995
    # the saved instance, exactly, where the live mask is not drawn over it
    assert np.array_equal(drawn_instance[away], (mask & ~drawn_live)[away])


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())
