r"""The two floors a segmentation model must beat (`eval/floors.py`) on the data a run of
`trainers.image2image` would use (the same data flags), written as JSON.

  python -m trainers.segmentation_floors --dataset_dir=data/cityscapes --load_size=64 \
      --out=results/cityscapes_segmentation/floors.json
"""

import os

from absl import flags

from tf_factorgan import files
from tf_factorgan.cli import command
from tf_factorgan.config import OUTPUT, SettingError
from tf_factorgan.data import pools
from tf_factorgan.eval import floors
from tf_factorgan.experiments import image_data

# The data settings (ImageDataSettings' own fields); the rest keep their defaults.
DATA_SETTINGS = tuple(image_data.ImageDataSettings.__annotations__)

command.define_settings(image_data.ImageDataSettings, DATA_SETTINGS)
flags.DEFINE_string("out", "", "JSON file to write the floors to (default: print only).")
command.group(OUTPUT, "out")
FLAGS = flags.FLAGS


def compute(settings: image_data.ImageDataSettings) -> dict:
    """The floors on `settings`' data: every training label map (paired or not)
    against the validation label maps, with the run's image size and palette."""
    data = image_data.load_data(settings)
    if data.label_part is None:
        raise SettingError("floors need label maps: the cityscapes preset, or {palette} with folders")
    train_maps = pools.to_memory(data.observations.marginal_pool(data.label_part))
    result = floors.floors(train_maps, data.val.b, data.palette)
    result["data"] = image_data.details(settings, data)
    return result


def main(argv):
    del argv
    settings = command.settings_from_flags(image_data.ImageDataSettings, DATA_SETTINGS)
    result = command.run_or_exit(lambda: compute(settings))
    for name in ("most_common_class", "per_pixel_prior"):
        metrics = result[name]
        print(f"{name}: pixel accuracy {metrics['pixel_accuracy']:.4f}, mean class accuracy "
              f"{metrics['mean_class_accuracy']:.4f}, mean IoU {metrics['mean_iou']:.4f}")
    if FLAGS.out:
        os.makedirs(os.path.dirname(os.path.abspath(FLAGS.out)), exist_ok=True)
        files.write_json(FLAGS.out, result)
        print(f"written: {FLAGS.out}")


def run() -> None:
    command.run_main(main, __doc__, image_data.ImageDataSettings)


if __name__ == "__main__":
    run()
