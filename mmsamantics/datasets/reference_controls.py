"""Reference controls: does an in-context model use what its reference shows?

A model that ignores its reference is a class-agnostic detector, and AP alone cannot tell the
two apart. A control evaluates the same model on the same targets with references that are
wrong in a known way; a model that uses its references loses AP. One wrong reference says
little: a model that matches colour first keeps most of its AP when a red star answers for a
red circle. So the controls form a family, each a map ``class -> donor class`` (the class
whose references it is given):

- ``cyclic``: the classes with references, sorted, each take the next one's (a fixed
  derangement; ``shuffled`` is its older name and means the same);
- ``random-<seed>``: a seeded random derangement (no class keeps its own); several seeds give
  a mean and a spread;
- ``same-attribute`` / ``same-kind``: for class names ``'<attribute> <kind>'`` (the toy
  world's ``'red circle'``), each class takes the next class of the same attribute and
  another kind (red circle <- red square), or of the same kind and another attribute
  (red circle <- green circle): which of the two the model reads;
- ``blank``: every reference image replaced by a constant one (same box and mask), no donor.

Controls are evaluation switches: :class:`InContextCocoDataset` announces an active one when
it is built and puts its name in ``metainfo['reference_control']``, which the metric records.
"""
import re
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

ATTRIBUTE_CONTROLS = ('same-attribute', 'same-kind')
FIXED_CONTROLS = ('cyclic', 'blank') + ATTRIBUTE_CONTROLS
ALIASES = {'shuffled': 'cyclic'}  # the name of the cyclic derangement in earlier releases
RANDOM = re.compile(r'^random-(\d+)$')
# spellings that mean "no control" (a CLI value that overrides a config carrying one)
NONE_NAMES = (None, 'none', 'None', '')


def normalize_control(name: Optional[str]) -> Optional[str]:
    """The canonical name of a control (``None`` for no control).

    Raises:
        ValueError: the name is not a control, with the list of valid names.
    """
    if name in NONE_NAMES:
        return None
    name = ALIASES.get(name, name)
    if name in FIXED_CONTROLS or RANDOM.match(str(name)):
        return name
    raise ValueError(f'ref_control must be None/"none" or one of {FIXED_CONTROLS}, '
                     f"'random-<seed>' (e.g. 'random-0') or 'shuffled' (= 'cyclic'); "
                     f'got {name!r}')


def expand_controls(names: Sequence[str], random_seeds: Sequence[int] = (0, 1, 2)
                    ) -> List[str]:
    """Control names of a CLI list, ``'random'`` expanded to one per seed and ``'family'``
    to every derangement (``cyclic``, the random ones, ``same-attribute``, ``same-kind``)."""
    out: List[str] = []
    for n in names:
        if n == 'family':
            new = ['cyclic'] + [f'random-{s}' for s in random_seeds] + list(ATTRIBUTE_CONTROLS)
        elif n == 'random':
            new = [f'random-{s}' for s in random_seeds]
        else:
            new = [normalize_control(n)]
        out += [c for c in new if c is not None and c not in out]
    return out


def control_group(name: str) -> str:
    """The row a control is reported under: ``random-3`` -> ``random`` (mean ± std of the
    seeds), any other name unchanged."""
    return 'random' if RANDOM.match(name) else name


def split_attribute(name: str) -> Tuple[str, str]:
    """``'red circle'`` -> ``('red', 'circle')``: the first word and the rest."""
    attr, _, kind = name.strip().partition(' ')
    if not kind:
        raise ValueError(f'class {name!r} is not named "<attribute> <kind>" (e.g. "red '
                         'circle"): the same-attribute / same-kind controls need such names; '
                         "use 'cyclic' or 'random-<seed>' for this dataset")
    return attr, kind.strip()


def _cyclic(labels: Sequence[int]) -> Dict[int, int]:
    return {lb: labels[(i + 1) % len(labels)] for i, lb in enumerate(labels)}


def _random_derangement(labels: Sequence[int], seed: int) -> Dict[int, int]:
    rng = np.random.default_rng(seed)
    while True:  # a random permutation is a derangement with probability ~1/e
        perm = rng.permutation(len(labels))
        if (perm != np.arange(len(labels))).all():
            return {lb: labels[int(j)] for lb, j in zip(labels, perm)}


def _within_groups(labels: Sequence[int], classes: Sequence[str], keep: int, control: str
                   ) -> Dict[int, int]:
    """Cyclic derangement inside groups of equal attribute (``keep=0``) or kind (1)."""
    groups: Dict[str, List[int]] = {}
    for lb in labels:
        groups.setdefault(split_attribute(classes[lb])[keep], []).append(lb)
    alone = [classes[g[0]] for g in groups.values() if len(g) < 2]
    if alone:
        what = 'attribute' if keep == 0 else 'kind'
        raise ValueError(f"ref_control={control!r}: no other class with references shares the "
                         f'{what} of {alone}, so they have no donor; evaluate the classes '
                         "that do (query_classes) or use 'cyclic' / 'random-<seed>'")
    out: Dict[int, int] = {}
    for g in groups.values():
        out.update(_cyclic(sorted(g)))
    return out


def control_donors(control: str, labels: Sequence[int], classes: Sequence[str]
                   ) -> Dict[int, int]:
    """label -> the label whose references it takes under a derangement control.

    Args:
        control: a control name other than ``'blank'`` (:func:`normalize_control`).
        labels: the labels that have references (each one is queried with a donor's).
        classes: every class name, indexed by label.

    Returns:
        A derangement of ``labels``: no label maps to itself.
    """
    control = normalize_control(control)
    labels = sorted(int(lb) for lb in labels)
    if control in (None, 'blank'):
        raise ValueError(f'{control!r} is not a derangement: it has no donor classes')
    if len(labels) < 2:
        raise ValueError(f'ref_control={control!r} gives each class another class\'s '
                         f'references: it needs references of at least 2 classes, got '
                         f'{len(labels)}')
    if control == 'cyclic':
        return _cyclic(labels)
    m = RANDOM.match(control)
    if m:
        return _random_derangement(labels, int(m.group(1)))
    return _within_groups(labels, classes, 0 if control == 'same-attribute' else 1, control)


def describe_control(control: Optional[str]) -> str:
    """One line that says what a control does (printed when it is active)."""
    control = normalize_control(control)
    if control is None:
        return 'no reference control: every class is queried with its own references'
    text = {
        'cyclic': "cyclic derangement: every class gets the references of the next class",
        'blank': 'blank references: every reference image is a constant image (same box)',
        'same-attribute': 'same attribute, other kind: every class gets the references of '
                          'a class of its attribute (e.g. colour) and another kind',
        'same-kind': 'same kind, other attribute: every class gets the references of a '
                     'class of its kind (e.g. shape) and another attribute',
    }.get(control)
    if text is None:
        text = (f'random derangement (seed {RANDOM.match(control).group(1)}): every class gets '
                "another class's references")
    return f'[control] {control}: {text}; a model that uses its references loses AP'
