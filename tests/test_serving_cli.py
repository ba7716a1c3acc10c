"""The serving commands as a user runs them: `serving.serve` serves an export folder,
and `serving.cli` segments an image and separates a song over REST and gRPC."""

import io
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import soundfile
from PIL import Image

from tests.conftest import REPO_ROOT
from tf_factorgan.serving import client as serving_client


def _run(*args, check=True):
    env = {**os.environ, "PYTHONPATH": REPO_ROOT}
    result = subprocess.run(
        [sys.executable, *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    if check:
        assert result.returncode == 0, result.stderr[-2000:]
    return result


def _address(server, protocol):
    return f"localhost:{server.rest_port if protocol == 'rest' else server.grpc_port}"


@pytest.mark.parametrize("protocol", ["rest", "grpc"])
def test_cli_segments_and_separates(dev_server, tmp_path, protocol):
    image = np.random.default_rng(0).integers(0, 256, (24, 40, 3), dtype=np.uint8)
    Image.fromarray(image).save(tmp_path / "photo.jpg", quality=95)
    flags = [f"--protocol={protocol}", f"--server={_address(dev_server, protocol)}"]
    out = _run("-m", "serving.cli", "segment", str(tmp_path / "photo.jpg"), "-o", str(tmp_path / "labels.png"), *flags)
    assert f"label map: {tmp_path / 'labels.png'}" in out.stdout
    png = (tmp_path / "labels.png").read_bytes()
    assert Image.open(io.BytesIO(png)).size == (40, 24)
    reference = serving_client.GrpcClient(_address(dev_server, "grpc"))
    assert png == serving_client.segment_image(reference, "segmentation", (tmp_path / "photo.jpg").read_bytes())

    audio = (0.1 * np.random.default_rng(1).standard_normal((11025, 2))).astype(np.float32)
    soundfile.write(tmp_path / "song.wav", audio, 11025, subtype="FLOAT")
    _run("-m", "serving.cli", "separate", str(tmp_path / "song.wav"), "-o", str(tmp_path / "out"), *flags)
    expected = serving_client.separate_audio(reference, "separation", audio, 11025)
    for name in ("vocals", "accompaniment"):
        written, rate = soundfile.read(tmp_path / "out" / f"{name}.wav", dtype="float32", always_2d=True)
        assert rate == 11025 and written.shape == audio.shape
        np.testing.assert_array_equal(written, expected[name])


def test_cli_reports_errors(dev_server, tmp_path):
    (tmp_path / "photo.png").write_bytes(b"not a png")
    result = _run(
        "-m", "serving.cli", "segment", str(tmp_path / "photo.png"), "-o", str(tmp_path / "x.png"),
        f"--server={_address(dev_server, 'rest')}", check=False,
    )
    assert result.returncode != 0
    assert "INVALID_ARGUMENT" in result.stderr and "'images'" in result.stderr
    assert not (tmp_path / "x.png").exists()


def test_serve_command(serving_exports):
    base, _ = serving_exports
    env = {**os.environ, "PYTHONPATH": REPO_ROOT}
    process = subprocess.Popen(
        [sys.executable, "-m", "serving.serve", f"--model_config_file={base}/models.config",
         "--port=0", "--rest_api_port=0"],
        cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        lines = [process.stdout.readline() for _ in range(4)]
        assert lines[0].startswith("serving segmentation (version 1), separation (version 1)"), lines
        rest = lines[1].split("http://")[1].split("/")[0]
        grpc_address = lines[2].split()[1]
        for client in (serving_client.RestClient(rest), serving_client.GrpcClient(grpc_address)):
            assert client.status("separation")["model_version_status"][0]["state"] == "AVAILABLE"
    finally:
        process.send_signal(signal.SIGTERM)  # as docker stop does
        assert process.wait(timeout=60) == 0

    result = _run("-m", "serving.serve", f"--export_base={base}", "--model_config_file=x", check=False)
    assert result.returncode != 0 and "exactly one of --model_config_file and --export_base" in result.stderr


def test_serve_reports_a_damaged_version_in_one_line_and_serves_the_rest(serving_exports, tmp_path):
    """A newest version with a truncated variables file made serving.serve exit with an
    IndexError traceback naming no folder; now that version gets one log line naming
    its folder, and the older version and the other models are served."""
    from tests.test_dev_server import damaged_export

    path = damaged_export(serving_exports, str(tmp_path))
    env = {**os.environ, "PYTHONPATH": REPO_ROOT}
    process = subprocess.Popen(
        [sys.executable, "-m", "serving.serve", f"--model_config_file={path}", "--port=0", "--rest_api_port=0"],
        cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        first = process.stdout.readline()
        assert first.startswith("serving segmentation (version 1), separation (version 1)"), first
        grpc_address = [process.stdout.readline() for _ in range(3)][1].split()[1]
        status = serving_client.GrpcClient(grpc_address).status("separation")["model_version_status"]
        assert [s["state"] for s in status] == ["END", "AVAILABLE"]
    finally:
        process.send_signal(signal.SIGTERM)
        stderr = process.communicate(timeout=60)[1]
    assert "Traceback" not in stderr
    failures = [line for line in stderr.splitlines() if "did not load" in line]
    assert len(failures) == 2, stderr[-2000:]
    assert f"model 'separation' version 2 did not load: {tmp_path / 'separation' / '2'}: " in failures[1]


def test_serve_flag_defaults_are_the_dev_servers():
    """serve.py states its defaults without importing TensorFlow; they must be the
    DevServer's own."""
    import inspect

    from tf_factorgan.serving import dev_server

    code = (
        "import sys; from absl import flags; import tf_factorgan.serving.serve; flags.FLAGS(['serve']); "
        "print(*[flags.FLAGS[n].default for n in sys.argv[1:]])"
    )
    names = ["max_request_mb", "max_request_memory_mb", "max_elements", "max_image_pixels",
             "read_timeout_s", "idle_timeout_s", "threads", "rest_api_num_threads"]
    out = _run("-c", code, *names).stdout.split()
    parameters = inspect.signature(dev_server.DevServer).parameters
    assert [float(value) for value in out] == [
        dev_server.DEFAULT_MAX_REQUEST_BYTES >> 20, dev_server.DEFAULT_MAX_REQUEST_MEMORY_BYTES >> 20,
        dev_server.DEFAULT_MAX_ELEMENTS, dev_server.DEFAULT_MAX_IMAGE_PIXELS,
        dev_server.DEFAULT_READ_TIMEOUT_S, dev_server.DEFAULT_IDLE_TIMEOUT_S,
        parameters["threads"].default, parameters["rest_threads"].default,
    ]
