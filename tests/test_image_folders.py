import dataclasses
import os

import numpy as np
import pytest
from PIL import Image

from tests import synthetic_pix2pix
from tf_factorgan.data import image_folders, palette, pools

PHOTO = image_folders.PHOTO
LABEL_MAP = image_folders.LABEL_MAP


@pytest.fixture()
def user_palette(tmp_path):
    path = tmp_path / "palette.csv"
    path.write_text(synthetic_pix2pix.USER_PALETTE_CSV)
    return palette.read(str(path))


def _save(path, array, **kw):
    Image.fromarray(array).save(path, **kw)
    return str(path)


@pytest.mark.parametrize("value, expected", [("128", (128, 128)), (64, (64, 64)), ("128,256", (128, 256)),
                                             ("32x48", (32, 48))])
def test_load_size_is_a_side_or_height_and_width(value, expected):
    assert image_folders.parse_load_size(value) == expected


@pytest.mark.parametrize("value", ["100", "0", "16,20", "a", "16,32,48", ""])
def test_a_bad_load_size_names_the_flag(value):
    with pytest.raises(ValueError, match="load_size must be S or H,W"):
        image_folders.parse_load_size(value)


def test_stems_match_across_extensions_and_mismatches_are_listed(tmp_path):
    a, b = tmp_path / "photos", tmp_path / "labels"
    a.mkdir(), b.mkdir()
    pixel = np.zeros([2, 2, 3], np.uint8)
    for stem in ("x1", "x2", "x3", "only_a"):
        _save(a / f"{stem}.jpg", pixel)
    for stem in ("x1", "x2", "x3", "only_b1", "only_b2"):
        _save(b / f"{stem}.png", pixel)
    (a / "notes.txt").write_text("not an image")
    with pytest.raises(ValueError) as error:
        image_folders.match_stems(str(a), str(b), "--paired_a_dir", "--paired_b_dir")
    message = str(error.value)
    assert "3 stems match" in message
    assert "only in --paired_a_dir" in message and "1 (only_a.jpg)" in message
    assert "2 (only_b1.png, only_b2.png)" in message
    os.remove(a / "only_a.jpg"), os.remove(b / "only_b1.png"), os.remove(b / "only_b2.png")
    pairs = image_folders.match_stems(str(a), str(b), "--paired_a_dir", "--paired_b_dir")
    assert [(os.path.basename(x), os.path.basename(y)) for x, y in pairs] == [
        ("x1.jpg", "x1.png"), ("x2.jpg", "x2.png"), ("x3.jpg", "x3.png")]
    _save(a / "x1.png", pixel)
    with pytest.raises(ValueError, match="--paired_a_dir: 1 file stem.* x1.jpg, x1.png"):
        image_folders.match_stems(str(a), str(b), "--paired_a_dir", "--paired_b_dir")


def test_an_empty_or_missing_folder_names_the_flag(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"--unpaired_a_dir='.*' holds no images"):
        image_folders.list_images(str(tmp_path), "--unpaired_a_dir")
    with pytest.raises(FileNotFoundError, match=r"--val_b_dir='.*nope' is not a folder"):
        image_folders.list_images(str(tmp_path / "nope"), "--val_b_dir")


def _stripes(tmp_path):
    """A 10 x 20 grey image of four vertical stripes 0, 80, 160, 240, 5 pixels wide."""
    array = np.repeat(np.repeat(np.array([0, 80, 160, 240], np.uint8), 5)[None], 10, axis=0)
    return _save(tmp_path / "stripes.png", array)


def test_resize_modes_stretch_crop_and_pad(tmp_path):
    path = _stripes(tmp_path)
    spec = lambda mode: image_folders.PartSpec(PHOTO, (16, 16), mode)
    stretched = image_folders.decode((path, None), spec("stretch"))[..., 0]
    assert stretched.shape == (16, 16)
    np.testing.assert_allclose(stretched[8, [1, 5, 10, 14]], [0, 80, 160, 240], atol=3)
    # Cover 16 x 16: scaled to 16 x 32, the middle 16 columns are the inner two stripes.
    cropped = image_folders.decode((path, None), spec("crop"))[..., 0]
    np.testing.assert_allclose(cropped[8, [3, 4, 11, 12]], [80, 80, 160, 160], atol=3)
    # Fit inside 16 x 16: scaled to 8 x 16, centred with 4 black rows above and below.
    padded = image_folders.decode((path, None), spec("pad"))[..., 0]
    assert padded[:4].max() == 0 and padded[12:].max() == 0
    np.testing.assert_allclose(padded[8, [1, 5, 10, 14]], [0, 80, 160, 240], atol=3)


