"""Serves exported models with the development server (REST and gRPC).

  python -m serving.serve --model_config_file=exports/models.config

Flag names follow `tensorflow_model_server` (--port for gRPC, --rest_api_port), so the
same command line works for both; use TF Serving in production (docs/export_serving.md).
--export_base serves every model folder of an export base without a config file.
The bounds on one request (--max_request_mb, --max_request_memory_mb, --max_elements,
--max_image_pixels) and on connections (--rest_api_num_threads, --read_timeout_s,
--idle_timeout_s) are the development server's own; see serving/dev_server.py.
"""

import os
import signal

from absl import app, flags

from tf_factorgan.cli import command
from tf_factorgan.config import SettingError

flags.DEFINE_string("model_config_file", None, "ModelServerConfig text proto (models.config).")
flags.DEFINE_string("export_base", None, "Serve every model under this folder instead.")
flags.DEFINE_string("host", "localhost", "Interface to listen on (0.0.0.0: all).")
flags.DEFINE_integer("port", 8500, "gRPC port (0: any free port).")
flags.DEFINE_integer("rest_api_port", 8501, "REST port (0: any free port).")
flags.DEFINE_integer("max_request_mb", 1024, "Largest REST body or gRPC message accepted, in MiB.", lower_bound=1)
flags.DEFINE_integer(
    "max_request_memory_mb", 2048,
    "Most memory one request's decoding (and JSON response) may need, in MiB, estimated "
    "before parsing: REST JSON costs 4-40 times its size.", lower_bound=1,
)
flags.DEFINE_integer("max_elements", 1 << 26, "Most elements in one input tensor.", lower_bound=1)
flags.DEFINE_integer(
    "max_image_pixels", 1 << 25,
    "Most pixels (width x height, x frames) of an encoded image input, read from its header.",
    lower_bound=1,
)
flags.DEFINE_integer("threads", 16, "Concurrent gRPC calls.", lower_bound=1)
flags.DEFINE_integer(
    "rest_api_num_threads", 16, "REST worker threads: requests answered at once (connections still "
    "sending their request, or idle, wait in a reader thread).", lower_bound=1,
)
flags.DEFINE_float(
    "read_timeout_s", 30.0, "Seconds a REST request may take to arrive (its line and "
    "headers together, from their first byte; then its body).", lower_bound=0.1,
)
flags.DEFINE_float("idle_timeout_s", 30.0, "Seconds an idle REST keep-alive connection stays open.", lower_bound=0.1)
command.group("models", "model_config_file", "export_base")
command.group("server", "host", "port", "rest_api_port", "threads", "rest_api_num_threads")
command.group("limits", "max_request_mb", "max_request_memory_mb", "max_elements",
              "max_image_pixels", "read_timeout_s", "idle_timeout_s")
FLAGS = flags.FLAGS


def _config():
    from tf_factorgan.serving import config

    if bool(FLAGS.model_config_file) == bool(FLAGS.export_base):
        raise SettingError("give exactly one of {model_config_file} and {export_base}")
    if FLAGS.model_config_file:
        path = FLAGS.model_config_file
        return config.parse(path), os.path.dirname(os.path.abspath(path))
    return config.for_models(config.model_folders(FLAGS.export_base)), os.getcwd()


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    command.require_extra("serving", "tensorflow_serving", "grpc")
    from tf_factorgan.logs import quiet_info_logs

    quiet_info_logs()
    from tf_factorgan.serving.dev_server import DevServer
    from tf_factorgan.serving.repository import ModelRepository

    try:
        model_config, config_dir = _config()
        repository = ModelRepository(model_config, config_dir)
        server = DevServer(
            repository, FLAGS.host, FLAGS.rest_api_port, FLAGS.port,
            FLAGS.max_request_mb << 20, FLAGS.threads,
            max_request_memory_bytes=FLAGS.max_request_memory_mb << 20,
            max_elements=FLAGS.max_elements, max_image_pixels=FLAGS.max_image_pixels,
            rest_threads=FLAGS.rest_api_num_threads, read_timeout_s=FLAGS.read_timeout_s,
            idle_timeout_s=FLAGS.idle_timeout_s,
        )
    except (FileNotFoundError, ValueError, OSError) as error:
        command.exit_with(error)
    server.start()
    # A model none of whose versions loaded is listed too; the log above names the errors.
    models = ", ".join(
        f"{name} (version {repository.versions(name)[-1]})" if repository.versions(name)
        else f"{name} (no version loaded)"
        for name in repository.model_names
    )
    print(
        f"serving {models}\n  REST http://{server.host}:{server.rest_port}/v1/models/<name>\n"
        f"  gRPC {server.host}:{server.grpc_port}\nCtrl-C stops.",
        flush=True,
    )
    # Docker and systemd stop with SIGTERM: finish the way Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: server.stop())
    try:
        server.wait()
    except KeyboardInterrupt:
        server.stop()


def run() -> None:
    command.run_main(main, __doc__)


if __name__ == "__main__":
    run()
