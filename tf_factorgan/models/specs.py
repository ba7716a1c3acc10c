"""A trained generator described by one small JSON file beside its weights.

Every experiment writes `generator.json` next to `generator.weights.h5`; the export
(and anything else that serves a run) rebuilds the network from these two files
alone, without the experiment's code. The spec holds:

  architecture   "mlp" | "conv" | "unet" | "masking_separator" (`ARCHITECTURES`)
  arguments      the network's constructor arguments (sizes, channels)
  input_shapes   the shapes (without the batch axis) of the inputs it is called on, in
                 call order: [[nz]] for noise alone, [[H, W, C], [nz]] for an image
                 and noise
  nz, seed       noise size and the run's seed
  serves         what it is exported as: "samples", "segmentation" or "separation"
  data           what the export needs of the data settings: a sample's shape and how
                 to show it as images, the photo size, the spectrogram settings
"""

import dataclasses
import os

import keras
import tensorflow as tf

from tf_factorgan import files
from tf_factorgan.config import SettingPathError
from tf_factorgan.models.conv import ConvGenerator
from tf_factorgan.models.masking import MaskingSeparator
from tf_factorgan.models.mlp import MLPGenerator
from tf_factorgan.models.unet import UNet

SPEC_FILE = "generator.json"
WEIGHTS_FILE = "generator.weights.h5"
ARCHITECTURES = {
    "mlp": MLPGenerator,
    "conv": ConvGenerator,
    "unet": UNet,
    "masking_separator": MaskingSeparator,
}
SERVES = ("samples", "segmentation", "separation")


@dataclasses.dataclass(frozen=True)
class GeneratorSpec:
    architecture: str
    arguments: dict
    input_shapes: tuple
    nz: int
    seed: int
    serves: str
    data: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        def fail(field, expected):
            raise ValueError(f"generator spec field {field!r} must be {expected}, got "
                             f"{getattr(self, field)!r}")

        if self.architecture not in ARCHITECTURES:
            fail("architecture", f"one of {sorted(ARCHITECTURES)}")
        if self.serves not in SERVES:
            fail("serves", f"one of {SERVES}")
        if not isinstance(self.arguments, dict):
            fail("arguments", "an object of constructor arguments")
        if not isinstance(self.data, dict):
            fail("data", "an object")
        for field in ("nz", "seed"):
            value = getattr(self, field)
            if not isinstance(value, int) or isinstance(value, bool) or (field == "nz" and value < 1):
                fail(field, "a positive integer" if field == "nz" else "an integer")
        shapes = self.input_shapes
        if not (isinstance(shapes, (list, tuple)) and shapes and all(
                isinstance(s, (list, tuple)) and all(isinstance(d, int) and d > 0 for d in s)
                for s in shapes)):
            fail("input_shapes", "a non-empty list of shapes of positive integers")
        object.__setattr__(self, "input_shapes", tuple(tuple(s) for s in shapes))


def construct(spec: GeneratorSpec) -> keras.Model:
    """The spec's network, unbuilt: experiments make their generator this way, so that
    what they train is what the spec describes."""
    return ARCHITECTURES[spec.architecture](**spec.arguments)


def build(spec: GeneratorSpec) -> keras.Model:
    """The spec's network, built (called once on zeros) so that weights can load."""
    model = construct(spec)
    model(*(tf.zeros([1, *shape]) for shape in spec.input_shapes))
    return model


def write(run_dir: str, spec: GeneratorSpec) -> None:
    """`<run_dir>/generator.json`, atomically."""
    files.write_json(os.path.join(run_dir, SPEC_FILE), dataclasses.asdict(spec))


def read(run_dir: str) -> GeneratorSpec:
    """The spec in `<run_dir>/generator.json`; errors name the file and the field."""
    path = os.path.join(run_dir, SPEC_FILE)
    fields = files.read_json(path)
    names = {f.name for f in dataclasses.fields(GeneratorSpec)}
    if not isinstance(fields, dict) or not names.issuperset(fields) or not (
            names - {"data"}).issubset(fields):
        raise ValueError(f"{path} must be an object with the fields {sorted(names)}")
    try:
        return GeneratorSpec(**fields)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None


def load(run_dir: str, spec: GeneratorSpec) -> keras.Model:
    """The spec's network with the weights of `<run_dir>/generator.weights.h5`."""
    path = os.path.join(run_dir, WEIGHTS_FILE)
    if not os.path.isfile(path):
        raise SettingPathError(f"{{run_dir}} {run_dir!r} lacks {WEIGHTS_FILE}; it is written after training")
    model = build(spec)
    model.load_weights(path)
    return model
