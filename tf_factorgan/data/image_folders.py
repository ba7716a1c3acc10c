"""A user's images from plain folders: paired by file-name stem, or unpaired.

  paired      two folders whose files match by stem: photos/aachen_000000.jpg <->
              labels/aachen_000000.png (extensions may differ)
  unpaired    a folder of images of one part alone

Files: .jpg/.jpeg/.png/.bmp/.webp of any size and aspect ratio, decoded with PIL,
listed in natural order of their names (`file_order`: 2.png before 10.png), the order
in which "the first N" (--max_train_images, --max_val_images) are taken.
Every image is brought to `size` = (H, W) by one of `RESIZE_MODES`:

  stretch   resized to H x W, ignoring the aspect ratio
  crop      scaled to cover H x W, the centre cut out
  pad       scaled to fit inside H x W, the border filled (black; for label maps the
            colour only ignored classes of the palette use, so the border is not scored)

Two kinds of part (`PHOTO`, `LABEL_MAP`):
  photo       bicubic resizing (antialiased when shrinking, as PIL does). Grey files
              (modes 1, L, LA, I, I;16) give one channel, colour files (RGB, RGBA,
              P, CMYK, YCbCr, ...) three; alpha is dropped, 16-bit grey is scaled to
              8 bits. A folder must not mix grey and colour files.
  label map   nearest-neighbour resizing, so no colour is invented. Colour files must
              hold palette colours only, unless `snap` (--snap_label_colours) lets
              each pixel move to the nearest palette colour within that distance
              (lossy files, JPEG: `colour_snapping`; the count moved is reported);
              single-channel files (modes L, I, I;16, as Cityscapes' *_labelIds.png)
              hold class ids and are turned into the palette's colours. Either way the
              part is an RGB label map.

A paired folder may instead hold aligned pairs (pix2pix's format: A in the left half
of each file, B in the right half); `Item` says which half of a file a row comes from.

A folder is decoded once into an on-disk cache (`data.pools.DiskArray`), keyed by the
files (path, size, modification time) and the settings, so a rerun starts at once and
a folder larger than memory streams from disk (`load_pool`).
"""

import collections
import concurrent.futures
import dataclasses
import hashlib
import json
import os
from typing import Optional, Sequence

import numpy as np
import tqdm
from PIL import Image, ImageOps

from tf_factorgan import files
from tf_factorgan.config import SettingError, SettingPathError, named
from tf_factorgan.data import colour_snapping, file_order, pools
from tf_factorgan.data import palette as palettes

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
RESIZE_MODES = ("stretch", "crop", "pad")
PHOTO = "photo"
LABEL_MAP = "label_map"
GREY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F")
# Images decoded per cache-write batch: bounds memory while a folder is decoded.
DECODE_BATCH = 256
# Pools up to this size are read into memory (a graph constant, which must stay below
# TensorFlow's 2 GB limit); larger ones stream from the cache.
DEFAULT_MEMORY_LIMIT_MB = 1024
CACHE_VERSION = 2
# Beside a cache entry of snapped label maps: {"moved": pixels snapped, "pixels": all}.
SNAP_FILE = "snapped.json"


def parse_load_size(value, setting: str = "{load_size}") -> tuple[int, int]:
    """"128" or 128 -> (128, 128); "128,256" -> (128, 256) as (H, W). Each side must be
    a multiple of 16 and >= 16 (the U-Net halves it four times)."""
    text = str(value).replace("x", ",")
    try:
        sides = tuple(int(s) for s in text.split(","))
    except ValueError:
        sides = ()
    if len(sides) == 1:
        sides = sides * 2
    if len(sides) != 2 or any(s < 16 or s % 16 for s in sides):
        raise SettingError(f"{setting} must be S or H,W with each side a multiple of 16 and "
                         f">= 16 (e.g. 128 or 128,256), got {value!r}")
    return sides


def list_images(folder: str, setting: str) -> list[str]:
    """Paths of the image files directly in `folder`, in natural order of their names
    (`file_order`: 2.png before 10.png); fails naming the setting (`setting`, an error
    template's `{name}`) if the folder is missing or holds none."""
    if not os.path.isdir(folder):
        raise SettingPathError(f"{setting}={folder!r} is not a folder")
    paths = file_order.natural_sorted(os.path.join(folder, n) for n in os.listdir(folder)
                                      if n.lower().endswith(IMAGE_EXTENSIONS) and not n.startswith("."))
    if not paths:
        raise SettingPathError(f"{setting}={folder!r} holds no images ({', '.join(IMAGE_EXTENSIONS)})")
    return paths


