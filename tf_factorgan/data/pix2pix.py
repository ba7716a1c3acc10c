"""Aligned image pairs in pix2pix's on-disk format, and their download.

A pix2pix dataset is a folder `<root>` with `<root>/train/` and `<root>/val/`, each full
of .jpg/.jpeg/.png files. Every file holds one pair side by side: A in the left half, B
in the right half, so the image is exactly twice as wide as high. For pix2pix's
`cityscapes` A is the street photo and B its colour label map; for `edges2shoes` A is
the edge map and B the shoe photo.

Pairs are loaded once into uint8 arrays (`AlignedPairs`); training streams gather
batches from them (`streams.aligned_streams`), scaled to [0, 1] only then.
"""

import dataclasses
import http.client
import os
import posixpath
import re
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zlib
from typing import Optional

import numpy as np
import tensorflow as tf
import tqdm
from PIL import Image

from tf_factorgan.config import SettingError, SettingPathError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
SPLITS = ("train", "val")
# The settings of a pix2pix folder and image size, as error templates name them.
DATASET_DIR_SETTING = "{dataset_dir}"
LOAD_SIZE_SETTING = "{load_size}"
# ITU-R 601-2 luma, the weights of PIL's convert("L") that pix2pix uses for grey input.
GREY_WEIGHTS = (0.299, 0.587, 0.114)
PIX2PIX_URL = "http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/{}.tar.gz"
PIX2PIX_DATASETS = {name: PIX2PIX_URL.format(name) for name in ("cityscapes", "edges2shoes")}
# dataset -> whether A becomes one grey channel (edge maps carry no colour).
GREY_A = {"cityscapes": False, "edges2shoes": True}
DOWNLOAD_COMMAND = "python -m trainers.download_pix2pix --dataset=cityscapes --out_dir=..."
HTTP_TIMEOUT_S = 60
CHUNK_BYTES = 1 << 20
# Images per tf.data batch while loading; only bounds the size of one transfer.
LOAD_BATCH = 64


@dataclasses.dataclass(frozen=True)
class AlignedPairs:
    """a: uint8 [N, S, S, Ca]; b: uint8 [N, S, S, Cb], both in 0..255; files: the
    source file of each row, in row order."""

    a: np.ndarray
    b: np.ndarray
    files: tuple[str, ...]

    def __len__(self):
        return len(self.files)

    def subset(self, count: int) -> "AlignedPairs":
        """The first `count` pairs."""
        return AlignedPairs(self.a[:count], self.b[:count], self.files[:count])

    @property
    def channels(self) -> tuple[int, int]:
        """(Ca, Cb): 3 for colour, 1 for grey."""
        return self.a.shape[-1], self.b.shape[-1]


def _layout_error(root: str, problem: str, setting: str) -> SettingPathError:
    return SettingPathError(
        f"pix2pix dataset folder {root!r} (from {setting}) {problem}; expected "
        f"<root>/train/*.jpg and <root>/val/*.jpg (.jpeg and .png also work), each "
        f"image A|B side by side (A left, B right), twice as wide as high. Download "
        f"one with: {DOWNLOAD_COMMAND}"
    )


def _is_image(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)


def check_layout(root: str, setting: str = DATASET_DIR_SETTING) -> None:
    """Fails with the expected layout unless `root` has non-empty train/ and val/ folders.

    Only folders and file names are checked; image sizes are checked while loading.
    """
    if not os.path.isdir(root):
        raise _layout_error(root, "does not exist", setting)
    for split in SPLITS:
        folder = os.path.join(root, split)
        if not os.path.isdir(folder):
            raise _layout_error(root, f"lacks the folder {split}/", setting)
        if not any(_is_image(name) for name in os.listdir(folder)):
            raise _layout_error(root, f"has no .jpg/.jpeg/.png images in {split}/", setting)


