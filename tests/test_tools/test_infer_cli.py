"""tools/infer.py under real-world inputs: interrupted and resumed runs, bad inputs refused
before the model is built, extreme and unreadable images, reference files that share a
name, and the README's API example run as written."""
import json
import logging
import os
import os.path as osp
import re
import shutil
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
from mmengine.logging import MMLogger

from helpers import (REPO, TOY_CONFIG, load_tool, random_toy_checkpoint, toy_cfg, toy_overrides,
                     write_train_refs)

cli = load_tool('tools/infer.py')


@pytest.fixture(scope='module')
def ckpt(toy_root, tmp_path_factory):
    """A full detector checkpoint with random weights (SAM included)."""
    return random_toy_checkpoint(toy_root, str(tmp_path_factory.mktemp('ckpt') / 'model.pth'))


@pytest.fixture(scope='module')
def setup(toy_root, ckpt, tmp_path_factory):
    """(argv without --out-dir, reference file, image folder) of a small run."""
    tmp = tmp_path_factory.mktemp('infer_cli')
    ref_file = tmp / 'refs.json'
    write_train_refs(toy_root, str(ref_file), num_classes=2, shots=2)
    imgs = tmp / 'imgs'
    imgs.mkdir()
    for p in sorted(os.listdir(osp.join(toy_root, 'val')))[:6]:
        shutil.copy(osp.join(toy_root, 'val', p), imgs / p)
    cv2.imwrite(str(imgs / 'thin.png'), np.zeros((3, 4000, 3), np.uint8))  # a 3 x 4000 strip
    (imgs / 'anim.gif').write_bytes(b'GIF89a')
    opts = [f'{k}={v}' for k, v in toy_overrides(toy_root).items()]
    argv = [TOY_CONFIG, ckpt, '--refs', str(ref_file), '--ref-img-dir',
            osp.join(toy_root, 'train'), '--img-dir', str(imgs), '--score-thr', '0', '--vis',
            '--device', 'cpu', '--batch-size', '3', '--no-progress', '--cfg-options', *opts]
    return argv, ref_file, imgs