def _stem(path: str) -> str:
    return os.path.splitext(os.path.basename(path))[0]


def _by_stem(paths: list[str], setting: str) -> dict:
    stems = collections.defaultdict(list)
    for path in paths:
        stems[_stem(path)].append(path)
    duplicates = {s: p for s, p in stems.items() if len(p) > 1}
    if duplicates:
        stem, clash = next(iter(sorted(duplicates.items())))
        raise SettingError(f"{setting}: {len(duplicates)} file stem(s) occur more than once, e.g. "
                         f"{', '.join(map(os.path.basename, clash))}; keep one file per stem")
    return {s: p[0] for s, p in stems.items()}


def match_stems(a_folder: str, b_folder: str, a_setting: str, b_setting: str) -> list[tuple[str, str]]:
    """(a path, b path) of every stem present in both folders, in natural order of the
    stems (`file_order`: the order "the first N" takes them in). Fails,
    listing the first unmatched files and the counts, unless every file has a partner."""
    a = _by_stem(list_images(a_folder, a_setting), a_setting)
    b = _by_stem(list_images(b_folder, b_setting), b_setting)
    only_a, only_b = sorted(set(a) - set(b)), sorted(set(b) - set(a))
    if only_a or only_b:
        def listed(stems, paths):
            shown = ", ".join(os.path.basename(paths[s]) for s in stems[:5])
            return f"{len(stems)} ({shown}{' ...' if len(stems) > 5 else ''})" if stems else "0"

        raise SettingError(
            f"paired folders do not match by file stem: {len(set(a) & set(b))} stems match; "
            f"only in {a_setting}={a_folder!r}: {listed(only_a, a)}; only in {b_setting}="
            f"{b_folder!r}: {listed(only_b, b)}. Paired files must share their name "
            f"before the extension")
    return [(a[s], b[s]) for s in sorted(a, key=file_order.natural_key)]


@dataclasses.dataclass(frozen=True)
class PartSpec:
    """How one part's files become rows: kind (PHOTO or LABEL_MAP), size (H, W),
    resize mode, the palette of a label map, and snap: how far (Euclidean, RGB
    0..255) a label map's colours may lie from the palette's to be moved onto them
    (0: exact colours only)."""

    kind: str
    size: tuple
    resize: str = "stretch"
    palette: Optional[palettes.Palette] = None
    snap: float = 0.0

    def __post_init__(self):
        if self.kind not in (PHOTO, LABEL_MAP):
            raise ValueError(f"part kind must be {PHOTO!r} or {LABEL_MAP!r}, got {self.kind!r}")
        if self.resize not in RESIZE_MODES:
            raise SettingError(f"{{resize}} must be one of {', '.join(RESIZE_MODES)}, got {self.resize!r}")
        if self.kind == LABEL_MAP and self.palette is None:
            raise ValueError("label maps need a palette")
        if self.resize == "pad":
            self.fill()  # validates, before any file is decoded
        if not self.snap >= 0:
            raise SettingError(f"{{snap_label_colours}} must be >= 0, got {self.snap}")

    @property
    def snaps(self) -> bool:
        """Whether colour label maps are snapped to the palette on decoding."""
        return self.kind == LABEL_MAP and self.snap > 0

    def key(self) -> dict:
        palette = self.palette.to_json() if self.palette is not None else None
        key = {"kind": self.kind, "size": list(self.size), "resize": self.resize, "palette": palette}
        if self.snaps:  # only then: the caches of exact label maps keep their keys
            key["snap"] = float(self.snap)
        return key

    def fill(self) -> tuple:
        """The colour of padded borders: black, or for label maps a colour that only
        ignored classes use, so the border is never scored."""
        if self.kind == PHOTO:
            return (0, 0, 0)
        ignored_only = self.palette.full_colours()[len(self.palette.evaluated):]
        if not len(ignored_only):
            raise SettingError("{resize}=pad needs a palette colour that only ignored classes "
                             "use, to fill the border of label maps with")
        return tuple(int(round(c * 255)) for c in ignored_only[0])


def _is_grey(image: Image.Image) -> bool:
    return image.mode in GREY_MODES


# A row's source: a file, and None (the whole image) or 0 / 1 (its left / right half).
Item = tuple


