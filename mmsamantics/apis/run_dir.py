"""The output folder of an inference run: checked first, streamed to, resumable, atomic.

Layout of ``OUT``:

- ``run.json``: the settings that decide the results (config, checkpoint, references,
  thresholds, the image list..., paths resolved), written once the first image is done;
  ``--resume`` refuses a run whose settings differ. A run that fails before its first
  image (a model that cannot be built, a bank refused) removes what it created, so the
  folder is free again;
- ``results.jsonl``: one line per input image, appended (and flushed) as soon as the
  image is done: ``{"index", "file", "path", "image_id", "height", "width",
  "detections": [COCO results]}`` or ``{"index", "file", "path", "skipped": reason}``.
  A run that stops (Ctrl-C, a crash, a full disk) keeps every finished image; a torn last
  line is dropped on resume. A ``{"meta": {...}}`` line (classes, category ids, number of
  references) precedes the images of each session;
- ``results.json``, ``images.json``, ``summary.json``: written from ``results.jsonl`` at
  the end, each atomically (a temporary file, then ``os.replace``), so a file either is
  complete or does not exist. They are removed when a run starts, so they never describe
  another run than the one beside them;
- ``vis/``: pictures.
"""
import json
import os
import os.path as osp
import shutil
from typing import Dict, List, Optional, Sequence

from ..utils.files import ensure_writable_folder, write_json_atomic

RECORDS = 'results.jsonl'
SETTINGS = 'run.json'
FINAL = ('results.json', 'images.json', 'summary.json')
OUTPUTS = (RECORDS, SETTINGS) + FINAL + ('vis',)


def prepare_out_dir(out_dir: str, resume: bool = False, overwrite: bool = False) -> List[str]:
    """Check ``out_dir`` before any work: a writable folder, free unless told otherwise.

    Args:
        out_dir: the folder (created if missing).
        resume: continue the run whose outputs are there.
        overwrite: delete the outputs of an earlier run (``vis/`` included); other files
            in the folder are left alone.

    Returns:
        The names of earlier outputs found (before ``overwrite`` deleted them).

    Raises:
        ValueError: ``out_dir`` is a file, cannot be created or written, or holds the
            outputs of a run and neither ``resume`` nor ``overwrite`` is given.
    """
    if resume and overwrite:
        raise ValueError('give at most one of --resume and --overwrite')
    ensure_writable_folder(out_dir, f'--out-dir {out_dir!r}')
    found = [n for n in OUTPUTS if osp.lexists(osp.join(out_dir, n))]
    if found and not (resume or overwrite):
        raise ValueError(f'--out-dir {out_dir!r} holds the outputs of an earlier run '
                         f'({", ".join(found)}): add --resume to continue it, --overwrite to '
                         'replace them, or give another folder')
    if overwrite:
        _remove(out_dir, found)
    return found


def _remove(out_dir: str, names: Sequence[str]) -> None:
    """Delete the files and folders ``names`` of ``out_dir`` (a link, not its target)."""
    for n in names:
        p = osp.join(out_dir, n)
        shutil.rmtree(p) if osp.isdir(p) and not osp.islink(p) else os.remove(p)


def _short(value, n: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= n else text[:n - 3] + '...'


def check_settings(out_dir: str, settings: dict, resume: bool) -> None:
    """On ``resume``, refuse ``settings`` that differ from those in ``run.json`` (paths are
    compared resolved, as :func:`resolved` writes them)."""
    path = osp.join(out_dir, SETTINGS)
    if resume and osp.isfile(path):
        with open(path) as f:
            old = json.load(f)
        diff = [f'{k}: {_short(old.get(k))} -> {_short(settings.get(k))}'
                for k in sorted(set(old) | set(settings)) if old.get(k) != settings.get(k)]
        if diff:
            raise ValueError(f'--resume: these settings differ from the run in {out_dir!r}, '
                             f'whose results would be mixed with others: {"; ".join(diff[:5])}.'
                             ' Repeat its command, or use --overwrite to start again.')


def resolved(path: Optional[str]) -> Optional[str]:
    """``path`` absolute, links and ``..`` resolved (None stays None): one spelling per file,
    whatever folder the command ran from."""
    return None if path is None else osp.realpath(path)


def write_settings(out_dir: str, settings: dict) -> None:
    """Write ``run.json`` unless it is there (a resumed run keeps the first one)."""
    path = osp.join(out_dir, SETTINGS)
    if not osp.isfile(path):
        write_json_atomic(path, settings, indent=1)


def remove_new_outputs(out_dir: str, kept: Sequence[str]) -> List[str]:
    """Delete the outputs in ``out_dir`` that are not in ``kept`` (those found before the
    run): what a run that failed before its first image created. Returns their names."""
    gone = [n for n in OUTPUTS if n not in kept and osp.lexists(osp.join(out_dir, n))]
    _remove(out_dir, gone)
    return gone


class RecordStream:
    """``results.jsonl``: read what an earlier run finished, append as images are done."""

    def __init__(self, out_dir: str) -> None:
        self.path = osp.join(out_dir, RECORDS)
        self.meta: dict = {}  # the last meta line read or written
        self._f = None

    def read(self) -> Dict[int, dict]:
        """{input index: record} of the finished images; a torn last line is cut off."""
        if not osp.isfile(self.path):
            return {}
        records, good = {}, 0
        with open(self.path, 'rb') as f:
            for line in f:
                if not line.endswith(b'\n'):
                    break  # the line being written when the run stopped
                try:
                    rec = json.loads(line)
                except ValueError:
                    break
                if 'meta' in rec:
                    self.meta = rec['meta']
                else:
                    records[int(rec['index'])] = rec
                good += len(line)
        if good != os.path.getsize(self.path):
            with open(self.path, 'r+b') as f:
                f.truncate(good)
        return records

    def append(self, record: dict) -> None:
        """Write one record as a line, flushed to the OS at once."""
        if self._f is None:
            self._f = open(self.path, 'a')
        self._f.write(json.dumps(record) + '\n')
        self._f.flush()
        if 'meta' in record:
            self.meta = record['meta']

    def close(self) -> None:
        if self._f is not None:
            os.fsync(self._f.fileno())
            self._f.close()
            self._f = None


def remove_final(out_dir: str) -> None:
    """Delete the final files of an earlier (complete) run before new work starts."""
    for n in FINAL:
        if osp.isfile(osp.join(out_dir, n)):
            os.remove(osp.join(out_dir, n))


def write_final(out_dir: str, records: Dict[int, dict], category_ids: Dict[str, int],
                summary: dict) -> None:
    """``results.json``, ``images.json`` and ``summary.json`` from the records, in input
    order, each written atomically."""
    recs = [records[i] for i in sorted(records)]
    done = [r for r in recs if 'skipped' not in r]
    write_json_atomic(osp.join(out_dir, 'results.json'),
                      [d for r in done for d in r['detections']])
    write_json_atomic(osp.join(out_dir, 'images.json'), dict(
        images=[dict(id=r['image_id'], file_name=r['file'], height=r['height'],
                     width=r['width']) for r in done],
        annotations=[],
        categories=[dict(id=int(c), name=n) for n, c in category_ids.items()]))
    summary = dict(summary, images=len(done),
                   detections=sum(len(r['detections']) for r in done),
                   skipped=len(recs) - len(done),
                   skipped_files=[dict(file=r['path'], reason=r['skipped'])
                                  for r in recs if 'skipped' in r])
    write_json_atomic(osp.join(out_dir, 'summary.json'), summary, indent=1)
