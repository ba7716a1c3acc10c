"""Label palettes: the shipped Cityscapes table, CSV and JSON files and their errors,
the shared-colour rule, and label map conversions."""

import dataclasses
import json
import os
import re

import numpy as np
import pytest

from tests.conftest import REPO_ROOT
from tf_factorgan.data import palette
from tf_factorgan.data.palette import LabelClass, Palette

CAR = (0, 0, 142)
POLE = (153, 153, 153)
GROUND = (81, 0, 81)

# The label table the evaluation hard-coded before palettes were files, from
# cityscapesScripts, cityscapesscripts/helpers/labels.py: (name, id, trainId, color).
CITYSCAPES_TABLE = (
    ("unlabeled", 0, 255, (0, 0, 0)),
    ("ego vehicle", 1, 255, (0, 0, 0)),
    ("rectification border", 2, 255, (0, 0, 0)),
    ("out of roi", 3, 255, (0, 0, 0)),
    ("static", 4, 255, (0, 0, 0)),
    ("dynamic", 5, 255, (111, 74, 0)),
    ("ground", 6, 255, (81, 0, 81)),
    ("road", 7, 0, (128, 64, 128)),
    ("sidewalk", 8, 1, (244, 35, 232)),
    ("parking", 9, 255, (250, 170, 160)),
    ("rail track", 10, 255, (230, 150, 140)),
    ("building", 11, 2, (70, 70, 70)),
    ("wall", 12, 3, (102, 102, 156)),
    ("fence", 13, 4, (190, 153, 153)),
    ("guard rail", 14, 255, (180, 165, 180)),
    ("bridge", 15, 255, (150, 100, 100)),
    ("tunnel", 16, 255, (150, 120, 90)),
    ("pole", 17, 5, (153, 153, 153)),
    ("polegroup", 18, 255, (153, 153, 153)),
    ("traffic light", 19, 6, (250, 170, 30)),
    ("traffic sign", 20, 7, (220, 220, 0)),
    ("vegetation", 21, 8, (107, 142, 35)),
    ("terrain", 22, 9, (152, 251, 152)),
    ("sky", 23, 10, (70, 130, 180)),
    ("person", 24, 11, (220, 20, 60)),
    ("rider", 25, 12, (255, 0, 0)),
    ("car", 26, 13, (0, 0, 142)),
    ("truck", 27, 14, (0, 0, 70)),
    ("bus", 28, 15, (0, 60, 100)),
    ("caravan", 29, 255, (0, 0, 90)),
    ("trailer", 30, 255, (0, 0, 110)),
    ("train", 31, 16, (0, 80, 100)),
    ("motorcycle", 32, 17, (0, 0, 230)),
    ("bicycle", 33, 18, (119, 11, 32)),
    ("license plate", -1, -1, (0, 0, 142)),
)


def test_the_shipped_cityscapes_file_is_the_label_table():
    cityscapes = palette.cityscapes()
    assert cityscapes is palette.cityscapes()  # cached
    assert os.path.isfile(palette.CITYSCAPES_FILE)
    assert cityscapes.classes == tuple(
        LabelClass(id, name, colour, train_id in (255, -1)) for name, id, train_id, colour in CITYSCAPES_TABLE
    )
    classes = cityscapes.classes
    assert len(classes) == 35
    assert sorted(c.id for c in classes) == list(range(-1, 34))
    train_id = {name: t for name, _, t, _ in CITYSCAPES_TABLE}
    # The evaluated classes in file order are those of train ids 0..18 in order.
    assert [train_id[c.name] for c in cityscapes.evaluated] == list(range(19))
    assert {train_id[c.name] for c in classes if c.ignored} == {255, -1}
    np.testing.assert_array_equal(
        cityscapes.evaluated_ids(), [7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33]
    )
    by_name = {c.name: c for c in classes}
    assert by_name["car"].colour == by_name["license plate"].colour == CAR
    assert by_name["pole"].colour == by_name["polegroup"].colour == POLE
    assert (by_name["ground"].ignored, by_name["ground"].colour) == (True, GROUND)
    with pytest.raises(dataclasses.FrozenInstanceError):
        by_name["car"].id = 0
    with pytest.raises(ValueError, match="read-only"):
        cityscapes.evaluated_colours()[0, 0] = 1.0
    # The Bazel library ships the file.
    with open(os.path.join(REPO_ROOT, "BUILD")) as f:
        assert '"tf_factorgan/data/palettes/cityscapes.csv"' in f.read()