def check_load_size(load_size: int, setting: str = LOAD_SIZE_SETTING) -> None:
    """Image sizes must halve cleanly down the encoders: a power of two, at least 8."""
    if isinstance(load_size, bool) or not isinstance(load_size, (int, np.integer)):
        raise SettingError(f"{setting} must be an integer power of two >= 8, got {load_size!r}")
    if load_size < 8 or load_size & (load_size - 1):
        raise SettingError(f"{setting} must be a power of two >= 8 (8, 16, ..., 256), got {load_size}")


def list_images(root: str, split: str) -> list[str]:
    """Paths of the .jpg/.jpeg/.png files in `<root>/<split>/`, sorted by path."""
    folder = os.path.join(root, split)
    if not os.path.isdir(folder):
        raise _layout_error(root, f"lacks the folder {split}/", DATASET_DIR_SETTING)
    return sorted(os.path.join(folder, name) for name in os.listdir(folder) if _is_image(name))


def _check_pair_size(path: str) -> None:
    """A|B needs width == 2 * height; PIL reads only the header, not the pixels."""
    try:
        with Image.open(path) as image:
            width, height = image.size
    except (OSError, Image.DecompressionBombError) as error:
        raise ValueError(f"cannot read image {path!r}: {error}") from error
    if width != 2 * height:
        raise ValueError(
            f"image {path!r} is {width}x{height} (width x height); a pix2pix pair "
            f"must be exactly twice as wide as high (A left, B right)"
        )


def _resize(image: tf.Tensor, size: int) -> tf.Tensor:
    """uint8 [H, W, C] -> float32 [size, size, C] in 0..255 (not rounded).

    antialias=True widens the bicubic kernel when shrinking, as PIL's BICUBIC resize
    (which pix2pix's loaders use) does; without it downsampling would alias.
    """
    resized = tf.image.resize(image, [size, size], method="bicubic", antialias=True)
    return tf.clip_by_value(resized, 0.0, 255.0)


def _to_uint8(image: tf.Tensor) -> tf.Tensor:
    return tf.cast(tf.round(image), tf.uint8)


def _pair_loader(load_size: int, grey_a: bool):
    """Returns `(index, path) -> (index, a uint8 [S, S, Ca], b uint8 [S, S, 3])`."""

    def load(index, path):
        image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        half = tf.shape(image)[1] // 2
        a = _resize(image[:, :half], load_size)
        b = _resize(image[:, half:], load_size)
        if grey_a:
            # From the unrounded resized colours: one rounding, like a grey resize.
            a = tf.reduce_sum(a * tf.constant(GREY_WEIGHTS), axis=-1, keepdims=True)
        return index, _to_uint8(a), _to_uint8(b)

    return load


def _undecodable_error(paths: list[str]) -> ValueError:
    """Names the files that failed inside tf.data, with TensorFlow's reason for the first."""
    try:
        tf.io.decode_image(tf.io.read_file(paths[0]), channels=3, expand_animations=False)
        reason = "it failed inside the loading pipeline"
    except tf.errors.OpError as error:
        # Drop TensorFlow's op decorations around the reason.
        reason = re.sub(r"\{\{.*?\}\}|\[Op:.*", "", error.message.strip().splitlines()[-1]).strip()
    shown = ", ".join(repr(p) for p in paths[:5]) + (" ..." if len(paths) > 5 else "")
    return ValueError(
        f"cannot decode {len(paths)} image file(s): {shown} (the first: {reason}); "
        f"re-download or remove them"
    )


