"""Settings and data shared by the image experiments (image pairs, image-to-image).

A sample is a pair (A, B): A the photo (or an edge map, one grey channel), B the label
map (or a photo). The data come from one of two kinds of source (`--dataset`):

  cityscapes, edges2shoes   a pix2pix folder (`data/pix2pix.py`, the paper's
                            benchmarks): the first `num_joint_samples` training images
                            (sorted file order) stay paired, the rest are used as
                            unpaired A and unpaired B; validation: its val/ folder.
  folders                   the user's own folders (`data/image_folders.py`): a paired
                            set (--paired_dir of aligned A|B files, or --paired_a_dir +
                            --paired_b_dir matched by file stem), optional unpaired A
                            and B folders, and a validation set in a paired form.

Either way the training data are `sources.Observations`: marginal streams draw from
every observation of their part, D_P and the GAN baseline from the paired set only.
B is a label map when the run has a palette (--palette, or the Cityscapes palette of
the cityscapes preset); segmentation metrics and the served class ids then use it.
"""

import dataclasses
import os
from typing import Optional

import numpy as np

from tf_factorgan import trainer
from tf_factorgan.data import image_folders, pix2pix, pools, sources, streams
from tf_factorgan.data import palette as palettes
from tf_factorgan.data import label_encoding
from tf_factorgan.config import DATA, EVALUATION, MODEL, SettingError, named, ref, setting
from tf_factorgan.experiments import common
from tf_factorgan.factorisation import Partition, Variant
from tf_factorgan.models.conv import ConvDiscriminator

FOLDERS = "folders"
DATASETS = (*pix2pix.GREY_A, FOLDERS)
# The parts of an image sample: A (photo or edge map), then B (label map or photo).
PART_NAMES = ("a", "b")
# Which part a conditional model takes as its input (`oriented`).
A_TO_B, B_TO_A = "a_to_b", "b_to_a"
DIRECTIONS = (A_TO_B, B_TO_A)
# Settings that name the folders of dataset="folders".
# Paired training images of a preset unless num_joint_samples says otherwise.
PRESET_JOINT_SAMPLES = 100
FOLDER_FLAGS = ("paired_dir", "paired_a_dir", "paired_b_dir", "unpaired_a_dir",
                "unpaired_b_dir", "val_dir", "val_a_dir", "val_b_dir")