USER_CSV = """\
# Land cover, in the palette format of the README.

id,name,r,g,b,ignored
5, sea ,0,0,255,no
0,void,0,0,0,YES
  # an indented comment
9,"land, dry",0,255,0,False
3,sand,255,255,0,0
7,unknown,0,0,0,1
"""
USER = Palette((
    LabelClass(5, "sea", (0, 0, 255), False),
    LabelClass(0, "void", (0, 0, 0), True),
    LabelClass(9, "land, dry", (0, 255, 0), False),
    LabelClass(3, "sand", (255, 255, 0), False),
    LabelClass(7, "unknown", (0, 0, 0), True),
))


def test_csv_and_json_files_round_trip(tmp_path):
    (tmp_path / "user.csv").write_text(USER_CSV)
    read = palette.read(str(tmp_path / "user.csv"))
    assert read == USER
    assert read.evaluated_names() == ("sea", "land, dry", "sand")
    np.testing.assert_array_equal(read.evaluated_ids(), [5, 9, 3])
    assert read.evaluated_ids().dtype == np.int32
    np.testing.assert_array_equal(read.evaluated_colours(), np.array([[0, 0, 1], [0, 1, 0], [1, 1, 0]], np.float32))
    # Distinct colours: evaluated first, then black (void and unknown) once.
    assert read.full_colours().shape == (4, 3) and read.full_colours().dtype == np.float32
    np.testing.assert_array_equal(read.full_colours()[3], [0, 0, 0])
    np.testing.assert_array_equal(read.full_ignored(), [False, False, False, True])

    for name in ("again.csv", "again.json", "UPPER.JSON"):
        palette.write(str(tmp_path / name), read)
        assert palette.read(str(tmp_path / name)) == USER
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".tmp-")]  # atomic writes
    assert (tmp_path / "again.csv").read_text().splitlines()[:4] == [
        "id,name,r,g,b,ignored", "5,sea,0,0,255,false", "0,void,0,0,0,true", '9,"land, dry",0,255,0,false',
    ]
    written = json.loads((tmp_path / "again.json").read_text())
    assert written[0] == {"id": 5, "name": "sea", "colour": [0, 0, 255], "ignored": False}

    value = USER.to_json()
    assert value == written
    assert palette.from_json(value) == USER
    assert palette.from_json({"classes": value}) == USER
    assert palette.from_json(json.loads(json.dumps(value))) == USER  # through a generator spec


def _csv(*lines: str) -> str:
    return "\n".join(("id,name,r,g,b,ignored",) + lines) + "\n"


CSV_ERRORS = {
    "too few columns": (_csv("1,sea,0,0,255,false", "2,land,0,255,false"), "line 3", "expected 6 columns"),
    "too many columns": (_csv("1,sea,0,0,255,false,x"), "line 2", "got 7"),
    "id not an integer": (_csv("1,sea,0,0,255,false", "1.5,land,0,255,0,false"), "line 3", "id must be an integer, got '1.5'"),
    "colour above 255": (_csv("1,sea,0,0,256,false"), "line 2", "colour must lie in 0..255, got b=256"),
    "colour below 0": (_csv("1,sea,-1,0,0,false"), "line 2", "got r=-1"),
    "colour not an integer": (_csv("1,sea,0,0.5,0,false"), "line 2", "g must be an integer"),
    "ignored not a boolean": (_csv("1,sea,0,0,255,maybe"), "line 2", "ignored must be one of true/false/yes/no/1/0, got 'maybe'"),
    "empty name": (_csv("1,,0,0,255,false"), "line 2", "class name must be a non-empty"),
    "duplicate id": (_csv("1,sea,0,0,255,false", "", "1,land,0,255,0,false"), "line 2 and line 4 both have id 1", ""),
    "duplicate name": (_csv("1,sea,0,0,255,false", "2,sea,0,255,0,false"), "line 2 and line 3 both have name 'sea'", ""),
    "header only": (_csv(), "the palette has no classes", ""),
    "empty file": ("# nothing here\n\n", "no header line", "no classes"),
    "wrong header": ("id,name,colour,ignored\n1,sea,#0000ff,false\n", "line 1", "the first line must be the header id,name,r,g,b,ignored"),
    "no evaluated class": (_csv("1,sea,0,0,255,true"), "every class is ignored", ""),
    "evaluated classes share a colour": (
        _csv("1,sea,0,0,255,false", "2,void,0,0,0,true", "3,lake,0,0,255,false"),
        "line 2 (sea) and line 4 (lake) are both evaluated and share colour (0, 0, 255)", "at most one",
    ),
}


@pytest.mark.parametrize("name", sorted(CSV_ERRORS))
def test_csv_errors_name_the_file_and_the_line(tmp_path, name):
    text, first, second = CSV_ERRORS[name]
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(ValueError) as error:
        palette.read(str(path))
    message = str(error.value)
    assert message.startswith(str(path)), message
    assert first in message and second in message, message


