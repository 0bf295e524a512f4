"""Break the code on purpose, one behaviour at a time, and list the tests that catch it.

A test suite is only worth what it fails on. Each breakage below changes one line of a copy
of the repository (the working tree as it is, uncommitted changes included), runs the tests
meant to guard that behaviour against the copy, and reports which of them fail. A breakage
that no test catches makes the script exit 1.

    python tools/dev/breakages.py                  # all of them (~8 min on 2 CPU cores)
    python tools/dev/breakages.py --only xyxy-results resume-recomputes
    python tools/dev/breakages.py --list
    python tools/dev/breakages.py --report docs/breakages_report.md

Each breakage names the file, the exact text it replaces (found exactly once, so that a
change of the code makes the script fail loudly instead of breaking something else) and the
tests to run. The copy is imported first (``PYTHONPATH``), so the installed package is not
touched. The browser test needs the ``[app]`` extra and Chromium (tools/misc/install_browser.sh).
"""
import argparse
import os
import os.path as osp
import re
import shutil
import subprocess
import sys
import tempfile
import time
from typing import List, NamedTuple, Sequence

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SKIP = ('.git', '.venv', 'work_dirs', 'data', 'checkpoints', '__pycache__', '*.egg-info')


class Breakage(NamedTuple):
    name: str
    what: str
    path: str
    old: str
    new: str
    tests: Sequence[str]


GLOO = ('tests/test_tools/test_tools_e2e.py::'
        'test_two_process_gloo_train_and_test_match_single_process')
GUARD = ('tests/test_tools/test_reference_path_guard.py::'
         'test_every_wrong_reference_scores_clearly_lower')
BREAKAGES: List[Breakage] = [
    Breakage(
        'dist-drops-rank1', "distributed testing drops the second process's predictions",
        'mmsamantics/evaluation/in_context_coco_metric.py',
        '    def results2json(self, results: Sequence[dict], outfile_prefix: str) -> dict:',
        '    def process(self, data_batch, data_samples):\n'
        '        from mmengine.dist import get_rank\n'
        '        if get_rank() == 0:\n'
        '            super().process(data_batch, data_samples)\n\n'
        '    def results2json(self, results: Sequence[dict], outfile_prefix: str) -> dict:',
        [GLOO, 'tests/test_tools/test_matcher_e2e.py']),
    Breakage(
        'xyxy-results', "results.json boxes written xyxy instead of COCO's xywh",
        'mmsamantics/apis/outputs.py',
        'bbox=[round(x1, 2), round(y1, 2), round(x2 - x1, 2), round(y2 - y1, 2)]',
        'bbox=[round(x1, 2), round(y1, 2), round(x2, 2), round(y2, 2)]',
        ['tests/test_apis/test_coco_results.py', 'tests/test_tools/test_infer_scores.py']),
    Breakage(
        'resume-recomputes', '--resume recomputes every image (the finished ones too)',
        'mmsamantics/apis/inferencer.py',
        'self.failed, taken, done = [], set(), set(done)',
        'self.failed, taken, done = [], set(), set()',
        ['tests/test_tools/test_infer_cli.py::test_interrupted_run_resumes_to_the_same_results']),
    Breakage(
        'live-mask-not-drawn', "the annotation page never draws SAM's live mask",
        'mmsamantics/app/static/app.js',
        '  if (S.cands) paintRuns(im.data, S.cands.candidates[S.sel].runs, h, w, '
        '[30, 144, 255], 150);',
        '',
        ['tests/test_app/test_browser.py']),
    Breakage(
        'coco-100-queries', "the COCO configs' DETR has 100 queries instead of the paper's 300",
        'configs/_base_/models/insam_detr.py', '    num_queries=300,', '    num_queries=100,',
        ['tests/test_evaluation/test_paper_protocol.py']),
    # one more per component
    Breakage(
        'cyclic-is-identity', 'datasets: the cyclic control gives every class its own references',
        'mmsamantics/datasets/reference_controls.py',
        '    return {lb: labels[(i + 1) % len(labels)] for i, lb in enumerate(labels)}',
        '    return {lb: labels[i] for i, lb in enumerate(labels)}',
        ['tests/test_datasets/test_reference_controls.py', f'{GUARD}[default]']),
    Breakage(
        'iou-rule-loosened', "datasets: the authors' selection lets boxes overlap up to IoU 0.45",
        'mmsamantics/datasets/reference_selection.py',
        '    return not bool(iou.max() > max_iou)', '    return not bool(iou.max() > 0.45)',
        ['tests/test_datasets/test_reference_selection.py']),
    Breakage(
        'references-ignored', "models: InSAM-DETR gives every pair the mean class embedding",
        'mmsamantics/models/detectors/insam_detr.py',
        '            embeds = group_mean(self.token_merge(tokens), inverse, len(pairs))\n'
        '        return tokens, embeds',
        '            embeds = group_mean(self.token_merge(tokens), inverse, len(pairs))\n'
        '        return tokens, embeds.mean(0, keepdim=True).expand_as(embeds)',
        ['tests/test_models/test_dense_heads/test_reference_conditioning.py',
         f'{GUARD}[default]']),
    Breakage(
        'split-complement', 'evaluation: each class split is scored on the other classes',
        'mmsamantics/evaluation/in_context_coco_metric.py',
        '            names = [n for n in names if n in classes]',
        '            names = [n for n in classes if n not in names]',
        ['tests/test_evaluation/test_in_context_coco_metric.py']),
    Breakage(
        'stale-bank-accepted', 'structures/apis: a bank of other weights is not refused',
        'mmsamantics/structures/reference_store.py',
        '        if signature != mine:', '        if False and signature != mine:',
        ['tests/test_structures/test_reference_store.py',
         'tests/test_apis/test_inferencer.py::test_bank_round_trip_and_signature']),
    Breakage(
        'same-references-every-epoch', 'engine: the epoch hook draws epoch 0 references forever',
        'mmsamantics/engine/hooks/in_context_epoch_hook.py',
        '            dataset.set_epoch(runner.epoch)', '            dataset.set_epoch(0)',
        ['tests/test_engine/test_in_context_epoch_hook.py']),
    Breakage(
        'first-candidate', "app: a click keeps SAM's first candidate mask, not the most confident",
        'mmsamantics/app/session.py',
        '        k = int(np.argmax(ious)) if k is None else int(k)',
        '        k = 0 if k is None else int(k)',
        ['tests/test_app/test_server.py', 'tests/test_app/test_browser.py']),
]