@dataclasses.dataclass(frozen=True)
class ImageDataSettings(common.TrainingSettings):
    """The image data of a run (each field's help says what it sets): a pix2pix preset's
    folder (dataset_dir, default data/<dataset>, where `trainers.download_pix2pix` puts
    it) or the user's folders (dataset="folders"); max_*_images make quick trial runs;
    palette makes B a label map (`data/palette.py`); ls_*: the LS metric's repetitions
    and training epochs per repetition (image pairs; label map -> photo translation)."""

    dataset: str = setting(
        "cityscapes", "A pix2pix preset (edges2shoes: A becomes one grey channel), or 'folders' "
        "for your own images ({paired_dir} or {paired_a_dir} with {paired_b_dir}, "
        "{unpaired_a_dir}, {unpaired_b_dir}, {val_dir} or {val_a_dir} with {val_b_dir}).", DATA,
        choices=DATASETS)
    dataset_dir: str = setting("", "pix2pix folder with train/ and val/ (default: data/<dataset>, "
                               "where trainers.download_pix2pix puts it).", DATA)
    paired_dir: str = setting("", "Folders: aligned pairs, A left and B right in each file.", DATA)
    paired_a_dir: str = setting("", "Folders: paired A images (photos), matched to "
                                "{paired_b_dir} by file stem.", DATA)
    paired_b_dir: str = setting("", "Folders: paired B images (label maps).", DATA)
    unpaired_a_dir: str = setting("", "Folders: A images without a B (optional).", DATA)
    unpaired_b_dir: str = setting("", "Folders: B images without an A (optional).", DATA)
    val_dir: str = setting("", "Folders: validation pairs, aligned as {paired_dir}.", DATA)
    val_a_dir: str = setting("", "Folders: validation A images, by stem with {val_b_dir}.", DATA)
    val_b_dir: str = setting("", "Folders: validation B images.", DATA)
    palette: str = setting("", "Label classes of B (CSV or JSON: id, name, colour, ignored); "
                           "default: Cityscapes' for {dataset}=cityscapes, none otherwise.", DATA)
    snap_label_colours: float = setting(
        0.0, "Folders: label maps saved lossily (JPEG) have each pixel moved to the nearest palette "
        "colour within this distance (Euclidean, RGB 0..255; the count moved is printed); a pixel "
        "farther from every class fails naming its file. 0: exact palette colours only.", DATA,
        low=0, note="0 = exact colours only")
    resize: str = setting("stretch", "Folders: how images of other sizes reach {load_size}.", DATA,
                          choices=image_folders.RESIZE_MODES)
    image_cache_dir: str = setting("", "Decoded folders (default: {out_path}/image_cache).", DATA)
    memory_limit_mb: int = setting(image_folders.DEFAULT_MEMORY_LIMIT_MB, "Image pools larger "
                                   "than this stream from the cache on disk.", DATA, low=0)
    load_size: str = setting("64", "Image size: S, or H,W with {dataset}=folders (presets: a power "
                             "of two; folders: multiples of 16).", DATA)
    # None: the preset's 100; folders take none (every pair of the paired set is paired,
    # and the run records how many: `details`).
    num_joint_samples: Optional[int] = setting(
        None, "Presets only: paired training images, the first N of train/ with names sorted as "
        "text, as the original code (1, 10, 100, 1000, ...; default 100). {dataset}=folders pairs "
        "every file of the paired set ({max_train_images}=N: its first N, in natural order: "
        "1, 2, ..., 10) and records that count as num_joint_samples.", DATA, low=1)
    disc_channels: int = setting(32, "First-layer filters of every discriminator.", MODEL, low=1)
    max_train_images: int = setting(0, "Use only the first N training images (0 = all).", DATA,
                                    low=0, note="0 = all")
    max_val_images: int = setting(0, "Use only the first N validation images (0 = all).",
                                  EVALUATION, low=0, note="0 = all")
    mirror: bool = setting(False, "Flip training images left-right at random (a pair together; "
                           "pix2pix's mirroring).", DATA)
    jitter: float = setting(0.0, "Random jitter of training images: enlarge by this fraction "
                            "(nearest neighbour: label maps keep their classes) and crop a random "
                            "window of {load_size} back, a pair together (pix2pix: 286/256 - 1 = "
                            "0.117). 0: none.", DATA, low=0, high=1, note="0 = none")
    ls_runs: int = setting(10, "LS metric: fresh discriminators trained.", EVALUATION, low=1)
    ls_epochs: int = setting(40, "LS metric: epochs per discriminator (the original LS code: 40).",
                             EVALUATION, low=1)

    def __post_init__(self):
        super().__post_init__()
        object.__setattr__(self, "load_size", str(self.load_size))
        if self.dataset == FOLDERS:
            self._check_folder_flags()
            if self.snap_label_colours and not self.palette:
                raise SettingError("{snap_label_colours} snaps label maps to the colours of "
                                   "{palette}: give the palette's file")
            if self.num_joint_samples is not None:
                raise SettingError(
                    f"{{num_joint_samples}}={self.num_joint_samples} applies to the presets; "
                    "{dataset}=folders pairs every file of the paired set (use "
                    "{max_train_images}=N for its first N, in natural order)")
        else:
            given = [ref(name) for name in FOLDER_FLAGS if getattr(self, name)]
            if given:
                raise SettingError(f"{', '.join(given)} need {{dataset}}=folders (got "
                                   f"{{dataset}}={self.dataset})")
            if self.snap_label_colours:
                raise SettingError(f"{{snap_label_colours}} applies to {{dataset}}=folders; the "
                                   f"{self.dataset} preset snaps label colours as it reads them")
            pix2pix.check_load_size(int(self.load_size) if self.load_size.strip().isdigit() else self.load_size)
            if self.num_joint_samples is None:
                object.__setattr__(self, "num_joint_samples", PRESET_JOINT_SAMPLES)
        self.image_size  # validates

    @classmethod
    def upgraded(cls, recorded: dict) -> dict:
        """Folder runs of earlier versions recorded num_joint_samples=100, which they
        never used: it reads as this version's None."""
        recorded = super().upgraded(recorded)
        if recorded.get("dataset") == FOLDERS and recorded.get("num_joint_samples") is not None:
            recorded = {**recorded, "num_joint_samples": None}
        return recorded

    def _check_folder_flags(self) -> None:
        def one_form(kind: str, required: bool) -> None:
            aligned = getattr(self, f"{kind}_dir")
            split = getattr(self, f"{kind}_a_dir"), getattr(self, f"{kind}_b_dir")
            if aligned and any(split):
                raise SettingError(f"give {{{kind}_dir}} (aligned A|B files) or {{{kind}_a_dir}} "
                                   f"with {{{kind}_b_dir}} (matched by file stem), not both")
            if any(split) and not all(split):
                raise SettingError(f"{{{kind}_a_dir}} and {{{kind}_b_dir}} go together")
            if required and not (aligned or all(split)):
                raise SettingError(f"{{dataset}}=folders needs a {kind} set: {{{kind}_dir}} or "
                                   f"{{{kind}_a_dir}} with {{{kind}_b_dir}}")

        one_form("paired", True)
        one_form("val", True)

    @property
    def data_dir(self) -> str:
        return self.dataset_dir or os.path.join("data", self.dataset)

    @property
    def image_size(self) -> tuple[int, int]:
        """(H, W) of every image (a preset's: its one power-of-two side)."""
        if self.dataset != FOLDERS:
            side = int(self.load_size)
            return side, side
        return image_folders.parse_load_size(self.load_size)

    @property
    def uses_unpaired(self) -> bool:
        """Whether the model reads unpaired images: every variant but the GAN, whose one
        discriminator sees pairs only (`layout.layout`); CycleGAN reads them all."""
        return self.variant != Variant.GAN.value

    @property
    def has_label_maps(self) -> bool:
        """Whether B is a label map (scored as segmentation): a palette is given, or
        the cityscapes preset brings its own."""
        return bool(self.palette) or self.dataset == "cityscapes"

    @property
    def cache_dir(self) -> str:
        return self.image_cache_dir or os.path.join(self.out_path, "image_cache")


