"""pix2pix aligned-pair loading, its input checks, and the resumable download."""

import contextlib
import http.server
import io
import os
import socket
import tarfile
import threading

import numpy as np
import pytest
from PIL import Image

from tests.synthetic_pix2pix import LABEL_COLOURS, PHOTO_COLOURS, write_pix2pix_dataset
from tf_factorgan.data import pix2pix

# JPEG at quality 95 moves flat colours by a few levels (chroma rounding).
JPEG_TOLERANCE = 6

LEFT = (200, 40, 60)
RIGHT = (20, 180, 230)


def _write_two_colour_dataset(root, height=16):
    """One train and one val file: left half LEFT, right half RIGHT.

    Full-resolution chroma (subsampling=0) keeps the colours apart at the seam, so a
    split one column off would show.
    """
    pixels = np.zeros([height, 2 * height, 3], np.uint8)
    pixels[:, :height] = LEFT
    pixels[:, height:] = RIGHT
    for split in ("train", "val"):
        os.makedirs(os.path.join(root, split))
        Image.fromarray(pixels).save(os.path.join(root, split, "1.jpg"), quality=95, subsampling=0)
    return str(root)


@pytest.mark.parametrize("load_size", [8, 16, 32])
def test_loader_puts_the_left_half_in_a_and_the_right_half_in_b(tmp_path, load_size):
    root = _write_two_colour_dataset(tmp_path / "pairs")
    pairs = pix2pix.load_aligned(root, "train", load_size)
    np.testing.assert_allclose(pairs.a[0], np.broadcast_to(LEFT, pairs.a[0].shape), atol=JPEG_TOLERANCE)
    np.testing.assert_allclose(pairs.b[0], np.broadcast_to(RIGHT, pairs.b[0].shape), atol=JPEG_TOLERANCE)


def test_grey_a_is_one_channel_of_weighted_luma(tmp_path):
    root = _write_two_colour_dataset(tmp_path / "pairs")
    pairs = pix2pix.load_aligned(root, "val", 16, grey_a=True)
    assert pairs.a.shape == (1, 16, 16, 1) and pairs.b.shape == (1, 16, 16, 3)
    assert pairs.channels == (1, 3)
    grey = 0.299 * LEFT[0] + 0.587 * LEFT[1] + 0.114 * LEFT[2]
    np.testing.assert_allclose(pairs.a, grey, atol=JPEG_TOLERANCE)
    np.testing.assert_allclose(pairs.b[0], np.broadcast_to(RIGHT, (16, 16, 3)), atol=JPEG_TOLERANCE)


@pytest.mark.parametrize("load_size", [16, 32])
def test_shapes_dtypes_and_files(tmp_path, load_size):
    root = write_pix2pix_dataset(str(tmp_path / "cityscapes"), num_train=5, num_val=3)
    for split, count in (("train", 5), ("val", 3)):
        pairs = pix2pix.load_aligned(root, split, load_size)
        assert len(pairs) == count
        assert pairs.a.shape == (count, load_size, load_size, 3) and pairs.a.dtype == np.uint8
        assert pairs.b.shape == (count, load_size, load_size, 3) and pairs.b.dtype == np.uint8
        assert pairs.channels == (3, 3)
        assert pairs.files == tuple(pix2pix.list_images(root, split))


def _nearest(images, colours):
    """Per pixel: (index of the nearest colour, its max-channel distance)."""
    distance = np.abs(images[..., None, :].astype(int) - colours.astype(int)).max(-1)
    return distance.argmin(-1), distance.min(-1)


def test_loaded_photo_determines_loaded_label_map(tmp_path):
    root = write_pix2pix_dataset(str(tmp_path / "cityscapes"), num_train=4, num_val=1)
    pairs = pix2pix.load_aligned(root, "train", 32)
    photo_class, _ = _nearest(pairs.a, PHOTO_COLOURS)
    label_class, label_distance = _nearest(pairs.b, LABEL_COLOURS)
    # JPEG's halved chroma blurs shape borders; elsewhere B is a label colour and the
    # class seen in A is the class in B.
    assert np.mean(label_distance <= 20) > 0.8
    assert np.mean(photo_class == label_class) > 0.9


def test_first_images_follow_sorted_file_order(tmp_path):
    root = write_pix2pix_dataset(str(tmp_path / "edges2shoes"), num_train=12, num_val=2, kind="edges")
    names = pix2pix.list_images(root, "train")
    assert names == sorted(names) and len(names) == 12
    full = pix2pix.load_aligned(root, "train", 16)
    first = pix2pix.load_aligned(root, "train", 16, max_images=5)
    assert first.files == tuple(names[:5]) == full.subset(5).files
    np.testing.assert_array_equal(first.a, full.subset(5).a)
    np.testing.assert_array_equal(first.b, full.subset(5).b)
    # Edge maps are white on black: mostly dark.
    assert np.mean(full.a < 128) > 0.5


