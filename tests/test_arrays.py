"""Loading the user's arrays: layouts (.npz / .npy, paired / unpaired / validation),
part names and order, dtypes and shapes, standardisation, held-out rows, and a clear
error for every bad input."""

import os
import pickle

import numpy as np
import pytest

from tf_factorgan import config
from tf_factorgan.data import arrays, sources


def _write(folder, name, **parts):
    path = os.path.join(folder, name)
    if name.endswith(".npy"):
        (value,) = parts.values()
        np.save(path, value)
    else:
        np.savez(path, **parts)
    return path


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(0)
    folder = str(tmp_path)
    a, b = 10 + 2 * rng.normal(size=(6, 3)), rng.integers(0, 5, size=6)  # b: ints, [N]
    return dict(
        folder=folder, a=a, b=b,
        pairs=_write(folder, "pairs.npz", a=a, b=b),
        extra_a=_write(folder, "extra_a.npy", x=rng.normal(size=(4, 3))),
        extra_b=_write(folder, "b.npy", x=np.arange(5)),
    )


def test_paired_npz_keeps_its_key_order_and_shapes(files):
    data = arrays.load(files["pairs"])
    assert data.part_names == ("a", "b") and data.part_sizes == (3, 1)
    assert data.observations.num_paired == 6 and data.val is None
    assert data.val_source == arrays.TRAINING
    for pool in data.observations.paired:
        assert pool.dtype == np.float32
    # Written z first: the file's order, not sorted.
    reordered = _write(files["folder"], "zfirst.npz", z=files["b"], a=files["a"])
    assert arrays.load(reordered).part_names == ("z", "a")


def test_parts_pick_the_order_and_ignore_other_keys(files):
    path = _write(files["folder"], "three.npz", a=files["a"], c=files["a"][:, :2], b=files["b"])
    data = arrays.load(path, parts=["b", "a"])
    assert data.part_names == ("b", "a") and data.part_sizes == (1, 3)
    assert data.ignored_keys == ("c",) and "ignored (not in --parts): ['c']" in data.describe()


def test_npy_files_take_their_stems_or_the_given_names(files):
    folder = files["folder"]
    paths = [_write(folder, "left.npy", x=files["a"]), _write(folder, "right.npy", x=files["b"])]
    assert arrays.load(",".join(paths)).part_names == ("left", "right")
    assert arrays.load(",".join(paths), parts=["p", "q"]).part_names == ("p", "q")


def test_unpaired_entries_of_every_form(files):
    folder = files["folder"]
    rng = np.random.default_rng(1)
    both = _write(folder, "both.npz", a=rng.normal(size=(2, 3)), b=np.ones(7))
    single = _write(folder, "single.npz", anything=rng.normal(size=(3, 3)))
    forms = {
        f"a={files['extra_a']},{files['extra_b']}": (4, 5),  # name=.npy, stem .npy
        both: (2, 7),  # every key a part
        f"a={single}": (3, 0),  # the only array of an .npz
        f"b={both}": (0, 7),  # the part's key
    }
    for unpaired, counts in forms.items():
        data = arrays.load(files["pairs"], unpaired)
        assert tuple(data.observations.num_unpaired(k) for k in range(2)) == counts, unpaired