def _copy(dst: str) -> str:
    shutil.copytree(REPO, dst, ignore=shutil.ignore_patterns(*SKIP), symlinks=True)
    return dst


def _apply(root: str, b: Breakage) -> None:
    path = osp.join(root, b.path)
    with open(path) as f:
        text = f.read()
    n = text.count(b.old)
    if n != 1:
        raise SystemExit(f'{b.name}: the text to replace occurs {n} times in {b.path} '
                         '(expected once): update the breakage to the current code')
    with open(path, 'w') as f:
        f.write(text.replace(b.old, b.new))


def _failing(root: str, tests: Sequence[str], timeout: int) -> List[str]:
    """Node ids of the tests (in ``root``) that fail or error."""
    env = dict(os.environ, PYTHONPATH=root)
    p = subprocess.run([sys.executable, '-m', 'pytest', *tests, '-q', '-rfE',
                        '-p', 'no:cacheprovider'], cwd=root, env=env, capture_output=True,
                       text=True, timeout=timeout)
    failed = re.findall(r'^(?:FAILED|ERROR) (\S+)', p.stdout, re.M)
    if p.returncode not in (0, 1) and not failed:
        raise SystemExit(f'pytest could not run {tests} (exit {p.returncode}):\n'
                         f'{p.stdout[-2000:]}{p.stderr[-2000:]}')
    return failed


def _check_import(root: str) -> None:
    """The copy's package is the one imported (not the installed one)."""
    code = 'import mmsamantics; print(mmsamantics.__file__)'
    out = subprocess.run([sys.executable, '-c', code], cwd=root, capture_output=True,
                         env=dict(os.environ, PYTHONPATH=root), text=True,
                         check=True).stdout.strip()
    if not out.startswith(root):
        raise SystemExit(f'the copy is not imported first ({out}): run from an environment '
                         'where PYTHONPATH takes precedence over the installed package')


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--only', nargs='+', metavar='NAME', help='run only these breakages')
    p.add_argument('--list', action='store_true', help='list the breakages and exit')
    p.add_argument('--report', help='also write the table (markdown) to this file')
    p.add_argument('--timeout', type=int, default=1200, help='seconds per breakage')
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    chosen = [b for b in BREAKAGES if not args.only or b.name in args.only]
    unknown = set(args.only or ()) - {b.name for b in BREAKAGES}
    if unknown:
        raise SystemExit(f'unknown breakage(s) {sorted(unknown)}; --list shows them')
    if args.list:
        for b in chosen:
            print(f'{b.name}: {b.what} ({b.path})')
        return 0
    rows, uncaught = ['| breakage | tests that fail |', '|---|---|'], []
    for b in chosen:
        t0 = time.time()
        with tempfile.TemporaryDirectory(prefix=f'breakage-{b.name}-') as tmp:
            root = _copy(osp.join(tmp, 'repo'))
            _check_import(root)
            _apply(root, b)
            failed = _failing(root, b.tests, args.timeout)
        print(f'{b.name} ({time.time() - t0:.0f} s): '
              f'{len(failed)} failing: {", ".join(failed) or "NONE"}', flush=True)
        rows.append(f'| {b.what} (`{b.name}`) | '
                    f'{"<br>".join(f"`{t}`" for t in failed) or "**none**"} |')
        if not failed:
            uncaught.append(b.name)
    table = '\n'.join(rows)
    print('\n' + table)
    if args.report:
        with open(args.report, 'w') as f:
            f.write(table + '\n')
    if uncaught:
        print(f'\nno test catches: {", ".join(uncaught)}')
    return 1 if uncaught else 0


if __name__ == '__main__':
    sys.exit(main())