@dataclasses.dataclass(frozen=True)
class ImageData:
    """observations: the training pairs and unpaired images (uint8 pools [N, H, W, C]);
    val: the validation pairs in memory; palette: the label classes of the label maps
    (None: no part is a label map); encodings: per part, the `LabelEncoding` of a
    label-map part or None (a photo). Part 0 is A and part 1 B, unless `oriented`
    swapped them (a conditional model's input is part 0). unpaired_aligned: row n of
    the unpaired A pool and of the unpaired B pool come from one image too (a preset's
    simulated incompleteness), so every training image is an aligned pair. ignored:
    what the run's model leaves unused (the GAN trains on the pairs only), as phrases
    that write settings as `{name}`: "{unpaired_a_dir}" (a folder it did not read), or
    "1475 training images after the first {num_joint_samples}" (a preset's rest)."""

    observations: sources.Observations
    val: pix2pix.AlignedPairs
    palette: Optional[palettes.Palette] = None
    encodings: tuple = (None, None)
    unpaired_aligned: bool = False
    ignored: tuple = ()

    def summary(self) -> dict:
        """The counts of the training data the model uses (`Observations.summary`),
        and what it ignores (settings named bare): a GAN's record has num_paired and
        ignored, no unpaired counts."""
        if not self.ignored:
            return self.observations.summary()
        return {"num_paired": self.observations.num_paired, "ignored": [named(i) for i in self.ignored]}

    def describe(self) -> str:
        """One line for the terminal: what trains, what is ignored, the validation pairs."""
        if not self.ignored:
            used = self.observations.describe()
        else:
            shapes = ", ".join(f"{name} {tuple(pool.shape[1:])}" for name, pool in
                               zip(self.observations.part_names, self.observations.paired))
            used = (f"data: {self.observations.num_paired} paired samples ({shapes}); ignored, as "
                    f"the GAN trains on the pairs only: {named(', '.join(self.ignored), '--')}")
        return f"{used}, {len(self.val)} validation pairs"

    def aligned(self) -> sources.Observations:
        """Every aligned training pair as paired observations: the paired set, and
        the unpaired rows where they are aligned (presets)."""
        observations = self.observations
        paired = observations.paired
        if self.unpaired_aligned and all(p is not None for p in observations.unpaired):
            paired = tuple(pools.concat([p, u]) for p, u in zip(paired, observations.unpaired))
        return sources.Observations(paired, (None,) * len(paired), observations.part_names)

    @property
    def partition(self) -> Partition:
        """Channels of part 0, then of part 1, in the networks' form."""
        return Partition(tuple(encoding.channels if encoding else int(pool.shape[-1])
                               for pool, encoding in zip(self.observations.paired, self.encodings)))

    @property
    def label_part(self) -> Optional[int]:
        """The part that is a label map (None: none is)."""
        return next((i for i, e in enumerate(self.encodings) if e is not None), None)

    def encoded(self, part: int, images: np.ndarray) -> np.ndarray:
        """uint8 [N, H, W, C] images of `part` -> float32 in the networks' form."""
        encoding = self.encodings[part]
        if encoding is None:
            return as_float(images)
        return label_encoding.encode_numpy(encoding, images)

    def shown(self, part: int, values) -> np.ndarray:
        """float [N, H, W, channels] of `part` in the networks' form -> float32 images
        in [0, 1] to look at (a label map's class colours)."""
        encoding = self.encodings[part]
        return np.asarray(values, np.float32) if encoding is None else encoding.to_rgb(values).numpy()

    def encoders(self) -> tuple:
        """Per part, the input pipeline's encoder (`sources.training_streams`)."""
        return tuple(None if e is None else e.encode for e in self.encodings)

    @property
    def sample_shape(self) -> tuple[int, int, int]:
        """[H, W, Ca + Cb] of one (A, B) pair."""
        return (*self.observations.paired[0].shape[1:3], self.partition.total_size)