def test_standardised_from_every_observation_and_mapped_back(files):
    data = arrays.load(files["pairs"], f"a={files['extra_a']},{files['extra_b']}")
    extra_a = np.load(files["extra_a"])
    all_a = np.concatenate([files["a"], extra_a])
    np.testing.assert_allclose(data.standardiser.means[0], all_a.mean(axis=0))
    np.testing.assert_allclose(data.standardiser.stds[0], all_a.std(axis=0))
    np.testing.assert_allclose(data.standardiser.means[1], [np.concatenate([files["b"], np.arange(5)]).mean()])
    marginal = np.asarray(data.observations.marginal_pool(0))
    np.testing.assert_allclose(marginal.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(marginal.std(axis=0), 1, atol=1e-5)
    joined = np.concatenate([np.asarray(p) for p in data.observations.paired], axis=1)
    back = data.standardiser.to_user_units(joined)
    np.testing.assert_allclose(back, np.concatenate([files["a"], files["b"][:, None]], 1),
                               rtol=1e-5, atol=1e-5)
    summary = data.summary()
    assert summary["num_paired"] == 6 and summary["num_unpaired_a"] == 4
    assert summary["parts"] == ["a", "b"] and summary["part_sizes"] == [3, 1]


def test_a_constant_feature_gets_std_one(files):
    path = _write(files["folder"], "constant.npz", a=np.full((4, 2), 7.0), b=np.arange(4.0))
    data = arrays.load(path)
    np.testing.assert_array_equal(data.standardiser.stds[0], [1.0, 1.0])
    np.testing.assert_array_equal(data.observations.paired[0], 0.0)


def test_unpaired_rows_reach_the_marginal_streams_only(files):
    data = arrays.load(files["pairs"], f"a={files['extra_a']}")
    counts = sources.counts_by_stream(data.observations, {"joint": None, "marginal_0": 0, "marginal_1": 1})
    assert counts == {"joint": {"paired": 6, "unpaired": 0}, "marginal_0": {"paired": 6, "unpaired": 4},
                      "marginal_1": {"paired": 6, "unpaired": 0}}


def test_validation_npz_and_held_out_rows(files):
    folder = files["folder"]
    val = _write(folder, "val.npz", b=np.zeros(3), a=np.ones((3, 3)))
    data = arrays.load(files["pairs"], val_npz=val)
    assert data.val_source == arrays.VAL_NPZ and [v.shape for v in data.val] == [(3, 3), (3, 1)]
    # Standardised with the training statistics.
    np.testing.assert_allclose(data.val[0], data.standardiser.standardise(0, np.ones((3, 3))))
    assert data.references() == (list(data.val), list(data.val))

    held = arrays.load(files["pairs"], val_fraction=0.5, seed=3)
    assert held.val_source == arrays.HELD_OUT
    assert held.observations.num_paired == 3 and len(held.val[0]) == 3
    rows = np.concatenate([held.standardiser.to_user_units(np.concatenate(
        [np.asarray(p) for p in pools], axis=1)) for pools in (held.observations.paired, held.val)])
    original = np.concatenate([files["a"], files["b"][:, None]], 1)
    # Held-out and training rows split the paired rows, each row whole.
    np.testing.assert_allclose(np.sort(rows[:, 0]), np.sort(original[:, 0]), rtol=1e-5)
    again = arrays.load(files["pairs"], val_fraction=0.5, seed=3)
    np.testing.assert_array_equal(again.val[0], held.val[0])  # seeded

    marginals, joint = arrays.load(files["pairs"], f"a={files['extra_a']}").references()
    assert [len(m) for m in marginals] == [10, 6] and [len(j) for j in joint] == [6, 6]


def _bad_files(folder):
    """name -> (load kwargs, words of the error)."""
    rng = np.random.default_rng(2)
    good = _write(folder, "good.npz", a=rng.normal(size=(5, 2)), b=rng.normal(size=(5, 1)))
    w = lambda name, **parts: _write(folder, name, **parts)  # noqa: E731
    nan = rng.normal(size=(5, 2))
    nan[1, 1], nan[3, 0] = np.nan, np.inf
    pickled = os.path.join(folder, "pickled.npy")
    with open(pickled, "wb") as f:
        pickle.dump({"a": [1, 2]}, f)
    np.save(os.path.join(folder, "objects.npy"), np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    np.savez(os.path.join(folder, "objects.npz"), a=np.array([{"a": 1}, None], dtype=object), b=np.ones(2))
    broken = os.path.join(folder, "broken.npz")
    with open(broken, "wb") as f:
        f.write(b"PK\x03\x04 not really a zip")
    return {
        "rows differ": (dict(paired=w("rows.npz", a=np.ones((5, 2)), b=np.ones((4, 1)))),
                        ["row counts differ", "rows.npz, key 'a' has 5", "key 'b' has 4"]),
        "npy rows differ": (dict(paired=f"{w('x.npy', a=np.ones(3))},{w('y.npy', a=np.ones(4))}"),
                            ["row counts differ", "x.npy has 3", "y.npy has 4"]),
        "unpaired features": (dict(paired=good, unpaired=f"a={w('a3.npy', a=np.ones((2, 3)))}"),
                              ["--unpaired file", "a3.npy", "3 features per row", "part 'a' has 2"]),
        "missing key": (dict(paired=good, parts=["a", "c"]), ["good.npz has no key 'c'", "keys are ['a', 'b']"]),
        "missing val key": (dict(paired=good, val_npz=w("v.npz", a=np.ones((3, 2)))),
                            ["--val_npz", "v.npz has no key 'b'"]),
        "missing unpaired file": (dict(paired=good, unpaired=f"b={good.replace('good', 'vv')}"),
                                  ["--unpaired: file", "vv.npz", "does not exist"]),
        "missing unpaired key": (dict(paired=good, unpaired=f"b={w('ac.npz', a=np.ones(2), c=np.ones(2))}"),
                                 ["--unpaired file", "ac.npz has no key 'b'", "keys are ['a', 'c']"]),
        "unpaired key not a part": (dict(paired=good, unpaired=w("u.npz", a=np.ones((2, 2)), q=np.ones(2))),
                                    ["u.npz, key 'q'", "'q' is not a part"]),
        "unpaired stem not a part": (dict(paired=good, unpaired=w("other.npy", a=np.ones(2))),
                                     ["other.npy", "'other' is not a part"]),
        "part twice": (dict(paired=good, unpaired=f"{w('a.npy', a=np.ones((2, 2)))},a={w('a2.npy', a=np.ones((2, 2)))}"),
                       ["part 'a' twice"]),
        "non-finite": (dict(paired=w("nan.npz", a=nan, b=np.ones(5))),
                       ["nan.npz, key 'a'", "2 of 10 values are NaN, infinite", "row 1, column 1"]),
        "beyond float32": (dict(paired=w("big.npz", a=np.full((2, 1), 1e39), b=np.ones(2))),
                           ["2 of 2 values", "float32's range"]),
        "empty rows": (dict(paired=w("empty.npz", a=np.ones((0, 2)), b=np.ones((0, 1)))),
                       ["empty.npz, key 'a' is empty", "(0, 2)"]),
        "no features": (dict(paired=good, unpaired=f"a={w('nof.npy', a=np.ones((3, 0)))}"),
                        ["nof.npy is empty"]),
        "rank 3": (dict(paired=w("cube.npz", a=np.ones((2, 2, 2)), b=np.ones(2))),
                   ["key 'a' has shape (2, 2, 2)", "expected [rows, features] or [rows]"]),
        "complex": (dict(paired=w("complex.npz", a=np.ones(2) * 1j, b=np.ones(2))),
                    ["dtype complex128", "real numbers"]),
        "strings": (dict(paired=w("text.npz", a=np.array(["x", "y"]), b=np.ones(2))), ["dtype <U1"]),
        "object npz": (dict(paired=os.path.join(folder, "objects.npz")),
                       ["objects.npz, key 'a'", "pickled Python objects", "allow_pickle=False"]),
        "object npy": (dict(paired=f"{os.path.join(folder, 'objects.npy')},{w('ok.npy', a=np.ones(2))}"),
                       ["objects.npy holds pickled", "allow_pickle=False"]),
        "pickle": (dict(paired=f"{pickled},{w('ok2.npy', a=np.ones(2))}"), ["pickled.npy holds pickled"]),
        "not a zip": (dict(paired=broken), ["cannot read --paired file", "broken.npz"]),
        "missing file": (dict(paired=os.path.join(folder, "nowhere.npz")), ["--paired: file", "does not exist"]),
        "other extension": (dict(paired=w("pairs.npz", a=np.ones(2), b=np.ones(2)).replace(".npz", ".csv")),
                            [".csv' must be a .npy or .npz file"]),
        "no paired": (dict(paired=""), ["--paired is required"]),
        "one part": (dict(paired=w("one.npz", a=np.ones(3))), ["at least 2 parts"]),
        "mixture": (dict(paired=f"{good},{w('m.npy', a=np.ones(5))}"), ["not a mixture"]),
        "bad name": (dict(paired=w("names.npz", samples=np.ones(3), b=np.ones(3))), ["'samples'"]),
        "served name": (dict(paired=w("images.npz", images=np.ones(3), b=np.ones(3))), ["'images'"]),
        "npy named npz": (dict(paired=good, unpaired=f"a={_npy_as_npz(folder)}"),
                          ["npy_as.npz is a .npy array, not an .npz archive; name it .npy"]),
        "val npy": (dict(paired=good, val_npz=w("v.npy", a=np.ones((3, 2)))),
                    ["v.npy is a .npy array; --val_npz needs an .npz archive"]),
        "bad stem": (dict(paired=f"{w('my-part.npy', a=np.ones(2))},{w('ok3.npy', a=np.ones(2))}"),
                     ["part name 'my-part'"]),
        "parts count": (dict(paired=f"{w('p1.npy', a=np.ones(2))},{w('p2.npy', a=np.ones(2))}", parts=["a"]),
                        ["--parts names 1 parts, --paired gives 2 files"]),
        "one paired row": (dict(paired=w("single.npz", a=np.ones(1), b=np.ones(1))), ["need >= 2 paired rows"]),
        "val features": (dict(paired=good, val_npz=w("vf.npz", a=np.ones((3, 3)), b=np.ones(3))),
                         ["vf.npz, key 'a' has 3 features", "part 'a' has 2"]),
        "val rows": (dict(paired=good, val_npz=w("vr.npz", a=np.ones((3, 2)), b=np.ones(2))),
                     ["vr.npz: the parts' row counts differ"]),
        "val and fraction": (dict(paired=good, val_npz=w("vb.npz", a=np.ones((3, 2)), b=np.ones(3)),
                                  val_fraction=0.5), ["not both"]),
        "fraction too small": (dict(paired=good, val_fraction=0.1), ["holds out 0", ">= 2 held out"]),
    }


def _npy_as_npz(folder):
    path = os.path.join(folder, "npy_as.npz")
    with open(path, "wb") as f:
        np.save(f, np.ones((2, 2)))
    return path


def test_a_path_holding_an_equals_sign_is_a_path(tmp_path):
    folder = tmp_path / "run=1"
    folder.mkdir()
    paired = _write(str(tmp_path), "p.npz", a=np.ones((4, 2)), b=np.ones((4, 1)))
    extra = _write(str(folder), "a.npy", a=np.zeros((3, 2)))  # part "a" by its stem
    data = arrays.load(paired, extra)
    assert data.observations.num_unpaired(0) == 3


def test_every_bad_input_has_a_clear_error(tmp_path):
    for name, (kwargs, words) in _bad_files(str(tmp_path)).items():
        with pytest.raises((ValueError, FileNotFoundError)) as caught:
            arrays.load(**kwargs)
        message = config.flag_message(caught.value)  # as the command line says it
        for word in words:
            assert word in message, (name, message)


def test_any_real_dtype_is_read_as_float32(tmp_path):
    folder = str(tmp_path)
    path = _write(folder, "dtypes.npz", a=np.array([True, False, True]), b=np.array([[1], [2], [3]], np.uint8),
                  c=np.array([1.5, 2.5, 3.5], np.float16))
    data = arrays.load(path)
    assert data.part_sizes == (1, 1, 1) and data.observations.paired[1].dtype == np.float32
