"""Label palettes: the classes of colour label maps, their ids and colours.

A palette is an ordered list of classes, each with an integer id, a name, an RGB
colour in 0..255 and whether it is ignored in the evaluation. The evaluated classes,
in file order, are what segmentation metrics score and what a served model predicts;
ignored classes only mark ground-truth pixels that do not count.

Files (`read`, `write`; the format follows the extension):

  CSV   a header line `id,name,r,g,b,ignored`, then one class per line, e.g.
        `7,road,128,64,128,false`. id is an integer, r, g and b are integers in
        0..255, ignored is one of true/false/yes/no/1/0 (any case). Blank lines and
        lines starting with `#` are skipped; a name holding a comma is quoted
        ("a, b").
  JSON  a list of objects {"id": 7, "name": "road", "colour": [128, 64, 128],
        "ignored": false}, or an object {"classes": [that list]}.

Rules: ids and names are unique; at least one class is evaluated; two classes may
share a colour only if at most one of them is evaluated. A shared colour belongs to
the evaluated class: Cityscapes gives car and license plate both (0, 0, 142), and pole
and polegroup both (153, 153, 153), so car and pole ground-truth pixels count. The
original FactorGAN code treated every colour of an ignored class as ignored and thereby
dropped car and pole from its evaluation; we do not. A colour shared by ignored classes
only (the five blacks of Cityscapes) maps to the first of them in file order.

`cityscapes()` is the Cityscapes table shipped beside this module (`CITYSCAPES_FILE`):
ids are the Cityscapes label ids (0..33, and -1 for the license plate), the 19 classes
with a train id are evaluated, in label id order, so the k-th evaluated class is the
one of train id k.
"""

import csv
import dataclasses
import functools
import io
import os
import re

import numpy as np

from tf_factorgan import files

CSV_COLUMNS = ("id", "name", "r", "g", "b", "ignored")
JSON_KEYS = ("id", "name", "colour", "ignored")
CITYSCAPES_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "palettes", "cityscapes.csv")

_BOOLEANS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}
_INTEGER = re.compile(r"[+-]?[0-9]+")
# How many unknown colours / ids an error message lists.
_LISTED_COLOURS = 5
_LISTED_IDS = 10


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


@dataclasses.dataclass(frozen=True)
class LabelClass:
    """One class: id (any integer, unique in its palette), name (unique, non-empty, no
    surrounding whitespace), colour (r, g, b) in 0..255, ignored (not evaluated)."""

    id: int
    name: str
    colour: tuple[int, int, int]
    ignored: bool = False

    def __post_init__(self):
        if not _is_int(self.id):
            raise ValueError(f"class id must be an integer, got {self.id!r}")
        if not isinstance(self.name, str) or not self.name or self.name != self.name.strip() or (
                "\n" in self.name or "\r" in self.name):
            raise ValueError(f"class name must be a non-empty one-line string without surrounding "
                             f"spaces, got {self.name!r}")
        colour = tuple(self.colour) if isinstance(self.colour, (tuple, list, np.ndarray)) else None
        if colour is None or len(colour) != 3 or not all(_is_int(c) and 0 <= c <= 255 for c in colour):
            raise ValueError(f"class {self.name!r}: colour must be three integers in 0..255, got {self.colour!r}")
        if not isinstance(self.ignored, (bool, np.bool_)):
            raise ValueError(f"class {self.name!r}: ignored must be true or false, got {self.ignored!r}")
        object.__setattr__(self, "id", int(self.id))
        object.__setattr__(self, "colour", tuple(int(c) for c in colour))
        object.__setattr__(self, "ignored", bool(self.ignored))


