"""Small synthetic datasets in pix2pix's on-disk format (A|B side by side, JPEG).

For "segmentation" (like pix2pix's cityscapes) B is a colour label map of a few
rectangles and discs in Cityscapes colours and A a "photo" of the same shapes in other
colours with a little noise, so A determines B. For "edges" (like edges2shoes) B is a
shape "photo" and A its white-on-black edges.
"""

import os

import numpy as np
from PIL import Image

# Cityscapes label colours of the classes drawn; index = class id.
LABEL_COLOURS = np.array(
    [
        (128, 64, 128),  # road
        (70, 130, 180),  # sky
        (0, 0, 142),  # car
        (107, 142, 35),  # vegetation
        (70, 70, 70),  # building
    ],
    dtype=np.uint8,
)
# The "photo" colour of each class: fixed and distinct, so a photo determines its map.
PHOTO_COLOURS = np.array(
    [(90, 90, 95), (200, 220, 240), (180, 30, 30), (40, 110, 40), (150, 120, 90)],
    dtype=np.float64,
)
PHOTO_NOISE = 4.0
KINDS = ("segmentation", "edges")


def _class_map(rng: np.random.Generator, size: int) -> np.ndarray:
    """int [size, size] class ids: a background class and 2-3 rectangles or discs."""
    num_classes = len(LABEL_COLOURS)
    classes = rng.permutation(num_classes)
    ids = np.full([size, size], classes[0])
    yy, xx = np.mgrid[:size, :size]
    for cls in classes[1 : 1 + rng.integers(2, 4)]:
        if rng.random() < 0.5:
            y0, x0 = rng.integers(0, size - size // 4, size=2)
            h, w = rng.integers(size // 4, size // 2 + 1, size=2)
            ids[y0 : y0 + h, x0 : x0 + w] = cls
        else:
            cy, cx = rng.integers(size // 4, size - size // 4, size=2)
            radius = rng.integers(size // 8 + 1, size // 3 + 1)
            ids[(yy - cy) ** 2 + (xx - cx) ** 2 <= radius**2] = cls
    return ids


def _photo(rng: np.random.Generator, ids: np.ndarray) -> np.ndarray:
    """uint8 [S, S, 3]: each class in its photo colour plus Gaussian noise."""
    noisy = PHOTO_COLOURS[ids] + rng.normal(0.0, PHOTO_NOISE, size=ids.shape + (3,))
    return np.clip(np.round(noisy), 0, 255).astype(np.uint8)


def _edges(ids: np.ndarray) -> np.ndarray:
    """uint8 [S, S, 3]: white where a pixel's right or lower neighbour has another class."""
    edge = np.zeros(ids.shape, dtype=bool)
    edge[:, :-1] |= ids[:, :-1] != ids[:, 1:]
    edge[:-1, :] |= ids[:-1, :] != ids[1:, :]
    return np.repeat(edge[..., None] * np.uint8(255), 3, axis=-1)


def make_pair(rng: np.random.Generator, height: int, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """(A, B), each uint8 [height, height, 3]."""
    ids = _class_map(rng, height)
    if kind == "segmentation":
        return _photo(rng, ids), LABEL_COLOURS[ids]
    return _edges(ids), _photo(rng, ids)


def write_pix2pix_dataset(
    root: str,
    num_train: int = 12,
    num_val: int = 6,
    height: int = 32,
    kind: str = "segmentation",
    seed: int = 0,
) -> str:
    """Writes `<root>/{train,val}/NNNN.jpg` (quality 95), each height x 2*height with A
    left and B right; the same seed gives the same files. Returns root."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    rng = np.random.default_rng(seed)
    for split, count in (("train", num_train), ("val", num_val)):
        folder = os.path.join(root, split)
        os.makedirs(folder, exist_ok=True)
        for i in range(count):
            a, b = make_pair(rng, height, kind)
            # Zero-padded names keep sorted order equal to creation order.
            Image.fromarray(np.concatenate([a, b], axis=1)).save(
                os.path.join(folder, f"{i:04d}.jpg"), quality=95
            )
    return root


# A 3-class user palette of the synthetic label maps (CSV, as `data/palette.py` reads);
# its ids are the rows of LABEL_COLOURS[:3] plus an ignored "void" class, 255.
USER_PALETTE_CSV = """id,name,r,g,b,ignored
0,road,128,64,128,no
1,sky,70,130,180,no
2,car,0,0,142,no
255,void,0,0,0,yes
"""


def write_image_folders(
    root: str, counts: dict, size: tuple = (24, 32), index_labels: bool = False, seed: int = 0
) -> dict:
    """Writes the folder layout of `data/image_folders.py` under `root`: for each name in
    `counts` ("paired", "val", "unpaired_a", "unpaired_b") that many images of size
    (H, W). Paired sets go to `<name>_a/NNNN.jpg` + `<name>_b/NNNN.png`, unpaired ones to
    `<name>/`. Label maps use classes 0..2 of USER_PALETTE_CSV, as colours or (with
    index_labels) as single-channel id PNGs. Writes `root/palette.csv`. Returns
    name -> folder(s)."""
    rng = np.random.default_rng(seed)
    height, width = size
    folders = {}

    def label_file(ids, path):
        image = ids.astype(np.uint8) if index_labels else LABEL_COLOURS[ids]
        Image.fromarray(image).save(path)

    for name, count in counts.items():
        paired = name in ("paired", "val")
        targets = [f"{name}_a", f"{name}_b"] if paired else [name]
        for target in targets:
            os.makedirs(os.path.join(root, target), exist_ok=True)
        for i in range(count):
            ids = _class_map(rng, max(height, width))[:height, :width] % 3
            if name != "unpaired_b":
                photo = Image.fromarray(_photo(rng, ids))
                photo.save(os.path.join(root, targets[0], f"{i:04d}.jpg"), quality=95)
            if name != "unpaired_a":
                label_file(ids, os.path.join(root, targets[-1], f"{i:04d}.png"))
        folders[name] = [os.path.join(root, t) for t in targets]
    with open(os.path.join(root, "palette.csv"), "w") as f:
        f.write(USER_PALETTE_CSV)
    return folders