def _entry(id=1, name="sea", colour=(0, 0, 255), ignored=False):
    return {"id": id, "name": name, "colour": list(colour), "ignored": ignored}


JSON_ERRORS = {
    "not a list": ({"sea": 1}, "a palette must be a list of class objects"),
    "missing key": ([{"id": 1, "name": "sea", "colour": [0, 0, 255]}], "classes[0] must be an object with the keys"),
    "american spelling": ([{"id": 1, "name": "sea", "color": [0, 0, 255], "ignored": False}], "got ['color', 'id'"),
    "id a string": ([_entry(id="1")], "classes[0]: id must be an integer, got '1'"),
    "id a boolean": ([_entry(id=True)], "classes[0]: id must be an integer"),
    "colour out of range": ([_entry(), _entry(2, "land", (0, 300, 0))], "classes[1]: class 'land': colour must be three integers in 0..255"),
    "colour of two": ([_entry(colour=(0, 0))], "classes[0]: class 'sea': colour must be three"),
    "colour a string": ([{**_entry(), "colour": "#0000ff"}], "classes[0]: colour must be a list [r, g, b]"),
    "ignored a string": ([_entry(ignored="no")], "classes[0]: class 'sea': ignored must be true or false"),
    "duplicate id": ([_entry(), _entry(2, "land", (0, 255, 0)), _entry(1, "sand", (255, 255, 0))], "classes[0] and classes[2] both have id 1"),
    "empty": ([], "the palette has no classes"),
    "no evaluated class": ([_entry(ignored=True)], "every class is ignored"),
    "evaluated classes share a colour": ([_entry(), _entry(2, "lake")], "classes[0] (sea) and classes[1] (lake) are both evaluated"),
}


@pytest.mark.parametrize("name", sorted(JSON_ERRORS))
def test_json_errors_name_the_file_and_the_entry(tmp_path, name):
    value, expected = JSON_ERRORS[name]
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(value))
    with pytest.raises(ValueError, match=re.escape(f"{path}: ") + ".*" + re.escape(expected)):
        palette.read(str(path))
    with pytest.raises(ValueError, match=re.escape("spec data.palette: ") + ".*" + re.escape(expected)):
        palette.from_json(value, "spec data.palette")


def test_unreadable_files_are_named(tmp_path):
    (tmp_path / "p.json").write_text('[{"id": 1')
    with pytest.raises(ValueError, match=re.escape(f"{tmp_path / 'p.json'} is not valid JSON")):
        palette.read(str(tmp_path / "p.json"))
    (tmp_path / "p.csv").write_bytes(b"id,name,r,g,b,ignored\n1,\xff,0,0,0,false\n")
    with pytest.raises(ValueError, match=re.escape(f"{tmp_path / 'p.csv'} is not UTF-8")):
        palette.read(str(tmp_path / "p.csv"))
    with pytest.raises(ValueError, match=re.escape(f"{tmp_path / 'p.txt'}: a palette file must end in .csv or .json")):
        palette.read(str(tmp_path / "p.txt"))
    with pytest.raises(ValueError, match="must end in .csv or .json"):
        palette.write(str(tmp_path / "p.yaml"), USER)
    with pytest.raises(FileNotFoundError, match="missing.csv"):
        palette.read(str(tmp_path / "missing.csv"))


def test_a_shared_colour_belongs_to_the_evaluated_class():
    # The ignored class comes first in the file; the colour is still the evaluated one's.
    shared = Palette((
        LabelClass(-1, "license plate", CAR, True),
        LabelClass(26, "car", CAR, False),
        LabelClass(0, "unlabeled", (0, 0, 0), True),
        LabelClass(1, "ego vehicle", (0, 0, 0), True),
    ))
    rgb = np.array([[CAR, (0, 0, 0)]], np.uint8)
    ids = shared.colours_to_ids(rgb, "map.png")
    assert ids.dtype == np.int32
    # Black, shared by ignored classes only, is the first of them in the file.
    np.testing.assert_array_equal(ids, [[26, 0]])
    np.testing.assert_array_equal(shared.full_ignored(), [False, True])
    # Cityscapes: car and pole pixels are car and pole.
    cityscapes = palette.cityscapes()
    np.testing.assert_array_equal(cityscapes.colours_to_ids(np.array([CAR, POLE, GROUND], np.uint8), "x"), [26, 17, 6])
    with pytest.raises(ValueError, match=r"classes\[0\] \(car\) and classes\[1\] \(lorry\) are both evaluated"):
        Palette((LabelClass(1, "car", CAR, False), LabelClass(2, "lorry", CAR, False)))