def _check(classes, where: str, labels) -> None:
    """Raises ValueError naming `where` and the entries' `labels` ("line 7") unless the
    classes make a palette (see the module docstring's rules)."""
    if not classes:
        raise ValueError(f"{where}: the palette has no classes")
    for attribute in ("id", "name"):
        first = {}
        for label, cls in zip(labels, classes):
            value = getattr(cls, attribute)
            if value in first:
                raise ValueError(f"{where}: {first[value]} and {label} both have {attribute} {value!r}")
            first[value] = label
    if all(cls.ignored for cls in classes):
        raise ValueError(f"{where}: every class is ignored; at least one must be evaluated")
    evaluated = {}
    for label, cls in zip(labels, classes):
        if cls.ignored:
            continue
        if cls.colour in evaluated:
            other_label, other = evaluated[cls.colour]
            raise ValueError(
                f"{where}: {other_label} ({other.name}) and {label} ({cls.name}) are both evaluated and "
                f"share colour {cls.colour}; two classes may share a colour only if at most one of them "
                f"is evaluated")
        evaluated[cls.colour] = (label, cls)


def _frozen(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


def _colour_keys(rgb: np.ndarray) -> np.ndarray:
    """uint8 [..., 3] -> int32 [...] r * 65536 + g * 256 + b."""
    rgb = rgb.astype(np.int32)
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]


def _pixels(count) -> str:
    return f"{int(count)} pixel" + ("" if count == 1 else "s")


def _key_colour(key: int) -> tuple[int, int, int]:
    return (int(key) >> 16, (int(key) >> 8) & 255, int(key) & 255)