def test_missing_val_folder_names_root_flag_and_layout(tmp_path):
    root = write_pix2pix_dataset(str(tmp_path / "data"), num_train=1, num_val=0)
    os.rmdir(os.path.join(root, "val"))
    with pytest.raises(FileNotFoundError) as error:
        pix2pix.check_layout(root, setting="{pairs_dir}")
    message = error.value.as_flags()
    for part in (root, "(from --pairs_dir)", "val/", "<root>/train/*.jpg", "twice as wide",
                 "python -m trainers.download_pix2pix --dataset=cityscapes"):
        assert part in message
    with pytest.raises(FileNotFoundError, match="does not exist"):
        pix2pix.check_layout(str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="lacks the folder val/"):
        pix2pix.load_aligned(root, "val", 16)


def test_empty_split_is_refused(tmp_path):
    root = write_pix2pix_dataset(str(tmp_path / "data"), num_train=2, num_val=0)
    with pytest.raises(FileNotFoundError, match="no .jpg/.jpeg/.png images in val/"):
        pix2pix.check_layout(root)
    with pytest.raises(FileNotFoundError, match="no .jpg/.jpeg/.png images in val/"):
        pix2pix.load_aligned(root, "val", 16)


def test_image_not_twice_as_wide_is_named(tmp_path):
    root = write_pix2pix_dataset(str(tmp_path / "data"), num_train=2, num_val=1, height=16)
    square = os.path.join(root, "train", "0001.jpg")
    Image.new("RGB", (16, 16)).save(square)
    with pytest.raises(ValueError, match="twice as wide") as error:
        pix2pix.load_aligned(root, "train", 16)
    assert square in str(error.value) and "16x16" in str(error.value)


def test_corrupt_jpeg_is_named(tmp_path):
    root = write_pix2pix_dataset(str(tmp_path / "data"), num_train=3, num_val=1, height=16)
    broken = os.path.join(root, "train", "0001.jpg")
    with open(broken, "rb") as f:
        data = f.read()
    # Cut just after the start-of-scan marker: the header (and so the size check)
    # stays intact, decoding fails inside tf.data.
    with open(broken, "wb") as f:
        f.write(data[: data.index(b"\xff\xda") + 20])
    with pytest.raises(ValueError, match="cannot decode 1 image") as error:
        pix2pix.load_aligned(root, "train", 16)
    assert broken in str(error.value)
    # A file that is no image at all is caught by the header check.
    with open(broken, "wb") as f:
        f.write(b"not a jpeg")
    with pytest.raises(ValueError, match="cannot read image") as error:
        pix2pix.load_aligned(root, "train", 16)
    assert broken in str(error.value)


@pytest.mark.parametrize("load_size", [48, 4, 0, 6])
def test_bad_load_size_is_refused_naming_the_flag(load_size):
    with pytest.raises(ValueError, match="load_size must be a power of two >= 8"):
        pix2pix.check_load_size(load_size)


def test_load_aligned_checks_load_size_before_reading(tmp_path):
    with pytest.raises(ValueError, match="load_size"):
        pix2pix.load_aligned(str(tmp_path), "train", 48)


# --- download -----------------------------------------------------------------------


