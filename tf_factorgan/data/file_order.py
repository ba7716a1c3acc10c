"""The order of a user's files: natural order, numbers in names compared as numbers.

A folder's files are listed in this order wherever the order decides something: which
files pair up and which are "the first N" (`--max_train_images`, `--max_val_images`).
Sorting names as text puts `10.png` before `2.png` (1, 10, 100, 1000, 1001, ..., 101,
...); natural order puts them as people count: 1, 2, ..., 10, ..., 100.

  "img2.png" < "img10.png" < "img10a.png" < "img11.png"; "a.png" < "b1.png"

A name is split into runs of digits and the text between them; runs of digits compare
as integers, text compares as text (case-sensitive, as `sorted`). Names that compare
equal so ("01.png" and "1.png") fall back to their text, so the order is total and the
same on every machine.
"""

import os
import re
from typing import Iterable

_DIGITS = re.compile(r"([0-9]+)")


def natural_key(name: str) -> tuple:
    """The sort key of `name` in natural order: (its text and numbers, in turn, with
    each run of digits an int; the name itself as the tie-break). Text always sits at
    the even places, numbers at the odd ones, so keys of any two names compare."""
    parts = _DIGITS.split(name)
    return tuple(int(part) if i % 2 else part for i, part in enumerate(parts)), name


def natural_sorted(paths: Iterable[str]) -> list[str]:
    """`paths` of one folder in natural order of their file names."""
    return sorted(paths, key=lambda path: natural_key(os.path.basename(path)))