def _label_encodings(labels: Optional[palettes.Palette]) -> tuple:
    """B is a label map (in colours, until `oriented` says otherwise) when there are
    label classes."""
    return (None, None if labels is None else label_encoding.LabelEncoding(labels))


def oriented(data: ImageData, direction: str, encoding: str = label_encoding.RGB) -> ImageData:
    """`data` for a conditional model translating `direction` ("a_to_b": A is the
    input, part 0; "b_to_a": B is), its label maps in `encoding`."""
    if direction not in DIRECTIONS:
        raise SettingError(f"{{direction}} must be one of {', '.join(DIRECTIONS)}, got {direction!r}")
    encodings = tuple(None if e is None else label_encoding.LabelEncoding(e.palette, encoding)
                      for e in data.encodings)
    if direction == A_TO_B:
        return dataclasses.replace(data, encodings=encodings)
    observations = data.observations
    swapped = sources.Observations(observations.paired[::-1], observations.unpaired[::-1],
                                   observations.part_names[::-1])
    val = pix2pix.AlignedPairs(data.val.b, data.val.a, data.val.files)
    return dataclasses.replace(data, observations=swapped, val=val, encodings=encodings[::-1])


def read_palette(settings: ImageDataSettings) -> Optional[palettes.Palette]:
    """The palette setting's file, or the Cityscapes palette for the cityscapes preset, or None."""
    if settings.palette:
        return palettes.read(settings.palette)
    return palettes.cityscapes() if settings.has_label_maps else None