def test_colours_and_ids_round_trip_on_cityscapes():
    cityscapes = palette.cityscapes()
    ids = np.array([[7, 26, 33], [0, 6, 17]], np.uint8)  # as a *_labelIds.png holds them
    rgb = cityscapes.ids_to_colours(ids, "labels.png")
    assert rgb.dtype == np.uint8 and rgb.shape == (2, 3, 3)
    np.testing.assert_array_equal(rgb[0], [(128, 64, 128), CAR, (119, 11, 32)])
    np.testing.assert_array_equal(rgb[1], [(0, 0, 0), GROUND, POLE])
    np.testing.assert_array_equal(cityscapes.colours_to_ids(rgb, "labels.png"), ids)
    # Every class's colour maps back to its id, except where a colour is shared.
    every = np.array([c.id for c in cityscapes.classes])
    back = cityscapes.colours_to_ids(cityscapes.ids_to_colours(every, "x"), "x")
    changed = {int(i): int(b) for i, b in zip(every, back) if i != b}
    assert changed == {1: 0, 2: 0, 3: 0, 4: 0, 18: 17, -1: 26}


def test_unknown_colours_are_counted_and_the_most_common_named():
    # 7 unknown colours with 7, 6, ..., 1 pixels, and 3 road pixels.
    unknown = [(1, 2, 3), (9, 9, 9), (200, 0, 0), (0, 1, 0), (5, 5, 5), (6, 6, 6), (7, 7, 7)]
    pixels = [c for n, c in zip(range(7, 0, -1), unknown) for _ in range(n)] + [(128, 64, 128)] * 3
    rgb = np.array(pixels, np.uint8).reshape(1, 31, 3)
    with pytest.raises(ValueError) as error:
        palette.cityscapes().colours_to_ids(rgb, "data/val/b/0001.jpg")
    message = str(error.value)
    assert message.startswith("data/val/b/0001.jpg: 28 of 31 pixels have colours that are not in the palette")
    assert "(7 such colours; most common: (1, 2, 3): 7 pixels, (9, 9, 9): 6 pixels, (200, 0, 0): 5 pixels, " \
           "(0, 1, 0): 4 pixels, (5, 5, 5): 3 pixels)" in message
    assert "(6, 6, 6)" not in message
    assert "saved losslessly (PNG, not JPEG) in the palette's exact colours" in message
    with pytest.raises(ValueError, match=r"m\.png: 1 of 1 pixels .*\(0, 0, 1\): 1 pixel\)"):
        palette.cityscapes().colours_to_ids(np.array([0, 0, 1], np.uint8), "m.png")
    with pytest.raises(ValueError, match=r"m\.png: a colour label map must be uint8 \[\.\.\., 3\], got float32"):
        palette.cityscapes().colours_to_ids(np.zeros((2, 3), np.float32), "m.png")
    with pytest.raises(ValueError, match=r"got uint8 \[2, 4\]"):
        palette.cityscapes().colours_to_ids(np.zeros((2, 4), np.uint8), "m.png")


def test_unknown_ids_are_named_with_their_pixel_counts():
    ids = np.array([[40, 40, 7], [255, 40, 5]], np.uint8)
    with pytest.raises(ValueError) as error:
        USER.ids_to_colours(ids, "labels/0001.png")
    message = str(error.value)
    assert message.startswith("labels/0001.png: 4 of 6 pixels have ids that are not in the palette "
                              "(ids 40: 3 pixels, 255: 1 pixel); the palette has ids [0, 3, 5, 7, 9]"), message
    np.testing.assert_array_equal(USER.ids_to_colours(np.array([7, 9], np.int64), "x"), [(0, 0, 0), (0, 255, 0)])
    many = np.arange(100, 112)
    with pytest.raises(ValueError, match=r"ids 100: 1 pixel, .*, 109: 1 pixel and 2 more\)"):
        USER.ids_to_colours(many, "x")
    with pytest.raises(ValueError, match="x: a class id map must hold integers, got float32"):
        USER.ids_to_colours(np.zeros(2, np.float32), "x")


def test_label_classes_are_checked():
    assert LabelClass(1, "sea", [0, 0, np.uint8(255)]).colour == (0, 0, 255)
    assert LabelClass(1, "sea", (0, 0, 255)).ignored is False
    with pytest.raises(ValueError, match="class id must be an integer"):
        LabelClass(1.0, "sea", (0, 0, 255))
    with pytest.raises(ValueError, match="without surrounding spaces"):
        LabelClass(1, " sea", (0, 0, 255))
    with pytest.raises(ValueError, match="colour must be three integers"):
        LabelClass(1, "sea", (0, 0, 255, 0))
    with pytest.raises(ValueError, match="ignored must be true or false"):
        LabelClass(1, "sea", (0, 0, 255), 1)
    with pytest.raises(ValueError, match="LabelClass objects"):
        Palette(((1, "sea", (0, 0, 255), False),))
