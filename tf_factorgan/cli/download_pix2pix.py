"""Downloads and unpacks a pix2pix dataset (aligned A|B image pairs).

  python -m trainers.download_pix2pix --dataset=cityscapes --out_dir=data

Writes <out_dir>/<dataset>/train/ and <out_dir>/<dataset>/val/ and prints that folder.
An interrupted download resumes when the command is run again; a dataset that is
already there is not downloaded again. Offline, fetch the archive by hand and unpack it
into <out_dir> (or point --url at a mirror, file:// URLs included).
"""

from absl import flags

from tf_factorgan.cli import command
from tf_factorgan.config import DATA
from tf_factorgan.data import pix2pix

flags.DEFINE_enum("dataset", None, list(pix2pix.PIX2PIX_DATASETS), "pix2pix dataset to fetch.")
flags.DEFINE_string("out_dir", "data", "Parent folder of the dataset.")
flags.DEFINE_string("url", None, "Archive URL instead of pix2pix's own (a mirror).")
flags.mark_flag_as_required("dataset")
command.group(DATA, "dataset", "out_dir", "url")

FLAGS = flags.FLAGS


def main(argv):
    del argv
    try:
        path = pix2pix.download(FLAGS.dataset, FLAGS.out_dir, url=FLAGS.url)
    except (OSError, ValueError) as error:
        command.exit_with(error)
    print(path)


def run() -> None:
    command.run_main(main, __doc__)


if __name__ == "__main__":
    run()