def load_data(settings: ImageDataSettings) -> ImageData:
    data = load_folders(settings) if settings.dataset == FOLDERS else load_preset(settings)
    print(data.describe())
    return data


def load_preset(settings: ImageDataSettings) -> ImageData:
    """A pix2pix folder, its first num_joint_samples training images paired."""
    root = settings.data_dir
    pix2pix.check_layout(root)
    size = settings.image_size[0]
    load = lambda split, limit: pix2pix.load_aligned(
        root, split, size, pix2pix.GREY_A[settings.dataset], limit or None
    )
    train, val = load("train", settings.max_train_images), load("val", settings.max_val_images)
    if settings.num_joint_samples > len(train):
        raise SettingError(
            f"{{num_joint_samples}}={settings.num_joint_samples} exceeds the "
            f"{len(train)} training images in {root}/train"
        )
    observations = sources.from_aligned([train.a, train.b], settings.num_joint_samples, PART_NAMES)
    palette = read_palette(settings)
    rest = len(train) - settings.num_joint_samples
    # The rest stays in the observations, where no stream of the GAN's reads it (the
    # realism instrument trains on every aligned pair of a preset).
    ignored = () if settings.uses_unpaired or not rest else (
        f"{rest} training images after the first {{num_joint_samples}}",)
    return ImageData(observations, val, palette, _label_encodings(palette), unpaired_aligned=True,
                     ignored=ignored)


def _part_specs(settings: ImageDataSettings, labels: Optional[palettes.Palette]):
    size = settings.image_size
    a = image_folders.PartSpec(image_folders.PHOTO, size, settings.resize)
    b = (image_folders.PartSpec(image_folders.LABEL_MAP, size, settings.resize, labels,
                                settings.snap_label_colours)
         if labels is not None else image_folders.PartSpec(image_folders.PHOTO, size, settings.resize))
    return a, b


def _paired_items(settings: ImageDataSettings, kind: str, limit: int):
    """(A items, B items, where each comes from as errors name it, the A files) of the
    paired or val set, in one of its two forms."""
    aligned = getattr(settings, f"{kind}_dir")
    if aligned:
        paths = image_folders.list_images(aligned, ref(f"{kind}_dir"))[:limit or None]
        return (image_folders.halves(paths, 0), image_folders.halves(paths, 1),
                [f"{ref(f'{kind}_dir')} (left halves)", f"{ref(f'{kind}_dir')} (right halves)"], paths)
    a_setting, b_setting = ref(f"{kind}_a_dir"), ref(f"{kind}_b_dir")
    pairs = image_folders.match_stems(getattr(settings, f"{kind}_a_dir"), getattr(settings, f"{kind}_b_dir"),
                                      a_setting, b_setting)[:limit or None]
    return (image_folders.whole([a for a, _ in pairs]), image_folders.whole([b for _, b in pairs]),
            [a_setting, b_setting], [a for a, _ in pairs])