def test_photo_modes_grey_colour_alpha_and_sixteen_bit(tmp_path):
    size = (16, 16)
    spec = image_folders.PartSpec(PHOTO, size)
    rgba = np.zeros([16, 16, 4], np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 10  # nearly transparent red: alpha is dropped
    assert image_folders.decode((_save(tmp_path / "a.png", rgba), None), spec)[0, 0].tolist() == [200, 0, 0]
    grey16 = np.full([16, 16], 257 * 100, np.uint16)
    decoded = image_folders.decode((_save(tmp_path / "g.png", grey16), None), spec)
    assert decoded.shape == (16, 16, 1) and decoded[0, 0, 0] == 100
    grey = _save(tmp_path / "l.png", np.full([16, 16], 7, np.uint8))
    colour = _save(tmp_path / "c.webp", np.zeros([16, 16, 3], np.uint8))
    assert image_folders.channels([(grey, None)], spec, "--x") == 1
    assert image_folders.channels([(colour, None)], spec, "--x") == 3
    with pytest.raises(ValueError, match=r"--unpaired_a_dir mixes grey and colour images: 1 grey "
                                         r"\(e.g. l.png\) and 1 colour \(e.g. c.webp\)"):
        image_folders.channels([(grey, None), (colour, None)], spec, "--unpaired_a_dir")


def test_unpaired_grey_among_colour_pairs_fails_before_decoding(tmp_path, monkeypatch):
    spec = image_folders.PartSpec(PHOTO, (16, 16))
    grey = [(_save(tmp_path / f"g{i}.png", np.full([16, 16], 7, np.uint8)), None) for i in range(2)]
    monkeypatch.setattr(image_folders, "decode", lambda *a: pytest.fail("decoded"))
    cache = tmp_path / "cache"
    with pytest.raises(ValueError, match="--unpaired_a_dir holds grey images, the paired ones are colour; "
                                         "convert them to one kind"):
        image_folders.load_pool(grey, spec, str(cache), "--unpaired_a_dir", progress=False, paired_channels=3)
    assert not cache.exists() or not os.listdir(cache)


def test_label_maps_keep_palette_colours_and_read_index_pngs(tmp_path, user_palette):
    ids = np.zeros([8, 16], np.uint8)
    ids[:, 8:] = 2  # road left, car right
    colours = synthetic_pix2pix.LABEL_COLOURS[ids]
    spec = image_folders.PartSpec(LABEL_MAP, (16, 16), "stretch", user_palette)
    from_colour = image_folders.decode((_save(tmp_path / "c.png", colours), None), spec)
    from_ids = image_folders.decode((_save(tmp_path / "i.png", ids), None), spec)
    np.testing.assert_array_equal(from_colour, from_ids)
    # Nearest-neighbour resizing invents no colour.
    assert {tuple(c) for c in from_colour.reshape(-1, 3)} == {(128, 64, 128), (0, 0, 142)}
    padded = image_folders.decode((str(tmp_path / "i.png"), None),
                                  image_folders.PartSpec(LABEL_MAP, (16, 16), "pad", user_palette))
    assert padded[0, 0].tolist() == [0, 0, 0] and padded[8, 0].tolist() == [128, 64, 128]


def test_label_colours_outside_the_palette_are_counted_and_named(tmp_path, user_palette):
    colours = synthetic_pix2pix.LABEL_COLOURS[np.zeros([4, 4], int)]
    colours[0, :3] = (1, 2, 3)
    path = _save(tmp_path / "bad.png", colours)
    spec = image_folders.PartSpec(LABEL_MAP, (16, 16), "stretch", user_palette)
    with pytest.raises(ValueError, match=r"bad\.png: 3 of 16 pixels .*\(1, 2, 3\): 3 pixels.*PNG"):
        image_folders.decode((path, None), spec)
    with pytest.raises(ValueError, match=r"ids\.png.*\b7\b"):
        image_folders.decode((_save(tmp_path / "ids.png", np.full([4, 4], 7, np.uint8)), None), spec)


def test_an_unreadable_image_is_named(tmp_path):
    path = tmp_path / "broken.jpg"
    path.write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(ValueError, match=r"cannot read image '.*broken\.jpg'"):
        image_folders.decode((str(path), None), image_folders.PartSpec(PHOTO, (16, 16)))


def test_aligned_halves_split_each_file(tmp_path):
    array = np.zeros([16, 32, 3], np.uint8)
    array[:, 16:] = 255
    path = _save(tmp_path / "pair.png", array)
    spec = image_folders.PartSpec(PHOTO, (16, 16))
    left, right = (image_folders.decode(item, spec) for item in image_folders.halves([path], 0)
                   + image_folders.halves([path], 1))
    assert left.max() == 0 and right.min() == 255


def test_the_cache_decodes_once_and_again_when_a_file_changes(tmp_path, monkeypatch):
    folders = synthetic_pix2pix.write_image_folders(str(tmp_path / "data"), {"unpaired_a": 5})
    items = image_folders.whole(image_folders.list_images(folders["unpaired_a"][0], "--unpaired_a_dir"))
    spec = image_folders.PartSpec(PHOTO, (16, 16))
    cache = str(tmp_path / "cache")
    first = image_folders.load_pool(items, spec, cache, "--unpaired_a_dir", progress=False)
    assert isinstance(first, np.ndarray) and first.shape == (5, 16, 16, 3)
    decoded = []
    original = image_folders._decoded
    monkeypatch.setattr(image_folders, "_decoded", lambda *a: decoded.append(a) or original(*a))
    again = image_folders.load_pool(items, spec, cache, "--unpaired_a_dir", progress=False)
    np.testing.assert_array_equal(again, first)
    assert decoded == []
    _save(items[2][0], np.full([24, 32, 3], 9, np.uint8))
    changed = image_folders.load_pool(items, spec, cache, "--unpaired_a_dir", progress=False)
    assert len(decoded) == 5 and changed[2].max() == 9
    np.testing.assert_array_equal(changed[[0, 1, 3, 4]], first[[0, 1, 3, 4]])
    # Past the memory limit the pool stays on disk, with the same rows.
    on_disk = image_folders.load_pool(items, spec, cache, "--unpaired_a_dir", memory_limit_mb=0, progress=False)
    assert isinstance(on_disk, pools.DiskArray)
    np.testing.assert_array_equal(on_disk.take([4, 2]), changed[[4, 2]])


def test_pad_fills_label_maps_with_a_colour_only_ignored_classes_use(tmp_path):
    shared = palette.from_json([
        {"id": 0, "name": "void", "colour": [0, 0, 142], "ignored": True},
        {"id": 1, "name": "car", "colour": [0, 0, 142], "ignored": False},
        {"id": 2, "name": "road", "colour": [128, 64, 128], "ignored": False},
        {"id": 3, "name": "border", "colour": [9, 9, 9], "ignored": True}])
    spec = image_folders.PartSpec(LABEL_MAP, (16, 16), "pad", shared)
    assert spec.fill() == (9, 9, 9)  # not car's colour, which void shares
    only_shared = palette.from_json([
        {"id": 0, "name": "void", "colour": [0, 0, 142], "ignored": True},
        {"id": 1, "name": "car", "colour": [0, 0, 142], "ignored": False}])
    with pytest.raises(ValueError, match="resize=pad needs a palette colour that only ignored"):
        image_folders.PartSpec(LABEL_MAP, (16, 16), "pad", only_shared)


def test_photos_are_read_as_displayed_by_their_exif_orientation(tmp_path):
    stored = np.zeros([20, 40, 3], np.uint8)
    stored[:, :20] = 255  # left half white as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise for display
    path = tmp_path / "phone.jpg"
    Image.fromarray(stored).save(path, exif=exif, quality=95)
    shown = image_folders.decode((str(path), None), image_folders.PartSpec(PHOTO, (40, 20)))
    assert shown.shape == (40, 20, 3)
    assert shown[:18].mean() > 240 and shown[22:].mean() < 15  # the white half is now on top


def test_files_are_listed_and_paired_in_natural_order(tmp_path):
    """Numbers in names count as numbers: "the first N" of 1..12.png are 1..N, not
    1, 10, 11, 12, 2, ... as text order would take them."""
    from tf_factorgan.data import file_order

    assert file_order.natural_sorted(["img10.png", "img2.png", "img10a.png", "b1.png", "a.png", "img1.png"]) == [
        "a.png", "b1.png", "img1.png", "img2.png", "img10.png", "img10a.png"]
    # Equal as numbers, still one order (by text): 01 before 1.
    assert file_order.natural_sorted(["1.png", "01.png"]) == ["01.png", "1.png"]
    a, b = tmp_path / "photos", tmp_path / "labels"
    a.mkdir(), b.mkdir()
    pixel = np.zeros([2, 2, 3], np.uint8)
    for n in range(1, 13):
        _save(a / f"{n}.jpg", pixel), _save(b / f"{n}.png", pixel)
    listed = [os.path.basename(p) for p in image_folders.list_images(str(a), "--paired_a_dir")]
    assert listed == [f"{n}.jpg" for n in range(1, 13)]
    pairs = image_folders.match_stems(str(a), str(b), "--paired_a_dir", "--paired_b_dir")
    assert [(os.path.basename(x), os.path.basename(y)) for x, y in pairs[:3]] == [
        ("1.jpg", "1.png"), ("2.jpg", "2.png"), ("3.jpg", "3.png")]


def test_jpeg_label_maps_snap_to_the_palette_and_far_colours_fail(tmp_path, user_palette, capsys):
    """--snap_label_colours: a JPEG of a label map (colours blurred by compression)
    decodes to the exact map its PNG gives, the moved pixels are counted in one line
    (also when the cache is read), and a colour far from every class fails naming the
    file; without the option the JPEG is refused, the error naming the option."""
    ids = np.zeros([32, 32], np.uint8)
    ids[:, 16:] = 2  # road left, car right
    ids[:8] = 1  # sky on top
    colours = synthetic_pix2pix.LABEL_COLOURS[ids]
    jpeg = _save(tmp_path / "map.jpg", colours, quality=75)
    blurred = np.asarray(Image.open(jpeg).convert("RGB"))
    moved = int(np.count_nonzero(np.any(blurred != colours, axis=-1)))
    assert moved > 0  # JPEG did change colours
    exact = image_folders.PartSpec(LABEL_MAP, (16, 16), "stretch", user_palette)
    with pytest.raises(ValueError, match=r"map\.jpg: .* not in the palette.*or let snap_label_colours=D"):
        image_folders.decode((jpeg, None), exact)
    snapping = image_folders.PartSpec(LABEL_MAP, (16, 16), "stretch", user_palette, snap=60)
    png = image_folders.decode((_save(tmp_path / "map.png", colours), None), exact)
    np.testing.assert_array_equal(image_folders.decode((jpeg, None), snapping), png)
    cache = str(tmp_path / "cache")
    for cached in ("", " when it was decoded (cached)"):
        image_folders.load_pool([(jpeg, None)], snapping, cache, "{paired_b_dir}", progress=False)
        assert capsys.readouterr().out == (
            f"--paired_b_dir: moved {moved} of 1024 label-map pixels ({moved / 1024:.1%}) to the nearest "
            f"palette colour (--snap_label_colours=60){cached}\n")
    # Magenta lies 191 from the nearest class colour (road): not compression, a wrong file.
    colours[0, :5] = (255, 0, 255)
    wrong = _save(tmp_path / "wrong.png", colours)
    with pytest.raises(ValueError, match=r"^.*wrong\.png: 5 of 1024 pixels lie farther than snap_label_colours=60 "
                                         r"from every palette colour \(farthest: \(255, 0, 255\) at 191\)"):
        image_folders.decode((wrong, None), snapping)
    lenient = image_folders.decode((wrong, None), dataclasses.replace(snapping, snap=300))
    assert {tuple(c) for c in lenient.reshape(-1, 3)} <= {(128, 64, 128), (70, 130, 180), (0, 0, 142)}
