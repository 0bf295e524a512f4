"""Keep model building quiet: mmengine logs every weight's initialisation at INFO.

Building a detector logs one line per initialised parameter (about 1,300 for the toy
InSAM-DETR) through the current ``MMLogger``, which buries the messages a user needs. The
tools and the inference API build their models inside :func:`quiet_logs`, which lets only
warnings and errors through; ``-v`` (``verbose=True``) keeps everything.
"""
import logging
from contextlib import contextmanager
from typing import Iterator

from mmengine.logging import MMLogger


@contextmanager
def quiet_logs(verbose: bool = False, level: int = logging.WARNING) -> Iterator[None]:
    """Within the block, the current mmengine logger drops records below ``level`` (INFO
    chatter becomes DEBUG-only) unless ``verbose``; its level is restored afterwards."""
    if verbose:
        yield
        return
    logger = MMLogger.get_current_instance()
    old = logger.level
    logger.setLevel(max(level, old))
    try:
        yield
    finally:
        logger.setLevel(old)