def _tarball(tmp_path, name="cityscapes", extra=()):
    """A small pix2pix .tar.gz of <name>/train and <name>/val; `extra` adds
    (member name, bytes) entries."""
    source = write_pix2pix_dataset(str(tmp_path / "source" / name), num_train=3, num_val=2, height=16)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(source, arcname=name)
        for member_name, data in extra:
            info = tarfile.TarInfo(member_name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


class _Server:
    """Serves one payload over HTTP on localhost and records each request's Range
    header. honour_range=False answers 200 with everything; cut_after > 0 sends only
    that many bytes of the first answer and then drops the connection."""

    def __init__(self, payload: bytes, honour_range: bool = True, cut_after: int = 0):
        self.payload = payload
        self.honour_range = honour_range
        self.cut_after = cut_after
        self.ranges = []  # one entry per request: its Range header or None
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                requested = self.headers.get("Range")
                server.ranges.append(requested)
                start = 0
                if requested and server.honour_range:
                    start = int(requested.removeprefix("bytes=").split("-")[0])
                    self.send_response(206)
                    size = len(server.payload)
                    self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
                else:
                    self.send_response(200)
                body = server.payload[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if server.cut_after and len(server.ranges) == 1:
                    self.wfile.write(body[: server.cut_after])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/cityscapes.tar.gz"

    @contextlib.contextmanager
    def running(self):
        thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self.httpd.shutdown()
            self.httpd.server_close()
            thread.join()


def _assert_unpacked(path):
    pix2pix.check_layout(path)
    pairs = pix2pix.load_aligned(path, "train", 8)
    assert len(pairs) == 3


def test_fresh_download_unpacks_and_second_call_makes_no_request(tmp_path):
    out_dir = str(tmp_path / "data")
    with _Server(_tarball(tmp_path)).running() as server:
        path = pix2pix.download("cityscapes", out_dir, url=server.url, progress=False)
        assert path == os.path.join(out_dir, "cityscapes")
        _assert_unpacked(path)
        assert server.ranges == [None]
        assert sorted(os.listdir(out_dir)) == ["cityscapes"]  # no archive or temp left
        assert pix2pix.download("cityscapes", out_dir, url=server.url, progress=False) == path
        assert len(server.ranges) == 1


def test_truncated_part_is_resumed_with_a_range_request(tmp_path):
    payload = _tarball(tmp_path)
    out_dir = tmp_path / "data"
    out_dir.mkdir()
    (out_dir / "cityscapes.tar.gz.part").write_bytes(payload[:1000])
    with _Server(payload).running() as server:
        path = pix2pix.download("cityscapes", str(out_dir), url=server.url, progress=False)
    assert server.ranges == ["bytes=1000-"]
    _assert_unpacked(path)


def test_dropped_connection_keeps_the_part_and_a_rerun_resumes(tmp_path):
    payload = _tarball(tmp_path)
    out_dir = str(tmp_path / "data")
    with _Server(payload, cut_after=1500).running() as server:
        with pytest.raises(pix2pix.DownloadError, match="Re-running resumes") as error:
            pix2pix.download("cityscapes", out_dir, url=server.url, progress=False)
        assert server.url in str(error.value)
        assert os.path.getsize(os.path.join(out_dir, "cityscapes.tar.gz.part")) == 1500
        path = pix2pix.download("cityscapes", out_dir, url=server.url, progress=False)
    assert server.ranges == [None, "bytes=1500-"]
    _assert_unpacked(path)


def test_server_ignoring_range_restarts_from_scratch(tmp_path):
    payload = _tarball(tmp_path)
    out_dir = tmp_path / "data"
    out_dir.mkdir()
    # Wrong bytes: appending the rest to them would give a broken archive.
    (out_dir / "cityscapes.tar.gz.part").write_bytes(b"x" * 1000)
    with _Server(payload, honour_range=False).running() as server:
        path = pix2pix.download("cityscapes", str(out_dir), url=server.url, progress=False)
    assert server.ranges == ["bytes=1000-"]
    _assert_unpacked(path)


def test_member_outside_the_folder_is_rejected(tmp_path):
    payload = _tarball(tmp_path, extra=[("../evil", b"gotcha")])
    out_dir = tmp_path / "data"
    with _Server(payload).running() as server:
        with pytest.raises(ValueError, match=r"'\.\./evil' outside its folder"):
            pix2pix.download("cityscapes", str(out_dir), url=server.url, progress=False)
    assert not (tmp_path / "evil").exists()
    assert not (out_dir / "cityscapes").exists()
    assert [p for p in os.listdir(out_dir) if p.startswith(".tmp")] == []


def test_archive_without_val_images_is_rejected(tmp_path):
    source = write_pix2pix_dataset(str(tmp_path / "source" / "cityscapes"), num_train=2, num_val=0, height=16)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.add(source, arcname="cityscapes")
    with _Server(buffer.getvalue()).running() as server:
        with pytest.raises(ValueError, match="holds no images in cityscapes/val/"):
            pix2pix.download("cityscapes", str(tmp_path / "data"), url=server.url, progress=False)


def test_offline_error_names_the_url_and_the_manual_route(tmp_path):
    with socket.socket() as probe:  # a port that nothing listens on
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}/cityscapes.tar.gz"
    with pytest.raises(pix2pix.DownloadError) as error:
        pix2pix.download("cityscapes", str(tmp_path / "data"), url=url, progress=False)
    message = str(error.value)
    assert url in message and "by hand" in message and "cityscapes/train/*.jpg" in message


def test_unknown_dataset_needs_a_url(tmp_path):
    with pytest.raises(ValueError, match="cityscapes, edges2shoes"):
        pix2pix.download("facades", str(tmp_path))
    assert pix2pix.PIX2PIX_DATASETS["edges2shoes"] == (
        "http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/edges2shoes.tar.gz"
    )
