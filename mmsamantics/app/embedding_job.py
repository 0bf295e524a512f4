"""Background encoding of a whole image folder, the image on screen first.

SAMBOX (SAMIC paper) pre-computes the SAM embeddings of the folder once so that a click only
runs SAM's light prompt decoder. The job walks the folder in a thread; :meth:`focus` moves
the image the user opens (and the next one) to the front. A click on an image that is not
encoded yet encodes that image in the request's own thread (the segmenter locks per image),
so a click never waits for another image.
"""
import sys
import threading
import time
from typing import Callable, List, Optional

from .image_folder import ImageFolder
from .prompt_segmenter import PromptSegmenter


class EmbeddingJob:
    """Encode every image of ``folder`` with ``segmenter`` (cached to disk), in a thread.

    Args:
        segmenter: computes and caches the embeddings.
        folder: the images.
        report: called with (done, total, image name) after each image (default: a
            progress line in the terminal).
    """

    def __init__(self, segmenter: PromptSegmenter, folder: ImageFolder,
                 report: Optional[Callable[[int, int, str], None]] = None) -> None:
        self.segmenter = segmenter
        self.folder = folder
        self.report = report if report is not None else _terminal
        self._todo: List[str] = list(folder.names)
        self._cv = threading.Condition()
        self._thread: Optional[threading.Thread] = None
        self._stop = False
        self.errors: List[dict] = []
        self.done = 0
        self.current: Optional[str] = None
        self.started = self.finished = None

    def start(self) -> 'EmbeddingJob':
        """Start the worker thread (a daemon: it never keeps the server alive)."""
        if self._thread is None:
            self.started = time.perf_counter()
            self._thread = threading.Thread(target=self._run, name='sambox-embeddings',
                                            daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        with self._cv:
            self._stop = True
            self._cv.notify_all()

    def focus(self, name: str) -> None:
        """Encode ``name`` (and the image after it) before the rest."""
        i = self.folder.index(name)
        first = self.folder.names[i:i + 2]
        with self._cv:
            self._todo = [n for n in first if n in self._todo] + [
                n for n in self._todo if n not in first]
            self._cv.notify_all()

    def _next(self) -> Optional[str]:
        with self._cv:
            if self._stop or not self._todo:
                return None
            self.current = self._todo.pop(0)
            return self.current

    def _run(self) -> None:
        total = len(self.folder)
        while True:
            name = self._next()
            if name is None:
                break
            try:
                self.segmenter.embedding(self.folder.path(name))
            except Exception as e:  # a file that broke after listing: report, go on
                self.errors.append(dict(image=name, error=str(e)))
            self.done += 1
            self.report(self.done, total, name)
        self.current = None
        if not self._stop:
            self.finished = time.perf_counter()

    def join(self, timeout: Optional[float] = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def progress(self) -> dict:
        """``done``, ``total``, ``current``, ``seconds``, ``images_per_s``, ``errors``."""
        end = self.finished or time.perf_counter()
        secs = (end - self.started) if self.started else 0.0
        return dict(done=self.done, total=len(self.folder), current=self.current,
                    finished=self.finished is not None, seconds=round(secs, 2),
                    images_per_s=round(self.done / secs, 2) if secs > 0 else None,
                    errors=list(self.errors))


def _terminal(done: int, total: int, name: str) -> None:
    """One self-overwriting progress line on stderr, ended when the folder is done."""
    sys.stderr.write(f'\rembeddings {done}/{total} ({name})\x1b[K' +
                     ('\n' if done == total else ''))
    sys.stderr.flush()
