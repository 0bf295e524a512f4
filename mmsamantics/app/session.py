"""One annotation session: a folder, its annotation file, SAM and the in-context models.

Composes the parts the web server exposes: :class:`ImageFolder` (what may be read),
:class:`AnnotationStore` (what is saved), :class:`PromptSegmenter` (clicks to masks),
:class:`EmbeddingJob` (the folder encoded once) and :class:`FindTheRest` (proposals).
A committed annotation is always re-segmented here from its prompts, so the saved mask is
exactly SAM's mask for the saved prompts, whatever the page shows.
"""
import os.path as osp
import time
from collections import OrderedDict
from typing import Callable, List, Optional, Sequence, Tuple, Union

import cv2
import numpy as np

from ..apis import InContextInferencer
from ..datasets.transforms.heatmaps import gaussian_heatmap, sample_mask_points
from .annotation_store import AnnotationStore
from .coco_io import check_folder_match, column_runs, decode_mask, read_annotation_file
from .embedding_job import EmbeddingJob
from .find_rest import FindTheRest
from .image_folder import ImageFolder
from .prompt_segmenter import PromptError, PromptSegmenter

MAIN_MODEL = 'main'


class AnnotationSession:
    """Everything the annotation server serves.

    Args:
        img_dir: folder of images to annotate (or its :class:`ImageFolder`).
        out: COCO JSON written on every change (resumed from when it exists).
        inferencer: the tool's in-context model; its SAM segments the clicks and it is the
            first "find the rest" model.
        cache_root: on-disk embedding cache (default: ``<out without .json>_embeddings``).
        classes: class names offered from the start.
        find_models: more in-context models for "find the rest": name -> (config,
            checkpoint or None), built on first use.
        report: embedding progress callback (done, total, name); default the terminal.
    """

    def __init__(self, img_dir: Union[str, ImageFolder], out: str, inferencer: InContextInferencer,
                 cache_root: Optional[str] = None, classes: Optional[List[str]] = None,
                 find_models: Optional[dict] = None,
                 report: Optional[Callable[[int, int, str], None]] = None) -> None:
        self.folder = img_dir if isinstance(img_dir, ImageFolder) else ImageFolder(img_dir)
        self.store = AnnotationStore(self.folder, out, classes)
        if cache_root is None:
            cache_root = osp.splitext(out)[0] + '_embeddings'
        self.segmenter = PromptSegmenter(inferencer.model, cache_root)
        self.job = EmbeddingJob(self.segmenter, self.folder, report)
        models = OrderedDict([(MAIN_MODEL, ('<loaded>', None))])
        models.update(find_models or {})
        self.finder = FindTheRest(self.store, models, loaded={MAIN_MODEL: inferencer},
                                  device=str(inferencer.device))

    @classmethod
    def from_config(cls, img_dir: str, out: str, config: str, checkpoint: Optional[str] = None,
                    device: Optional[str] = None, cfg_options: Optional[dict] = None,
                    **kwargs) -> 'AnnotationSession':
        """A session on the SAM of ``config``'s in-context model (``checkpoint`` checked key
        by key: one of another config is refused). The folder and the annotation file are
        checked before the model is built, so their mistakes are reported at once."""
        folder = ImageFolder(img_dir)
        doc = read_annotation_file(out)
        if doc is not None:
            check_folder_match(doc, folder.names, out, folder.root)
        inf = InContextInferencer(config, checkpoint, device=device, cfg_options=cfg_options)
        return cls(folder, out, inf, **kwargs)

    def start(self) -> 'AnnotationSession':
        """Start encoding the folder in the background (first image first)."""
        self.job.start()
        return self

    # ------------------------------------------------------------------ prompts
    def segment(self, image: str, points: Sequence[Sequence[float]] = (),
                box: Optional[Sequence[float]] = None) -> dict:
        """Candidate masks of one prompt for the page.

        Returns:
            ``candidates`` (``iou``, ``area``, ``runs`` = column-major RLE counts), ``best``
            (index of the highest predicted IoU), ``height``, ``width``, ``ms`` (server time).
        """
        t0 = time.perf_counter()
        path = self.folder.path(image)
        cands = self.segmenter.candidates(path, points, box)
        h, w = self.folder.sizes[image]
        return dict(candidates=[dict(iou=round(c['iou'], 4), area=int(c['mask'].sum()),
                                     runs=column_runs(c['mask'])) for c in cands],
                    best=int(np.argmax([c['iou'] for c in cands])), height=h, width=w,
                    ms=round((time.perf_counter() - t0) * 1e3, 2))

    def prompt_mask(self, image: str, prompt: dict) -> Tuple[np.ndarray, float, dict]:
        """SAM's mask of one prompt ``{points, box, mask_index}`` (default index: the best).

        Returns:
            (mask (H0, W0) bool, SAM's predicted IoU, the prompt as stored).
        """
        points, box = prompt.get('points') or [], prompt.get('box')
        masks, ious = self.segmenter.segment(self.folder.path(image), points, box)
        k = prompt.get('mask_index')
        k = int(np.argmax(ious)) if k is None else int(k)
        if not 0 <= k < len(masks):
            raise PromptError(f'mask_index {k} out of range: this prompt has {len(masks)} '
                              'candidate masks')
        stored = dict(points=[[float(v) for v in p] for p in points],
                      box=None if box is None else [float(v) for v in box], mask_index=k)
        return masks[k], round(float(ious[k]), 4), stored

    def prompts_mask(self, image: str, prompts: List[dict]) -> Tuple[np.ndarray, object, list]:
        """Union of the masks of several prompts (one instance drawn in parts)."""
        if not prompts:
            raise PromptError('no prompt: click on the object or drag a box around it')
        parts = [self.prompt_mask(image, p) for p in prompts]
        mask = np.logical_or.reduce([m for m, _, _ in parts])
        ious = [s for _, s, _ in parts]
        return mask, ious[0] if len(ious) == 1 else ious, [p for _, _, p in parts]

    def commit(self, image: str, category, prompts: List[dict]) -> dict:
        """Save the SAM mask of ``prompts`` on ``image`` as ``category`` (name or id)."""
        self.store.category_id(category)  # an unknown class fails before SAM runs
        mask, iou, stored = self.prompts_mask(image, prompts)
        return self.view(self.store.add_instance(image, category, mask, stored, iou))

    def heatmap_png(self, ann_id: int, sigma: float = 0.02) -> bytes:
        """SAMIC's prompt heatmap of an annotation as an RGBA PNG of the image's size.

        SAMIC (Sec. 3.2) prompts its model with a Gaussian heatmap of points clicked on the
        object; this previews it for the annotation's positive clicks (for a box or a proposal:
        the interior points SAMIC's training samples from the mask).
        """
        inst = self.store.get(ann_id)
        h, w = self.folder.sizes[inst['image']]
        pts = [p[:2] for pr in inst['sambox'].get('prompts') or []
               for p in pr.get('points') or [] if p[2] == 1]
        if not pts:
            pts = sample_mask_points(decode_mask(inst['rle']), 5, np.random.default_rng(0))
        heat = gaussian_heatmap(np.asarray(pts, np.float32).reshape(-1, 2), (h, w), (h, w),
                                sigma)
        bgr = cv2.applyColorMap((heat * 255).astype(np.uint8), cv2.COLORMAP_JET)
        bgra = np.dstack([bgr, (heat * 200).astype(np.uint8)])
        return cv2.imencode('.png', bgra)[1].tobytes()

    # ------------------------------------------------------------------ views
    def view(self, inst: dict, with_mask: bool = True) -> dict:
        """An instance (or a proposal) as the page needs it."""
        out = {k: v for k, v in inst.items() if k != 'rle'}
        if with_mask:
            m = decode_mask(inst['rle'])
            out.update(runs=column_runs(m), area=int(m.sum()))
        return out

    def state(self) -> dict:
        """Images, classes, mode, models and embedding progress."""
        counts = {n: 0 for n in self.folder.names}
        for a in list(self.store.instances.values()):
            counts[a['image']] += 1
        return dict(
            images=[dict(index=i, name=n, height=self.folder.sizes[n][0],
                         width=self.folder.sizes[n][1], annotations=counts[n])
                    for i, n in enumerate(self.folder.names)],
            skipped=[dict(file=f, reason=r) for f, r in self.folder.skipped],
            categories=self.store.categories, mode=self.store.mode,
            models=self.finder.model_names(), out=self.store.out_path,
            progress=self.job.progress(), points_supported=self.segmenter.points_supported,
            find_rest=self.finder.status)
