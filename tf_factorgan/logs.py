"""Log levels for the command-line programs (trainers, export, the serving server)."""

from absl import flags, logging


def quiet_info_logs() -> None:
    """TensorFlow's INFO lines would bury the program's own output (a progress bar,
    the paths it wrote), unless --verbosity asks for them."""
    if not flags.FLAGS["verbosity"].present:
        logging.set_verbosity(logging.WARNING)
