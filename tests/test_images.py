import numpy as np
import tensorflow as tf

from tf_factorgan import images


def test_image_grid_places_images_row_major_and_pads():
    imgs = np.stack([np.full((2, 3, 1), i / 10, np.float32) for i in range(5)])
    grid = images.image_grid(imgs, columns=2)
    assert grid.shape == (3 * 2, 2 * 3, 1)
    assert grid[0, 0, 0] == 0.0 and grid[0, 3, 0] == np.float32(0.1)
    assert grid[2, 0, 0] == np.float32(0.2) and grid[4, 0, 0] == np.float32(0.4)
    assert np.all(grid[4:, 3:] == 0)


def test_write_png_round_trips(tmp_path):
    image = np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4, 1)
    path = tmp_path / "grid.png"
    images.write_png(str(path), image)
    decoded = tf.io.decode_png(path.read_bytes()).numpy()
    np.testing.assert_array_equal(decoded[..., 0], np.round(image[..., 0] * 255).astype(np.uint8))
    assert [p.name for p in tmp_path.iterdir()] == ["grid.png"]


def test_image_grid_padding_frames_every_image():
    imgs = np.stack([np.full((2, 3, 1), (i + 1) / 10, np.float32) for i in range(3)])
    grid = images.image_grid(imgs, columns=2, padding=1, pad_value=0.5)
    assert grid.shape == (2 * (2 + 1) + 1, 2 * (3 + 1) + 1, 1)
    for line in (grid[0], grid[3], grid[6], grid[:, 0], grid[:, 4], grid[:, 8]):
        assert np.all(line == 0.5)
    assert np.all(grid[1:3, 1:4] == np.float32(0.1)) and np.all(grid[1:3, 5:8] == np.float32(0.2))
    assert np.all(grid[4:6, 1:4] == np.float32(0.3)) and np.all(grid[4:6, 5:8] == 0.0)
    np.testing.assert_array_equal(images.image_grid(imgs, 2, padding=0), images.image_grid(imgs, 2))
