"""Command-line client of served models (TF Serving or serving.serve).

  python -m serving.cli segment photo.jpg -o labels.png [--protocol=grpc]
  python -m serving.cli separate song.mp3 -o separated/ [--protocol=grpc]
  python -m serving.cli status --model=segmentation

`segment` sends the encoded photo (predict_bytes) and writes the PNG label map at the
photo's size. `separate` decodes any format soundfile or ffmpeg reads, sends the
waveform at its own rate and channel count, and writes vocals.wav and
accompaniment.wav (float32, the input's rate, length and channels). REST sends JSON
(about 20 bytes a sample; refused over 128 MiB, see serving.client); gRPC sends raw
float32 and suits whole songs better.
"""

import json
import os
import sys

from absl import app, flags

from tf_factorgan.cli.command import exit_with, group, require_extra, run_main

COMMANDS = ("segment", "separate", "status")
flags.DEFINE_enum("protocol", "rest", ["rest", "grpc"], "API to call.")
flags.DEFINE_string("server", "", "host:port (default localhost:8501 for REST, :8500 for gRPC).")
flags.DEFINE_string("model", "", "Served model name (default: segmentation / separation).")
flags.DEFINE_integer("version", None, "Model version (default: the latest served).")
flags.DEFINE_string("output", None, "segment: PNG path; separate: output folder.", short_name="o")
flags.DEFINE_float("timeout", 600.0, "Seconds to wait for the server.")
group("server", "protocol", "server", "model", "version", "timeout")
group("output", "output")
FLAGS = flags.FLAGS


def _segment(client, model: str, image_path: str, output: str) -> str:
    from tf_factorgan.serving.client import segment_image
    from tf_factorgan import files

    with open(image_path, "rb") as f:
        encoded = f.read()
    png = segment_image(client, model, encoded, FLAGS.version)
    files.write_bytes(output, png)
    return f"label map: {output}"


def _separate(client, model: str, audio_path: str, output_dir: str) -> str:
    from tf_factorgan.serving.client import separate_audio
    from tf_factorgan.audio import io as audio_io

    audio, rate = audio_io.read_audio(audio_path)
    sources = separate_audio(client, model, audio, rate, FLAGS.version)
    lines = []
    for name, value in sources.items():
        path = os.path.join(output_dir, f"{name}.wav")
        audio_io.write_audio(path, value, rate)
        lines.append(f"{name}: {path}")
    return "\n".join(lines)


def main(argv):
    if len(argv) < 2 or argv[1] not in COMMANDS:
        raise app.UsageError(f"give a command: {' | '.join(COMMANDS)}")
    require_extra("serving", "tensorflow_serving", "grpc")
    command, paths = argv[1], argv[2:]
    if command != "status" and (len(paths) != 1 or not FLAGS.output):
        raise app.UsageError(f"usage: python -m serving.cli {command} INPUT -o OUTPUT")
    from tf_factorgan.serving.client import connect
    from tf_factorgan.serving.wire import ServingError

    model = FLAGS.model or {"segment": "segmentation", "separate": "separation"}.get(command, "")
    client = connect(FLAGS.protocol, FLAGS.server, FLAGS.timeout)
    try:
        if command == "status":
            if not model:
                raise app.UsageError("status needs --model")
            print(json.dumps(client.status(model, FLAGS.version), indent=2))
        elif command == "segment":
            print(_segment(client, model, paths[0], FLAGS.output))
        else:
            print(_separate(client, model, paths[0], FLAGS.output))
    except ServingError as error:
        sys.exit(f"error: {FLAGS.protocol} server {client.address}, model {model!r}: {error}")
    except (FileNotFoundError, ValueError, IsADirectoryError) as error:
        exit_with(error)


def run() -> None:
    run_main(main, __doc__)


if __name__ == "__main__":
    run()