@pytest.fixture
def python_sigint():
    """Python's own Ctrl-C handler during the test, also when the suite was started in the
    background of a non-interactive shell, which starts it with SIGINT ignored."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def _interrupt_after(monkeypatch, n_images: int) -> None:
    """Send this process SIGINT (Ctrl-C) once ``n_images`` results are on disk."""
    from mmsamantics.apis.run_dir import RecordStream
    append, seen = RecordStream.append, []

    def append_then_interrupt(self, record):
        append(self, record)
        if 'meta' not in record:
            seen.append(record)
        if len(seen) == n_images:
            signal.raise_signal(signal.SIGINT)
    monkeypatch.setattr(RecordStream, 'append', append_then_interrupt)


def test_interrupted_run_resumes_to_the_same_results(setup, tmp_path, monkeypatch, capsys,
                                                     python_sigint):
    argv, _, imgs = setup
    full, part = tmp_path / 'full', tmp_path / 'part'
    assert cli.main(argv + ['--out-dir', str(full)]) == 0
    _interrupt_after(monkeypatch, 4)  # mid-batch: batches are 3 images
    assert cli.main(argv + ['--out-dir', str(part)]) == 130
    err = capsys.readouterr().err
    assert 'Traceback' not in err
    line = [ln for ln in err.splitlines() if ln.startswith('interrupted')]
    assert line == [f'interrupted: 4 images done, kept in {part}/results.jsonl; continue with: '
                    f'{cli.resume_command(argv + ["--out-dir", str(part)])}']
    assert line[0].endswith(' --resume')
    assert not (part / 'results.json').exists()  # no complete-looking file of a partial run
    assert len((part / 'results.jsonl').read_text().splitlines()) == 1 + 4  # meta + images
    monkeypatch.undo()
    from mmsamantics.models import InSAMDETR
    predicted, predict = [], InSAMDETR.predict

    def counting(self, inputs, samples, *args, **kwargs):
        predicted.extend(ds.metainfo['img_path'] for ds in samples)
        return predict(self, inputs, samples, *args, **kwargs)
    monkeypatch.setattr(InSAMDETR, 'predict', counting)
    assert cli.main(argv + ['--out-dir', str(part), '--resume']) == 0
    monkeypatch.undo()
    # the resumed run ran the model only on the batch that was cut (3 images, kept whole so
    # that the results equal an uninterrupted run's): never on the first, finished batch
    order = sorted(p for p in os.listdir(imgs) if p.endswith('.png') and p != 'thin.png')
    assert [osp.basename(p) for p in predicted] == order[3:6]
    for name in ('results.json', 'images.json'):
        assert (part / name).read_bytes() == (full / name).read_bytes()
    assert sorted(os.listdir(part / 'vis')) == sorted(os.listdir(full / 'vis'))
    summary = json.loads((part / 'summary.json').read_text())
    assert summary['images'] == 6 and summary['references'] == 4
    # the thin strip is skipped with its reason, the GIF is mentioned: neither is silent
    assert [(osp.basename(s['file']), s['reason'].split(':')[0])
            for s in summary['skipped_files']] == [('thin.png', 'too thin for the model')]
    assert [osp.basename(s['file']) for s in summary['not_read']] == ['anim.gif']
    # a second run into the same folder is refused (--overwrite: test_infer_inputs.py)
    assert cli.main(argv + ['--out-dir', str(part)]) == 2
    assert 'holds the outputs of an earlier run' in capsys.readouterr().err
    # --resume with other settings than the run on disk
    assert cli.main(argv + ['--out-dir', str(part), '--resume', '--score-thr', '0.5']) == 2
    err = capsys.readouterr().err
    assert 'these settings differ' in err and 'score_thr: 0.0 -> 0.5.' in err


def _bad_cases(setup, tmp):
    argv, ref_file, imgs = setup
    a_file = tmp / 'file'
    a_file.write_text('x')
    not_bank = tmp / 'bank.pth'
    not_bank.write_text('not a bank')
    doc = json.loads(ref_file.read_text())
    outside = json.loads(json.dumps(doc))
    outside['annotations'][1]['bbox'] = [5000, 5000, 100, 100]
    as_text = json.loads(json.dumps(doc))
    as_text['annotations'][0]['bbox'] = '1 2 3 4'
    files = {}
    for name, d in (('outside', outside), ('text', as_text)):
        files[name] = tmp / f'{name}.json'
        files[name].write_text(json.dumps(d))
    used = tmp / 'used'
    used.mkdir()
    (used / 'results.jsonl').write_text('')
    with_refs = argv[:argv.index('--refs')]
    after_refs = argv[argv.index('--img-dir'):]
    copy = imgs.parent / 'copy'  # beside imgs/: the names are imgs/X and copy/X
    copy.mkdir(exist_ok=True)
    first = sorted(os.listdir(imgs))[0]
    shutil.copy(imgs / first, copy / first)
    big = json.loads(json.dumps(doc))  # declares twice the real size of its images
    for im in big['images']:
        im.update(height=2 * im['height'], width=2 * im['width'])
    im = next(i for i in doc['images'] if i['id'] == big['annotations'][0]['image_id'])
    big['annotations'][0]['bbox'] = [im['width'] + 10, im['height'] + 10, 20, 20]
    files['big'] = tmp / 'big.json'
    files['big'].write_text(json.dumps(big))
    gt = tmp / 'gt.json'
    gt.write_text(json.dumps(dict(images=[dict(id=1, file_name=first)])))
    out = ['--out-dir', str(tmp / 'out')]
    return [
        (argv + ['--out-dir', str(a_file)], 'is a file'),
        (argv + out + ['--image-ids-from', str(tmp / 'none.json')],
         '--image-ids-from file not found'),
        (with_refs + ['--bank', str(not_bank)] + after_refs[:2] + out, 'is not a reference bank'),
        (argv + ['--out-dir', str(used)], 'holds the outputs of an earlier run'),
        (argv + out + ['--classes', 'purple hexagon'], "have no reference in"),
        (with_refs + ['--refs', str(files['outside'])] + argv[argv.index('--ref-img-dir'):] + out,
         f"annotation {outside['annotations'][1]['id']}, field 'bbox'"),
        (with_refs + ['--refs', str(files['text'])] + argv[argv.index('--ref-img-dir'):] + out,
         "field 'bbox': must be 4 numbers"),
        (argv[:argv.index('--img-dir')] + ['--images', str(imgs / first), str(copy / first),
                                           '--image-ids-from', str(gt)] + out,
         f'imgs/{first} and copy/{first} both match'),
        (with_refs + ['--refs', str(files['big'])] + argv[argv.index('--ref-img-dir'):] + out,
         f"lies fully outside its {im['width']}x{im['height']} image"),
        (argv + out + ['--save-bank', '/proc/nope/bank.pth'],
         "--save-bank '/proc/nope/bank.pth' cannot be written"),
    ]


def test_bad_inputs_fail_before_the_model(setup, tmp_path, monkeypatch, capsys):
    def no_model(*args, **kwargs):
        raise AssertionError('the model was built before the inputs were checked')
    monkeypatch.setattr(cli, 'build', no_model)
    for argv, msg in _bad_cases(setup, tmp_path):
        assert cli.main(argv) == 2, msg
        err = capsys.readouterr().err
        assert err.startswith('error: ') and msg in err and 'Traceback' not in err, (msg, err)
    # option ranges: argparse's one-line errors
    argv = setup[0] + ['--out-dir', str(tmp_path / 'o')]
    for opt, msg in ((['--max-dets', '-1'], '--max-dets must be >= 1, got -1'),
                     (['--shots', '0'], '--shots must be >= 1, got 0'),
                     (['--score-thr', '2'], '--score-thr must be in [0, 1]'),
                     (['--resume', '--overwrite'], 'not allowed with argument')):
        with pytest.raises(SystemExit) as e:
            cli.main(argv + opt)
        assert e.value.code == 2 and msg in capsys.readouterr().err
    # a run that fails before its first image leaves nothing that blocks the next run
    part = tmp_path / 'p'
    for _ in range(2):  # the second run is not refused as "holds the outputs of a run"
        with pytest.raises(AssertionError, match='the model was built'):
            cli.main(setup[0] + ['--out-dir', str(part)])
        assert os.listdir(part) == []  # vis/ (made by the checks) removed, no run.json


def test_a_trained_model_needs_its_checkpoint(setup, ckpt, tmp_path, capsys):
    """No checkpoint: refused in one line (nothing left in --out-dir); --random-weights runs
    the smoke test. With --classes, the output lists only the classes asked for."""
    argv, _, imgs = setup
    argv = [a for a in argv if a != ckpt]
    out = tmp_path / 'out'
    assert cli.main(argv + ['--out-dir', str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith('error: no checkpoint given for InSAMDETR, whose ') and \
        '--random-weights' in err[-1], err
    assert os.listdir(out) == []
    i = argv.index('--img-dir')
    one = argv[:i] + ['--images', str(imgs / 'thin.png'),
                      sorted(map(str, imgs.glob('0*.png')))[0]] + argv[i + 2:]
    cls = json.loads(setup[1].read_text())['categories'][0]['name']
    logger, logged = MMLogger.get_current_instance(), []
    handler = logging.Handler()
    handler.emit = lambda record: logged.append(record.getMessage())
    logger.addHandler(handler)
    try:
        assert cli.main(one + ['--out-dir', str(out), '--random-weights', '--classes',
                               cls]) == 0
    finally:
        logger.removeHandler(handler)
    images = json.loads((out / 'images.json').read_text())
    assert [c['name'] for c in images['categories']] == [cls]
    assert json.loads((out / 'summary.json').read_text())['classes'] == [cls]
    # the skipped image: once, with a reason that fits a folder of images
    io = capsys.readouterr()
    said = [ln for ln in (io.out + io.err).splitlines() + logged if 'thin.png' in ln]
    assert len(said) == 1 and 'too thin for the model' in said[0], said


def test_resume_compares_resolved_paths(setup, toy_root, monkeypatch):
    """The same folder spelled relative or absolute is the same setting."""
    argv = setup[0] + ['--out-dir', 'o']
    absolute = cli.run_settings(cli.parse_args(argv), [], [])
    monkeypatch.chdir(osp.dirname(toy_root))
    rel = list(argv)
    rel[rel.index('--ref-img-dir') + 1] = osp.join(osp.basename(toy_root), 'train')
    assert cli.run_settings(cli.parse_args(rel), [], []) == absolute


def test_help_shows_the_defaults(capsys):
    with pytest.raises(SystemExit):
        cli.main(['--help'])
    text = ' '.join(capsys.readouterr().out.split())
    for opt, default in (('--batch-size', 4), ('--score-thr', 0.3), ('--max-dets', 100),
                         ('--vis-score-thr', 0.3), ('--max-megapixels', 250)):
        assert re.search(rf'{opt} \S+ [^-]*\(default: {default}\b', text), opt


def test_reference_files_with_one_name_combine(setup, toy_root, ckpt, tmp_path):
    from mmsamantics.apis import InContextInferencer
    _, ref_file, _ = setup
    for d in ('a', 'b'):
        (tmp_path / d).mkdir()
        shutil.copy(ref_file, tmp_path / d / 'refs.json')
    logger, kept = MMLogger.get_current_instance(), []
    handler = logging.Handler()
    handler.emit = lambda record: kept.append(record.getMessage())
    logger.addHandler(handler)
    try:
        inf = InContextInferencer(toy_cfg(toy_root), ckpt, device='cpu')
    finally:
        logger.removeHandler(handler)
    assert not [m for m in kept if 'init_weights' in m]  # ~1,300 INFO lines, hidden
    train = osp.join(toy_root, 'train')
    a = inf.add_references_from_coco(str(tmp_path / 'a' / 'refs.json'), train)
    b = inf.add_references_from_coco(str(tmp_path / 'b' / 'refs.json'), train)
    assert len(inf.references) == 8 and len({r.key for r in a + b}) == 8
    assert b[0].key == f'{tmp_path}/b/refs.json:{b[0].key.rsplit(":", 1)[1]}'
    with pytest.raises(ValueError, match='already registered'):
        inf.add_references_from_coco(str(tmp_path / 'a' / 'refs.json'), train)
    with pytest.raises(ValueError, match='fully outside its'):
        inf.add_reference(a[0].source, 'red circle', box=[5000, 5000, 5100, 5100])
    with pytest.raises(ValueError, match='max_dets must be an integer >= 1, got -1'):
        inf(a[0].source, max_dets=-1, show_progress=False)


def _python_block(path: str) -> str:
    """The first ```python block of a Markdown file that builds an InContextInferencer."""
    with open(path) as f:
        blocks = re.findall(r'```python\n(.*?)```', f.read(), re.S)
    return next(b for b in blocks if 'InContextInferencer(' in b)


@pytest.mark.parametrize('doc', ['docs/inference.md'])  # README's: test_readme_api.py
def test_api_example_runs_as_written(doc, toy_root, ckpt, tmp_path, monkeypatch):
    """The example, in a folder holding the files it names (toy images), with the toy model
    for the trained one (the same class, other weights)."""
    import mmsamantics.apis as apis
    val = sorted(os.listdir(osp.join(toy_root, 'val')))
    train = osp.join(toy_root, 'train', sorted(os.listdir(osp.join(toy_root, 'train')))[0])
    for name in ('ref1.png', 'ref2.png'):
        cv2.imwrite(str(tmp_path / name), cv2.resize(cv2.imread(train), (320, 240)))
    (tmp_path / 'refs').mkdir()
    (tmp_path / 'photos').mkdir()
    cv2.imwrite(str(tmp_path / 'refs' / 'kitchen.jpg'), cv2.resize(cv2.imread(train), (640, 480)))
    for v in val[:2]:
        shutil.copy(osp.join(toy_root, 'val', v), tmp_path / 'photos' / v)
    (tmp_path / 'refs.json').write_text(json.dumps(dict(
        images=[dict(id=1, file_name='kitchen.jpg', height=480, width=640)],
        annotations=[dict(id=1, image_id=1, category_id=7, bbox=[120, 80, 60, 90]),
                     dict(id=2, image_id=1, category_id=7, bbox=[300, 95, 58, 85])],
        categories=[dict(id=7, name='mug')])))
    model = apis.InContextInferencer(toy_cfg(toy_root), ckpt, device='cpu')
    made = []

    def toy_inferencer(config, checkpoint=None, **kwargs):
        assert osp.isfile(osp.join(REPO, config)) and kwargs == dict(device='cpu')
        model.clear_references()
        made.append(model)
        return model
    monkeypatch.setattr(apis, 'InContextInferencer', toy_inferencer)
    monkeypatch.chdir(tmp_path)
    mask = np.zeros((240, 320), np.uint8)
    mask[50:120, 60:150] = 255
    cv2.imwrite('mug_mask.png', mask)
    # the names an older example used without defining them
    scope = dict(img_bgr=cv2.imread('ref1.png'), mug_mask=mask > 0, print=lambda *a: None)
    exec(_python_block(osp.join(REPO, doc)), scope)
    inf = made[0]
    assert dict(inf.category_ids) == {'mug': 7, 'kettle': 2}  # the file's id for mug wins
    assert len(inf.references) == 5 and len(scope['results']) == 2
    assert sorted(os.listdir('vis')) == sorted(v[:-4] + '.png' for v in val[:2])
    assert osp.isfile('bank.pth')


@pytest.mark.e2e
def test_ctrl_c_in_a_subprocess(setup, tmp_path):
    """A real Ctrl-C (SIGINT from outside) ends with one line and keeps the results."""
    argv, _, imgs = setup
    many = tmp_path / 'many'
    many.mkdir()
    for k in range(6):
        for p in sorted(os.listdir(imgs)):
            if p.endswith('.png') and p != 'thin.png':
                shutil.copy(imgs / p, many / f'{k}_{p}')
    out = tmp_path / 'out'
    cmd = [sys.executable, 'tools/infer.py'] + argv + ['--out-dir', str(out)]
    cmd[cmd.index('--img-dir') + 1] = str(many)
    cmd[cmd.index('--batch-size') + 1] = '1'
    cmd.remove('--vis')
    # SIGINT at its default in the child, so that Python turns it into KeyboardInterrupt even
    # when this suite runs with SIGINT ignored (started with & from a non-interactive shell)
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1'),
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    records = out / 'results.jsonl'
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None and not (
            records.exists() and records.read_text().count('"index"') >= 1):
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stdout[-1000:] + stderr[-2000:]
    assert 'Traceback' not in stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith('interrupted: ') and last.endswith('--resume')
    done = records.read_text().count('"index"')
    assert f'interrupted: {done} images done' in last and 0 < done < 36
