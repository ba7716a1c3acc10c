"""How real generated photos look, measured with a stated instrument: pix2pix's
"FCN-score" idea (Isola et al. 2017, section 4.2) with a segmentation network of our
own, since the FCN weights (and LPIPS' backbones) are downloaded at run time and are not
available offline.

The instrument is a U-Net (width INSTRUMENT_NGF, softmax over the palette's classes and
void) trained once per data set on every aligned training pair, photo -> one-hot label
map, by cross-entropy (`predictor.from_stage`, `INSTRUMENT`), keeping its checkpoint of
lowest validation loss. A label map -> photo generator is scored by the instrument's
pixel accuracy and mean IoU on the generated photos against the label maps they were
generated from (`fcn/...`), beside the same on the real validation photos
(`fcn/real_...`): the instrument's ceiling. The instrument is fixed (recipe and seed),
so scores of runs on the same data compare; it is not a Cityscapes benchmark number.
"""

import os

import numpy as np

from tf_factorgan import predictor
from tf_factorgan.data import label_encoding, sources
from tf_factorgan.eval import segmentation
from tf_factorgan.factorisation import Partition
from tf_factorgan.models import specs

INSTRUMENT = predictor.StageSettings("categorical", steps=3000, eval_every=250, batch_size=25, lr=2e-4, seed=0)
INSTRUMENT_NGF = 32


def instrument(data, root: str):
    """`() -> the trained segmenter` (photo float32 [N, H, W, 3] in [0, 1] -> (class
    probabilities [N, H, W, K (+ 1)], None)) of `data` (`experiments.image_data.ImageData`
    with a label-map part), trained in `<root>/<fingerprint>` on first use."""
    label_part = data.label_part
    photo_part = 1 - label_part
    encoding = label_encoding.LabelEncoding(data.palette, label_encoding.ONE_HOT)
    aligned = data.aligned()
    order = (photo_part, label_part)
    observations = sources.Observations(tuple(aligned.paired[i] for i in order), (None, None),
                                        ("photo", "label_map"))
    joint = sources.training_streams(observations, {"joint": None}, (None, encoding.encode))["joint"]
    photos, label_maps = (data.val.a, data.val.b) if photo_part == 0 else (data.val.b, data.val.a)
    val = np.concatenate([np.asarray(photos, np.float32) / 255.0,
                          label_encoding.encode_numpy(encoding, label_maps)], axis=-1)
    height, width = photos.shape[1:3]
    channels = int(photos.shape[-1])
    spec = specs.GeneratorSpec(
        "unet", {"output_channels": encoding.channels, "ngf": INSTRUMENT_NGF, "noise_channels": 0,
                 "noise_stages": 0, "output_activation": "softmax"},
        [[height, width, channels], [1]], 1, INSTRUMENT.seed, "segmentation")
    return predictor.from_stage(
        spec, Partition((channels, encoding.channels)), (height, width, channels + encoding.channels),
        joint, val, INSTRUMENT, root, [*observations.paired, photos, label_maps], name="segmenter")


def fcn_score(segmenter, photos: np.ndarray, label_maps: np.ndarray, palette,
              batch_size: int = 50) -> dict:
    """The segmenter's metrics on `photos` float32 [N, H, W, 3] in [0, 1] against colour
    `label_maps` uint8 [N, H, W, 3]: {pixel_accuracy, mean_iou, mean_class_accuracy}."""
    encoding = label_encoding.LabelEncoding(palette, label_encoding.ONE_HOT)
    metrics = segmentation.SegmentationMetrics(palette)
    for start in range(0, len(photos), batch_size):
        probabilities, _ = segmenter(photos[start: start + batch_size], training=False)
        metrics.update(encoding.to_rgb(probabilities).numpy(),
                       np.asarray(label_maps[start: start + batch_size], np.float32) / 255.0)
    result = metrics.result()
    return {key: result[key] for key in ("pixel_accuracy", "mean_iou", "mean_class_accuracy")}


def instrument_root(out_path: str) -> str:
    return os.path.join(out_path, "segmenters")