def whole(paths: Sequence[str]) -> list[Item]:
    return [(path, None) for path in paths]


def halves(paths: Sequence[str], half: int) -> list[Item]:
    return [(path, half) for path in paths]


def _open(path: str, half: Optional[int] = None, load: bool = True) -> Image.Image:
    """The image (or its left / right half); `load=False` reads the header only."""
    try:
        image = Image.open(path)
        if load:
            image.load()
            # As displayed: phone photos store their rotation in EXIF, label maps
            # drawn on them follow the displayed orientation.
            image = ImageOps.exif_transpose(image)
        if half is not None:
            if image.width < 2:
                raise ValueError("too narrow to hold two halves")
            width = image.width // 2
            image = image.crop((half * width, 0, (half + 1) * width, image.height))
        return image
    except (OSError, Image.DecompressionBombError, SyntaxError, ValueError) as error:
        raise ValueError(f"cannot read image {path!r}: {error}") from None


def _fit(image: Image.Image, spec: PartSpec, resample) -> Image.Image:
    """`image` brought to spec.size ((H, W)) by spec.resize."""
    height, width = spec.size
    if spec.resize == "stretch":
        return image.resize((width, height), resample)
    scale = (max if spec.resize == "crop" else min)(width / image.width, height / image.height)
    scaled = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))), resample)
    left, top = (scaled.width - width) // 2, (scaled.height - height) // 2
    if spec.resize == "crop":
        return scaled.crop((left, top, left + width, top + height))
    fill = spec.fill()
    canvas = Image.new(scaled.mode, (width, height), fill[0] if len(scaled.getbands()) == 1 else fill)
    canvas.paste(scaled, (-left, -top))
    return canvas


def _photo(image: Image.Image, spec: PartSpec) -> np.ndarray:
    if _is_grey(image):
        if image.mode.startswith("I") or image.mode == "F":
            # 16-bit grey: keep the top 8 bits.
            array = np.asarray(image, np.float64)
            image = Image.fromarray(np.clip(array / 257.0, 0, 255).round().astype(np.uint8))
        image = image.convert("L")
    else:
        image = image.convert("RGB")  # drops alpha, expands palette and CMYK images
    array = np.asarray(_fit(image, spec, Image.BICUBIC))
    return array[..., None] if array.ndim == 2 else array


def _label_map(image: Image.Image, spec: PartSpec, path: str) -> tuple[np.ndarray, int]:
    """(uint8 [H, W, 3] label map, pixels of the file moved onto palette colours)."""
    moved = 0
    if image.mode in ("L", "I", "I;16", "I;16B", "I;16L"):
        ids = np.asarray(image).astype(np.int64)
        colours = spec.palette.ids_to_colours(ids, path)
    elif spec.snaps:
        # Before resizing: nearest-neighbour resizing then picks snapped colours only.
        colours, moved = colour_snapping.snap(np.asarray(image.convert("RGB")), spec.palette, spec.snap, path)
    else:
        colours = np.asarray(image.convert("RGB"))
        try:
            spec.palette.colours_to_ids(colours, path)  # validates: palette colours only
        except ValueError as error:
            raise SettingError(f"{error}, or let {{snap_label_colours}}=D move each pixel to the "
                               f"nearest palette colour within D") from None
    fitted = _fit(Image.fromarray(np.ascontiguousarray(colours, np.uint8)), spec, Image.NEAREST)
    return np.asarray(fitted), moved


def _decoded(item: Item, spec: PartSpec) -> tuple[np.ndarray, int, int]:
    """(row, pixels snapped, pixels) of one file (or half): see `decode`."""
    path, half = item
    with _open(path, half) as image:
        pixels = image.width * image.height
        if spec.kind == PHOTO:
            return _photo(image, spec), 0, pixels
        return (*_label_map(image, spec, path), pixels)


def decode(item: Item, spec: PartSpec) -> np.ndarray:
    """One row as uint8 [H, W, C] (C = 1 or 3 for photos, 3 for label maps)."""
    return _decoded(item, spec)[0]


def snap_report(setting: str, moved: int, pixels: int, max_distance: float, cached: bool = False) -> str:
    """The one line that says how many label-map pixels moved onto palette colours."""
    share = moved / pixels if pixels else 0.0
    return (f"{named(setting, '--')}: moved {moved} of {pixels} label-map pixels ({share:.1%}) to the "
            f"nearest palette colour (--snap_label_colours={max_distance:g})"
            + (" when it was decoded (cached)" if cached else ""))


