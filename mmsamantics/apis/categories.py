"""Class names -> COCO category ids of the inferencer's results.

Classes are labelled in the order they are first registered. Their category ids come from
where they were registered: a reference file (or a bank) gives its own ids, so results
score against a GT file with the same categories; a class given by name only
(``add_reference(img, 'mug', box=...)``) gets the next free id *provisionally*: when a file
later gives ``mug`` an id, that id wins, and a provisional id a file claims for another
class moves to the next free one. Ids given explicitly never change; two explicit ids for
one class, or one explicit id for two classes, are errors.
"""
from collections import OrderedDict
from typing import Optional, Set


def _next_free(category_ids: 'OrderedDict[str, int]') -> int:
    return max(category_ids.values(), default=0) + 1


def register_class(category_ids: 'OrderedDict[str, int]', provisional: Set[str], name: str,
                   category_id: Optional[int]) -> None:
    """Add ``name`` to ``category_ids`` in place (see the module docstring).

    Args:
        category_ids: class name -> category id, in label order.
        provisional: names whose id was assigned automatically (updated in place).
        name: the class. category_id: its id from a file, or None.

    Raises:
        ValueError: an empty name, or an explicit id that conflicts with another explicit
            one.
    """
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f'class names must be non-empty strings, got {name!r}')
    known = category_ids.get(name)
    if category_id is None:
        if known is None:
            category_ids[name] = _next_free(category_ids)
            provisional.add(name)
        return
    category_id = int(category_id)
    if known is not None and known != category_id and name not in provisional:
        raise ValueError(f'class {name!r} already has category id {known}, not '
                         f'{category_id}')
    other = [n for n, c in category_ids.items() if c == category_id and n != name]
    if other and other[0] not in provisional:
        raise ValueError(f'category id {category_id} of {name!r} is already used by '
                         f'{other[0]!r}')
    category_ids[name] = category_id
    provisional.discard(name)
    if other:  # a provisional id claimed by a file: that class moves to a free id
        category_ids[other[0]] = _next_free(category_ids)