def load_folders(settings: ImageDataSettings) -> ImageData:
    """The user's folders as Observations (through the on-disk cache) and val pairs."""
    labels = read_palette(settings)
    specs = _part_specs(settings, labels)

    def pool(items, spec, flag, paired_channels=None):
        return image_folders.load_pool(items, spec, settings.cache_dir, flag, settings.memory_limit_mb,
                                       paired_channels=paired_channels)

    a_items, b_items, flags, _ = _paired_items(settings, "paired", settings.max_train_images)
    paired = tuple(pool(items, spec, flag) for items, spec, flag in zip((a_items, b_items), specs, flags))
    paired_files = {os.path.realpath(path) for path, _ in a_items + b_items}
    unpaired, ignored = [], []
    for name, spec in zip(PART_NAMES, specs):
        folder = getattr(settings, f"unpaired_{name}_dir")
        if folder and not settings.uses_unpaired:
            ignored.append(ref(f"unpaired_{name}_dir"))  # not even listed: nothing reads it
        if not folder or not settings.uses_unpaired:
            unpaired.append(None)
            continue
        flag = ref(f"unpaired_{name}_dir")
        # A file of the paired set counts once, as paired.
        paths = [p for p in image_folders.list_images(folder, flag) if os.path.realpath(p) not in paired_files]
        items = image_folders.whole(paths)
        paired_channels = paired[PART_NAMES.index(name)].shape[-1]
        unpaired.append(pool(items, spec, flag, paired_channels) if paths else None)
    observations = sources.Observations(paired, tuple(unpaired), PART_NAMES)
    a_val, b_val, val_flags, val_files = _paired_items(settings, "val", settings.max_val_images)
    val_a, val_b = (pools.to_memory(pool(items, spec, flag))
                    for items, spec, flag in zip((a_val, b_val), specs, val_flags))
    if val_a.shape[-1] != paired[0].shape[-1] or val_b.shape[-1] != paired[1].shape[-1]:
        raise ValueError(f"validation images have {val_a.shape[-1]} + {val_b.shape[-1]} channels, "
                         f"the training images {paired[0].shape[-1]} + {paired[1].shape[-1]}")
    return ImageData(observations, pix2pix.AlignedPairs(val_a, val_b, tuple(val_files)), labels,
                     _label_encodings(labels), ignored=tuple(ignored))


def val_source(settings: ImageDataSettings) -> str:
    """Where the validation pairs come from, as an error template names it."""
    if settings.dataset != FOLDERS:
        return f"{settings.data_dir}/val, {{max_val_images}}={settings.max_val_images}"
    if settings.val_dir:
        return f"{{val_dir}}={settings.val_dir}"
    return f"{{val_a_dir}}={settings.val_a_dir}"


def make_dataset_fn(settings: ImageDataSettings, data: ImageData, step: trainer.DistributedStep):
    """The step's streams over the training observations, for the Trainer."""
    pools = sources.training_streams(data.observations, step.updates.data_streams(), data.encoders(),
                                     mirror=settings.mirror, jitter=settings.jitter)
    return streams.streams_dataset_fn(pools, settings.batch_size, settings.seed)


def details(settings: ImageDataSettings, data: ImageData) -> dict:
    """What a run's metrics.json and TensorBoard config keep of its data."""
    result = dict(dataset=settings.dataset, **data.summary(),
                  num_val_pairs=len(data.val), image_size=list(data.sample_shape[:2]))
    if settings.dataset == FOLDERS:
        # The setting is None for folders (it applies to presets): the pairs used.
        result["num_joint_samples"] = data.observations.num_paired
    if data.palette is not None:
        result["num_classes_evaluated"] = len(data.palette.evaluated)
    return result


def make_discriminator(settings: ImageDataSettings):
    """`name -> ConvDiscriminator` with disc_channels first-layer filters."""
    return lambda name: ConvDiscriminator(filters=settings.disc_channels, name=name)


def as_float(images: np.ndarray) -> np.ndarray:
    """uint8 -> float32 in [0, 1]."""
    return np.asarray(images, np.float32) / 255.0


def side_by_side(*images: np.ndarray) -> np.ndarray:
    """[N, H, W, C_k] float images in [0, 1] -> [N, H, k * W, 3] (grey shown as RGB)."""
    rgb = [np.repeat(x, 3, axis=-1) if x.shape[-1] == 1 else x for x in images]
    return np.concatenate(rgb, axis=2)
