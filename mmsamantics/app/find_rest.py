""""Find the rest": annotated instances as references for an in-context model, its detections
as proposals in a review queue.

This closes the SAMIC workflow (the SAMIC paper's SAMBOX annotates a few examples; the
in-context model finds the other instances of the class) into a loop: pick annotated
instances as references, run a chosen in-context model of the plugin (InSAM-DETR with its
checkpoint, the training-free matcher, SAMIC) through :class:`InContextInferencer` on the
folder, then accept (it becomes an annotation), reject, or fix a proposal with clicks.
Proposals that overlap an existing annotation of the image (mask IoU >= ``dedup_iou``) are
dropped: the reference itself and what is already annotated are not "the rest".
"""
import threading
import time
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..apis import InContextInferencer
from .annotation_store import AnnotationStore
from .coco_io import decode_mask

DEDUP_IOU = 0.5


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two (H, W) bool masks (0 when both are empty)."""
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 0.0


class FindTheRest:
    """The in-context models a user can run, and the review queue of their proposals.

    Args:
        store: the annotations (references come from it, accepted proposals go to it).
        models: name -> (config, checkpoint or None) of the in-context models offered; each
            is built on first use.
        loaded: name -> an already built :class:`InContextInferencer` (the tool's own model).
        device: device of the models built here.
    """

    def __init__(self, store: AnnotationStore,
                 models: 'OrderedDict[str, Tuple[str, Optional[str]]]',
                 loaded: Optional[Dict[str, InContextInferencer]] = None,
                 device: Optional[str] = None) -> None:
        self.store = store
        self.models = OrderedDict(models)
        self._loaded: Dict[str, InContextInferencer] = dict(loaded or {})
        for name in self._loaded:
            self.models.setdefault(name, ('<loaded>', None))
        self.device = device
        self.proposals: 'OrderedDict[int, dict]' = OrderedDict()
        self._next = 1
        self._lock = threading.RLock()
        self._run_lock = threading.Lock()
        self.status = dict(state='idle', model=None, error=None, proposals=0, seconds=None)

    def model_names(self) -> List[str]:
        return list(self.models)

    def inferencer(self, name: str) -> InContextInferencer:
        """The model ``name``, built on first use (KeyError naming the choices)."""
        if name not in self.models:
            raise KeyError(f'unknown in-context model {name!r}; choose one of '
                           f'{self.model_names()}')
        if name not in self._loaded:
            cfg, ckpt = self.models[name]
            self._loaded[name] = InContextInferencer(cfg, ckpt, device=self.device)
        return self._loaded[name]

    # ------------------------------------------------------------------ running
    def start(self, model: str, instance_ids: Sequence[int],
              images: Optional[Sequence[str]] = None, score_thr: float = 0.3,
              max_dets: int = 20, wait: bool = False) -> dict:
        """Run ``model`` with the annotations ``instance_ids`` as references, in a thread.

        Args:
            model: a name of :meth:`model_names`.
            instance_ids: annotated instances used as references (one class or several).
            images: listed image names to search (default: the whole folder).
            score_thr, max_dets: kept detections per image.
            wait: run in the caller's thread (tests, scripts).

        Returns:
            :attr:`status` (``state``: ``running`` / ``done`` / ``failed``).
        """
        if model not in self.models:
            raise KeyError(f'unknown in-context model {model!r}; choose one of '
                           f'{self.model_names()}')
        refs = [self.store.get(int(i)) for i in instance_ids]
        if not refs:
            raise ValueError('pick at least one annotated instance as the reference')
        names = list(images) if images else list(self.store.folder.names)
        for n in names:
            self.store.folder.index(n)
        if not self._run_lock.acquire(blocking=False):
            raise RuntimeError('a search is already running: wait for its proposals')
        self.status = dict(state='running', model=model, error=None, proposals=0, seconds=None)
        args = (model, refs, names, float(score_thr), int(max_dets))
        if wait:
            self._run(*args)
        else:
            threading.Thread(target=self._run, args=args, daemon=True,
                             name='sambox-find-rest').start()
        return dict(self.status)

    def _run(self, model: str, refs: List[dict], names: List[str], score_thr: float,
             max_dets: int) -> None:
        t0 = time.perf_counter()
        try:
            inf = self.inferencer(model)
            inf.clear_references()
            folder, cats = self.store.folder, {c['id']: c['name'] for c in self.store.categories}
            for r in refs:
                inf.add_reference(folder.path(r['image']), cats[r['category_id']],
                                  mask=decode_mask(r['rle']), key=f'ann{r["id"]}',
                                  category_id=r['category_id'])
            results = inf.predict([folder.path(n) for n in names], batch_size=4,
                                  score_thr=score_thr, max_dets=max_dets, show_progress=False)
            n = sum(self._queue(model, name, res) for name, res in zip(names, results))
            self.status = dict(state='done', model=model, error=None, proposals=n,
                               seconds=round(time.perf_counter() - t0, 2))
        except Exception as e:  # shown in the page; the server goes on
            self.status = dict(state='failed', model=model, error=f'{type(e).__name__}: {e}',
                               proposals=0, seconds=round(time.perf_counter() - t0, 2))
        finally:
            self._run_lock.release()

    def _queue(self, model: str, image: str, res: dict) -> int:
        """Add one image's detections to the queue; returns how many were kept."""
        if not res['masks']:
            return 0
        existing = [decode_mask(a['rle']) for a in self.store.of_image(image)]
        kept = 0
        with self._lock:
            queued = [decode_mask(p['rle']) for p in self.proposals.values()
                      if p['image'] == image and p['status'] == 'pending']
            for rle, score, name in zip(res['masks'], res['scores'], res['labels']):
                m = decode_mask(rle)
                if not m.any() or any(mask_iou(m, e) >= DEDUP_IOU for e in existing + queued):
                    continue
                self.proposals[self._next] = dict(
                    id=self._next, image=image, category_id=self.store.category_id(name),
                    rle=rle, score=round(float(score), 4), model=model, status='pending')
                queued.append(m)
                self._next += 1
                kept += 1
        return kept

    # ------------------------------------------------------------------ review
    def pending(self, image: Optional[str] = None) -> List[dict]:
        with self._lock:
            return [p for p in self.proposals.values() if p['status'] == 'pending'
                    and (image is None or p['image'] == image)]

    def get(self, pid: int) -> dict:
        if pid not in self.proposals:
            raise KeyError(f'no proposal with id {pid}')
        return self.proposals[pid]

    def accept(self, pid: int, mask: Optional[np.ndarray] = None,
               prompts: Optional[List[dict]] = None, sam_iou: Optional[float] = None) -> dict:
        """Store proposal ``pid`` as an annotation; ``mask`` (from clicks) replaces its own."""
        with self._lock:
            p = self.get(pid)
            if p['status'] != 'pending':
                raise ValueError(f'proposal {pid} was already {p["status"]}')
            inst = self.store.add_instance(
                p['image'], p['category_id'], decode_mask(p['rle']) if mask is None else mask,
                prompts or [], sam_iou, source=f'find_rest:{p["model"]}', score=p['score'])
            p['status'] = 'accepted'
            return inst

    def reject(self, pid: int) -> None:
        with self._lock:
            p = self.get(pid)
            if p['status'] != 'pending':
                raise ValueError(f'proposal {pid} was already {p["status"]}')
            p['status'] = 'rejected'