def channels(items: Sequence[Item], spec: PartSpec, setting: str) -> int:
    """1 or 3: the channel count every file of a part agrees on (read from the
    headers only). Fails naming both kinds when grey and colour files mix."""
    if spec.kind == LABEL_MAP:
        return 3
    grey, colour = [], []
    for path, _ in items:
        with _open(path, load=False) as image:
            (grey if _is_grey(image) else colour).append(path)
    if grey and colour:
        raise SettingError(
            f"{setting} mixes grey and colour images: {len(grey)} grey (e.g. "
            f"{os.path.basename(grey[0])}) and {len(colour)} colour (e.g. "
            f"{os.path.basename(colour[0])}); convert them to one kind")
    return 1 if grey else 3


def _cache_key(items: Sequence[Item], spec: PartSpec, num_channels: int) -> str:
    listing = []
    for path, half in items:
        stat = os.stat(path)
        listing.append([os.path.abspath(path), half, stat.st_size, stat.st_mtime_ns])
    text = json.dumps({"version": CACHE_VERSION, "files": listing, "spec": spec.key(),
                       "channels": num_channels}, sort_keys=True)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


_KINDS = {1: "grey", 3: "colour"}


def decode_to_cache(items: Sequence[Item], spec: PartSpec, cache_dir: str, setting: str,
                    progress: bool = True, paired_channels: Optional[int] = None) -> pools.DiskArray:
    """The rows of one part as a DiskArray uint8 [N, H, W, C] in `cache_dir`, decoded
    on the first call only (threads decode; memory holds one batch). Unpaired images
    pass `paired_channels`, the paired images' C: grey among colour ones (or the other
    way round) fails from the headers, before anything is decoded."""
    num_channels = channels(items, spec, setting)
    if paired_channels is not None and num_channels != paired_channels:
        raise SettingError(f"{setting} holds {_KINDS[num_channels]} images, the paired ones are "
                         f"{_KINDS[paired_channels]}; convert them to one kind")
    folder = os.path.join(cache_dir, _cache_key(items, spec, num_channels))
    try:
        cached = pools.read_disk_array(folder)
        if spec.snaps:
            tally = files.read_json(os.path.join(folder, SNAP_FILE))
            print(snap_report(setting, tally["moved"], tally["pixels"], spec.snap, cached=True))
        return cached
    except (OSError, ValueError, KeyError):
        pass  # not cached yet, or a damaged entry: decode again
    tally = {"moved": 0, "pixels": 0}

    def batches():
        with concurrent.futures.ThreadPoolExecutor(min(8, os.cpu_count() or 1)) as pool, \
                tqdm.tqdm(total=len(items), desc=f"decoding {named(setting, '--')}", unit="img",
                          disable=not progress) as bar:
            for start in range(0, len(items), DECODE_BATCH):
                chunk = items[start:start + DECODE_BATCH]
                decoded = list(pool.map(lambda item: _decoded(item, spec), chunk))
                tally["moved"] += sum(moved for _, moved, _ in decoded)
                tally["pixels"] += sum(pixels for _, _, pixels in decoded)
                bar.update(len(chunk))
                yield np.stack([row for row, _, _ in decoded])

    then = "then run the same command again, or choose {image_cache_dir} elsewhere"
    with files.explained_write_errors(cache_dir, then), \
            files.writing_into(cache_dir, tidy=True) as removed:
        if removed:
            print(f"Removed what interrupted decodes left in {cache_dir}: {', '.join(removed)}")
        written = pools.write_disk_array(folder, batches(), (*spec.size, num_channels), np.uint8,
                                         len(items))
        if spec.snaps:
            files.write_json(os.path.join(folder, SNAP_FILE), tally)
            print(snap_report(setting, tally["moved"], tally["pixels"], spec.snap))
        return written


def load_pool(items: Sequence[Item], spec: PartSpec, cache_dir: str, setting: str,
              memory_limit_mb: float = DEFAULT_MEMORY_LIMIT_MB, progress: bool = True,
              paired_channels: Optional[int] = None) -> pools.Pool:
    """A part's pool: in memory when it is at most `memory_limit_mb`, else on disk
    (`paired_channels`: as `decode_to_cache`)."""
    disk = decode_to_cache(items, spec, cache_dir, setting, progress, paired_channels)
    return disk.to_memory() if disk.nbytes <= memory_limit_mb * 2**20 else disk