def load_aligned(
    root: str,
    split: str,
    load_size: int,
    grey_a: bool = False,
    max_images: Optional[int] = None,
) -> AlignedPairs:
    """Loads `<root>/<split>/` into memory as resized A and B halves.

    Files are read in sorted order (so `max_images` takes the first ones), decoded to
    3 channels, split at half width, each half resized to load_size x load_size with
    antialiased bicubic interpolation and rounded back to uint8.

    Args:
      root: pix2pix dataset folder (see the module docstring).
      split: a sub-folder of root, "train" or "val".
      load_size: output side S, a power of two >= 8.
      grey_a: turn A into one grey channel (0.299 R + 0.587 G + 0.114 B).
      max_images: load only the first this many files (None: all).

    Returns:
      AlignedPairs with a uint8 [N, S, S, 1 or 3] and b uint8 [N, S, S, 3].
    """
    check_load_size(load_size)
    if max_images is not None and max_images < 1:
        raise ValueError(f"max_images must be None or >= 1, got {max_images}")
    paths = list_images(root, split)
    if not paths:
        raise _layout_error(root, f"has no .jpg/.jpeg/.png images in {split}/", DATASET_DIR_SETTING)
    paths = paths[:max_images]
    for path in paths:
        _check_pair_size(path)

    dataset = (
        tf.data.Dataset.from_tensor_slices((tf.range(len(paths), dtype=tf.int64), paths))
        .map(
            _pair_loader(load_size, grey_a),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
        # A decode error inside tf.data does not say which file; skipping failed
        # elements and looking for missing indices afterwards does.
        .ignore_errors()
        .batch(LOAD_BATCH)
        .prefetch(1)
    )
    # Filled in place by index: no second copy of the arrays while loading.
    a_all = np.empty([len(paths), load_size, load_size, 1 if grey_a else 3], np.uint8)
    b_all = np.empty([len(paths), load_size, load_size, 3], np.uint8)
    loaded = np.zeros([len(paths)], bool)
    for index, a, b in dataset.as_numpy_iterator():
        a_all[index], b_all[index], loaded[index] = a, b, True
    if not loaded.all():
        raise _undecodable_error([paths[i] for i in np.flatnonzero(~loaded)])
    return AlignedPairs(a_all, b_all, tuple(paths))


class DownloadError(OSError):
    """A download failed on the network; the message says how to go on by hand."""


def _download_error(url: str, target: str, part: str, error) -> DownloadError:
    name = os.path.basename(target)
    has_part = os.path.exists(part) and os.path.getsize(part) > 0
    resume = f"Re-running resumes from {part!r}. " if has_part else ""
    return DownloadError(
        f"could not download {url}: {error}. {resume}Without "
        f"network access, download the archive by hand and unpack it (tar -xzf "
        f"{name}.tar.gz -C {os.path.dirname(target) or '.'}) so that "
        f"{target}/train/*.jpg and {target}/val/*.jpg exist."
    )


def _open(url: str, offset: int):
    """Opens `url`, asking for bytes from `offset` on when it is positive."""
    request = urllib.request.Request(url, headers={"User-Agent": "tf_factorgan"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    return urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S)


def _resume_total(response, offset: int) -> Optional[int]:
    """Total size from a 206 answer; fails if it does not start at `offset`."""
    match = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+|\*)", response.headers.get("Content-Range", ""))
    if not match or int(match.group(1)) != offset:
        raise http.client.HTTPException(
            f"server answered a range request for bytes {offset}- with Content-Range "
            f"{response.headers.get('Content-Range')!r}"
        )
    return None if match.group(3) == "*" else int(match.group(3))


def _fetch(url: str, part: str, desc: str, progress: bool) -> None:
    """Downloads `url` into `part`, appending to what an earlier attempt left there."""
    offset = os.path.getsize(part) if os.path.exists(part) else 0
    try:
        response = _open(url, offset)
    except urllib.error.HTTPError as error:
        if error.code != 416 or not offset:
            raise
        # Range not satisfiable: the .part is as long as (or longer than) the file,
        # so its end cannot be trusted; start over.
        offset = 0
        response = _open(url, offset)
    with response:
        if offset and response.status == 206:
            total = _resume_total(response, offset)
            mode = "ab"
        else:
            # 200 to a range request: the server ignores Range and sends everything.
            offset = 0
            length = response.headers.get("Content-Length")
            total = int(length) if length else None
            mode = "wb"
        with open(part, mode) as f, tqdm.tqdm(
            total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
            desc=desc, disable=not progress,
        ) as bar:
            while chunk := response.read(CHUNK_BYTES):
                f.write(chunk)
                bar.update(len(chunk))
    size = os.path.getsize(part)
    if total is not None and size != total:
        raise http.client.HTTPException(f"got {size} of {total} bytes")


def _archive_error(archive: str, problem: str) -> ValueError:
    return ValueError(
        f"archive {archive!r} {problem}; delete it to download again, or unpack a "
        f"good copy by hand"
    )


def _safe_members(tar: tarfile.TarFile, archive: str, name: str) -> list[tarfile.TarInfo]:
    """All members, after checking that none escapes the target folder and that the
    archive holds `<name>/train/` and `<name>/val/` images."""
    splits_found = set()
    members = tar.getmembers()
    for member in members:
        path = member.name
        parts = path.replace("\\", "/").split("/")
        if path.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", path) or ".." in parts:
            raise _archive_error(archive, f"has the member {path!r} outside its folder")
        if not (member.isfile() or member.isdir()):
            # pix2pix archives hold only files and folders; links could point anywhere.
            raise _archive_error(archive, f"has the link or special file {path!r}")
        parts = posixpath.normpath(path).split("/")
        if member.isfile() and len(parts) == 3 and parts[0] == name and _is_image(parts[2]):
            splits_found.add(parts[1])
    missing = [s for s in SPLITS if s not in splits_found]
    if missing:
        raise _archive_error(
            archive, f"holds no images in {', '.join(f'{name}/{s}/' for s in missing)}"
        )
    return members


def _unpack(archive: str, target: str) -> None:
    """Checks `archive` and unpacks its `<name>/` folder to `target` atomically."""
    out_dir = os.path.dirname(target)
    name = os.path.basename(target)
    staging = tempfile.mkdtemp(prefix=f".tmp-{name}-", dir=out_dir)
    try:
        try:
            with tarfile.open(archive, "r:gz") as tar:
                members = _safe_members(tar, archive, name)
                # The "data" filter re-checks paths and drops unsafe modes as well.
                tar.extractall(staging, members=members, filter="data")
        except (tarfile.TarError, EOFError, zlib.error) as error:
            raise _archive_error(archive, f"is not a readable .tar.gz ({error})") from error
        # A rename within out_dir: readers see no folder or the complete one.
        os.rename(os.path.join(staging, name), target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def download(
    name: str, out_dir: str, url: Optional[str] = None, progress: bool = True
) -> str:
    """Downloads and unpacks a pix2pix dataset to `<out_dir>/<name>`; returns that path.

    A folder that already passes `check_layout` is returned as it is. The archive is
    fetched to `<out_dir>/<name>.tar.gz.part` (an interrupted download resumes with an
    HTTP Range request), renamed to `<name>.tar.gz` once complete, checked (it must
    hold `<name>/train/` and `<name>/val/` images, and no member may be a link or lie
    outside the folder it is unpacked in), unpacked, and then deleted.

    Args:
      name: "cityscapes" or "edges2shoes"; any folder name when `url` is given.
      out_dir: parent folder of the dataset, created if needed.
      url: archive to fetch instead of pix2pix's own.
      progress: show a progress bar.
    """
    if url is None:
        if name not in PIX2PIX_DATASETS:
            raise ValueError(
                f"unknown pix2pix dataset {name!r}; choose one of {', '.join(PIX2PIX_DATASETS)} "
                f"or give its url"
            )
        url = PIX2PIX_DATASETS[name]
    if not name or name in (".", "..") or "/" in name or "\\" in name:
        raise ValueError(f"dataset name must be a plain folder name, got {name!r}")
    target = os.path.join(out_dir, name)
    if os.path.exists(target):
        try:
            check_layout(target)
            return target
        except FileNotFoundError as error:
            # Never overwrite a folder that may hold someone's files.
            raise FileExistsError(
                f"{target!r} exists but is not a complete pix2pix dataset; move it away "
                f"and run again. {error}"
            ) from error
    os.makedirs(out_dir or ".", exist_ok=True)
    archive = target + ".tar.gz"
    part = archive + ".part"
    if not os.path.exists(archive):  # else an earlier run finished the download
        try:
            _fetch(url, part, name, progress)
        except (OSError, http.client.HTTPException) as error:
            raise _download_error(url, target, part, error) from error
        os.replace(part, archive)
    _unpack(archive, target)
    os.remove(archive)
    return target
