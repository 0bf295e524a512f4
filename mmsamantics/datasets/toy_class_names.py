"""The toy world's classes: the one list of its colours, shapes and NOVEL classes.

A class of the synthetic toy world is ``"<colour> <shape>"``; a few colour/shape
combinations are held out as NOVEL classes (COCO-NOVEL style) while their colour and their
shape both appear in BASE classes. This module holds only these names (and each colour
family's RGB centre, which defines the colour): the named class splits ``toy``,
``toy-base`` and ``toy-novel`` (:mod:`.class_splits`) read them without loading the
generator, which lives in ``mmsamantics_toy.toy_world`` with the tools that write the world.
"""
from typing import Dict, List, Tuple

SHAPES: Tuple[str, ...] = ('circle', 'square', 'triangle', 'star')
COLOURS: Dict[str, Tuple[int, int, int]] = {  # RGB centres of each colour family
    'red': (215, 45, 45),
    'green': (45, 175, 70),
    'blue': (50, 85, 215),
}
NOVEL: Tuple[str, ...] = ('red star', 'green triangle', 'blue square')


def toy_classes() -> List[str]:
    """All class names, in category-id order (id = index + 1)."""
    return [f'{c} {s}' for c in COLOURS for s in SHAPES]


def toy_splits() -> Dict[str, List[str]]:
    """BASE / NOVEL class names of the toy world."""
    classes = toy_classes()
    return dict(base=[c for c in classes if c not in NOVEL], novel=list(NOVEL))