@dataclasses.dataclass(frozen=True)
class Palette:
    """The classes of a label map, in file order (see the module docstring).

    Arrays returned by the methods are cached and read-only.
    """

    classes: tuple[LabelClass, ...]

    def __post_init__(self):
        classes = tuple(self.classes)
        if not all(isinstance(cls, LabelClass) for cls in classes):
            raise ValueError("Palette classes must be LabelClass objects")
        object.__setattr__(self, "classes", classes)
        _check(classes, "palette", [f"classes[{i}]" for i in range(len(classes))])

    @property
    def evaluated(self) -> tuple[LabelClass, ...]:
        """The classes that are not ignored, in file order: K >= 1 of them."""
        return tuple(cls for cls in self.classes if not cls.ignored)

    def evaluated_names(self) -> tuple[str, ...]:
        return tuple(cls.name for cls in self.evaluated)

    @functools.cached_property
    def _evaluated_ids(self) -> np.ndarray:
        return _frozen(np.array([cls.id for cls in self.evaluated], np.int32))

    def evaluated_ids(self) -> np.ndarray:
        """int32 [K]: row k is the id of the k-th evaluated class."""
        return self._evaluated_ids

    @functools.cached_property
    def _evaluated_colours(self) -> np.ndarray:
        return _frozen(np.array([cls.colour for cls in self.evaluated], np.float32) / np.float32(255))

    def evaluated_colours(self) -> np.ndarray:
        """float32 [K, 3] in [0, 1] (0..255 / 255): row k is the colour of the k-th
        evaluated class."""
        return self._evaluated_colours

    @functools.cached_property
    def _full_colours(self) -> np.ndarray:
        colours = [cls.colour for cls in self.evaluated]
        for cls in self.classes:
            if cls.colour not in colours:
                colours.append(cls.colour)
        return _frozen(np.array(colours, np.float32) / np.float32(255))

    def full_colours(self) -> np.ndarray:
        """float32 [F, 3] in [0, 1], the F distinct colours of all classes: the K
        evaluated ones (`evaluated_colours()`) first, then those used by ignored classes
        only, in file order. A row below K is an evaluated class's index."""
        return self._full_colours

    def full_ignored(self) -> np.ndarray:
        """bool [F]: whether a `full_colours()` row is an ignored colour (row >= K)."""
        return _frozen(np.arange(len(self.full_colours())) >= len(self.evaluated))

    @functools.cached_property
    def _colour_lookup(self) -> tuple[np.ndarray, np.ndarray]:
        """(int32 sorted colour keys, int32 ids): a shared colour's id is its evaluated
        class's, else the first class's in file order."""
        owner = {}
        for cls in self.classes:
            if cls.colour not in owner or (owner[cls.colour].ignored and not cls.ignored):
                owner[cls.colour] = cls
        keys = _colour_keys(np.array(list(owner), np.uint8))
        ids = np.array([cls.id for cls in owner.values()], np.int32)
        order = np.argsort(keys)
        return _frozen(keys[order]), _frozen(ids[order])

    @functools.cached_property
    def _id_lookup(self) -> tuple[np.ndarray, np.ndarray]:
        """(int64 sorted ids, uint8 [C, 3] their colours)."""
        ids = np.array([cls.id for cls in self.classes], np.int64)
        colours = np.array([cls.colour for cls in self.classes], np.uint8)
        order = np.argsort(ids)
        return _frozen(ids[order]), _frozen(colours[order])

    def colours_to_ids(self, rgb, where: str) -> np.ndarray:
        """Class ids of a colour label map, by exact colour.

        Args:
          rgb: uint8 [..., 3] colours in 0..255, e.g. a decoded PNG [H, W, 3].
          where: what the map is (a file path), named in errors.

        Returns:
          int32 [...] ids; a colour shared by an evaluated and ignored classes gives the
          evaluated class's id.

        Raises ValueError naming `where`, how many pixels have colours outside the
        palette and the most common of those, when any has.
        """
        rgb = np.asarray(rgb)
        if rgb.dtype != np.uint8 or rgb.ndim < 1 or rgb.shape[-1] != 3:
            raise ValueError(f"{where}: a colour label map must be uint8 [..., 3], got {rgb.dtype} {list(rgb.shape)}")
        keys = _colour_keys(rgb)
        known, ids = self._colour_lookup
        index = np.minimum(np.searchsorted(known, keys), len(known) - 1)
        found = known[index] == keys
        if not found.all():
            unknown, counts = np.unique(keys[~found], return_counts=True)
            order = np.lexsort((unknown, -counts))[:_LISTED_COLOURS]
            listed = ", ".join(f"{_key_colour(unknown[i])}: {_pixels(counts[i])}" for i in order)
            raise ValueError(
                f"{where}: {int(counts.sum())} of {keys.size} pixels have colours that are not in the "
                f"palette ({len(unknown)} such colours; most common: {listed}). Label maps must be saved "
                f"losslessly (PNG, not JPEG) in the palette's exact colours")
        return ids[index]

    def ids_to_colours(self, ids, where: str) -> np.ndarray:
        """Colours of a class-index label map, e.g. a single-channel PNG of ids such as
        Cityscapes' `*_labelIds.png`.

        Args:
          ids: integer [...] class ids.
          where: what the map is (a file path), named in errors.

        Returns:
          uint8 [..., 3] the classes' colours in 0..255.

        Raises ValueError naming `where`, the ids outside the palette and their pixel
        counts, when there are any.
        """
        ids = np.asarray(ids)
        if not np.issubdtype(ids.dtype, np.integer):
            raise ValueError(f"{where}: a class id map must hold integers, got {ids.dtype}")
        known, colours = self._id_lookup
        wide = ids.astype(np.int64)
        index = np.minimum(np.searchsorted(known, wide), len(known) - 1)
        found = known[index] == wide
        if not found.all():
            unknown, counts = np.unique(wide[~found], return_counts=True)
            listed = ", ".join(f"{u}: {_pixels(c)}" for u, c in zip(unknown[:_LISTED_IDS], counts))
            more = f" and {len(unknown) - _LISTED_IDS} more" if len(unknown) > _LISTED_IDS else ""
            raise ValueError(
                f"{where}: {int(counts.sum())} of {wide.size} pixels have ids that are not in the palette "
                f"(ids {listed}{more}); the palette has ids {known.tolist()}")
        return colours[index]

    def to_json(self) -> list:
        """The JSON file's list: [{"id", "name", "colour": [r, g, b], "ignored"}, ...]."""
        return [{"id": c.id, "name": c.name, "colour": list(c.colour), "ignored": c.ignored}
                for c in self.classes]


