"""SAMBOX: a web annotation tool on the plugin's frozen SAM (optional extra ``[app]``).

Clicks and boxes become SAM masks with SAM's predicted IoU, instances are saved as COCO JSON
with their prompts, and annotated instances serve as references for the in-context models
("find the rest"). Start it with ``tools/annotate.py``; see ``docs/annotate.md``.
The web framework (FastAPI) is imported by :mod:`mmsamantics.app.server` only.
"""
from .annotation_store import AnnotationStore
from .image_folder import ImageFolder
from .prompt_segmenter import PromptError, PromptSegmenter
from .session import AnnotationSession

__all__ = ['AnnotationSession', 'AnnotationStore', 'ImageFolder', 'PromptError',
           'PromptSegmenter']