def from_json(value, where: str = "palette") -> Palette:
    """The palette of a JSON value: a list of class objects or {"classes": that list}
    (see the module docstring). Errors name `where` and the entry (classes[i])."""
    if isinstance(value, dict) and set(value) == {"classes"}:
        value = value["classes"]
    if not isinstance(value, list):
        raise ValueError(f"{where}: a palette must be a list of class objects or {{\"classes\": [...]}}, "
                         f"got {type(value).__name__}")
    classes, labels = [], []
    for i, entry in enumerate(value):
        label = f"classes[{i}]"
        if not isinstance(entry, dict) or set(entry) != set(JSON_KEYS):
            keys = sorted(entry) if isinstance(entry, dict) else type(entry).__name__
            raise ValueError(f"{where}: {label} must be an object with the keys {list(JSON_KEYS)}, got {keys}")
        if not _is_int(entry["id"]):
            raise ValueError(f"{where}: {label}: id must be an integer, got {entry['id']!r}")
        if not isinstance(entry["colour"], list):
            raise ValueError(f"{where}: {label}: colour must be a list [r, g, b], got {entry['colour']!r}")
        try:
            classes.append(LabelClass(entry["id"], entry["name"], entry["colour"], entry["ignored"]))
        except ValueError as error:
            raise ValueError(f"{where}: {label}: {error}") from None
        labels.append(label)
    _check(classes, where, labels)
    return Palette(tuple(classes))


def _csv_integer(text: str, what: str, where: str) -> int:
    if not _INTEGER.fullmatch(text):
        raise ValueError(f"{where}: {what} must be an integer, got {text!r}")
    return int(text)


def _parse_csv(text: str, path: str) -> Palette:
    classes, labels, header = [], [], False
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        where = f"{path}, line {number}"
        try:
            fields = [field.strip() for field in next(csv.reader([line], strict=True))]
        except csv.Error as error:
            raise ValueError(f"{where}: not a CSV line ({error}): {line!r}") from None
        if not header:
            if [field.lower() for field in fields] != list(CSV_COLUMNS):
                raise ValueError(f"{where}: the first line must be the header {','.join(CSV_COLUMNS)}, "
                                 f"got {line!r}")
            header = True
            continue
        if len(fields) != len(CSV_COLUMNS):
            raise ValueError(f"{where}: expected {len(CSV_COLUMNS)} columns ({','.join(CSV_COLUMNS)}), got "
                             f"{len(fields)}: {line!r}")
        class_id = _csv_integer(fields[0], "id", where)
        colour = tuple(_csv_integer(f, c, where) for f, c in zip(fields[2:5], "rgb"))
        bad = [f"{c}={v}" for c, v in zip("rgb", colour) if not 0 <= v <= 255]
        if bad:
            raise ValueError(f"{where}: colour must lie in 0..255, got {', '.join(bad)}")
        if fields[5].lower() not in _BOOLEANS:
            raise ValueError(f"{where}: ignored must be one of true/false/yes/no/1/0, got {fields[5]!r}")
        try:
            classes.append(LabelClass(class_id, fields[1], colour, _BOOLEANS[fields[5].lower()]))
        except ValueError as error:
            raise ValueError(f"{where}: {error}") from None
        labels.append(f"line {number}")
    if not header:
        raise ValueError(f"{path}: no header line {','.join(CSV_COLUMNS)}: the palette has no classes")
    _check(classes, path, labels)
    return Palette(tuple(classes))


def _extension(path: str) -> str:
    extension = os.path.splitext(path)[1].lower()
    if extension not in (".csv", ".json"):
        raise ValueError(f"{path}: a palette file must end in .csv or .json")
    return extension


def read(path: str) -> Palette:
    """The palette in a .csv or .json file (see the module docstring). Errors name the
    file, and the line (CSV) or the entry (JSON) at fault."""
    extension = _extension(path)
    if extension == ".json":
        return from_json(files.read_json(path), path)
    with open(path, "rb") as f:
        data = f.read()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ValueError(f"{path} is not UTF-8 text ({error})") from None
    return _parse_csv(text, path)


def write(path: str, palette: Palette) -> None:
    """`palette` as a .csv or .json file (by the extension), atomically."""
    if _extension(path) == ".json":
        files.write_json(path, palette.to_json())
        return
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for cls in palette.classes:
        writer.writerow([cls.id, cls.name, *cls.colour, "true" if cls.ignored else "false"])
    files.write_bytes(path, buffer.getvalue().encode())


@functools.lru_cache(maxsize=None)
def cityscapes() -> Palette:
    """The Cityscapes palette (`CITYSCAPES_FILE`): 35 classes, 19 evaluated."""
    return read(CITYSCAPES_FILE)
