"""Vector data of K >= 2 parts from the user's NumPy files, checked and standardised.

Every part k is a float matrix [N, F_k] (a vector [N] counts as [N, 1]; any real
dtype, bool and integers included, becomes float32). Files:

  --paired     one .npz with one array per part (rows aligned: row n of every array
               is one sample), or one .npy per part: --paired=a.npy,b.npy
  --unpaired   optional, comma-separated; each entry is one of
                 name=path.npy   part `name` observed alone
                 name=path.npz   the array of key `name` in it (or its only array)
                 path.npz        every key of it is a part name: that part's rows
                 path.npy        the part named by the file's stem (extra/a.npy -> a)
               Each part's unpaired rows have their own count; their feature size
               must be the paired part's.
  --val_npz    optional paired validation set: an .npz with a key per part

Part names and their order (the order of the generator's output, the served
`samples` columns and the metrics): --parts=a,b,c when given (a paired .npz may hold
further keys, which are ignored and named in the data summary); else the key order of
the paired .npz, which is the order `np.savez(path, a=..., b=...)` wrote them; else,
with .npy files, the file stems in the order given. A name is a letter followed by
letters, digits or underscores (it names metrics and served outputs), not ending in
"_bytes" (TF Serving's REST API would base64-encode it), and none of "samples",
"joint", "marginal_mean" (taken by the served output and the metrics fd_joint and
fd_marginal_mean).

Every file is read with allow_pickle=False: pickled objects are refused, not run.
Errors name the setting (`config.SettingError`), the file, the key and what was expected.

Standardisation: each feature of part k gets the mean and standard deviation (ddof 0)
of every training observation of part k, paired and unpaired together; a constant
feature gets std 1. Training, the metrics and the held-out rows use standardised
values; `Standardiser.to_user_units` (and the export, from the generator spec) maps
generated samples back.

Evaluation data: --val_npz when given; else, with --val_fraction > 0, that fraction of
the paired rows (a seeded choice, at least 2 rows), which training then never sees;
else none, and the metrics compare against the training observations (see
`ArrayData.references`).
"""

import dataclasses
import os
import re
import zipfile
from typing import Optional, Sequence

import numpy as np

from tf_factorgan.config import SettingError, SettingPathError
from tf_factorgan.data import sources

NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
# Taken by served outputs (samples, images) and metrics (fd_joint, fd_marginal_mean).
RESERVED_NAMES = ("samples", "images", "joint", "marginal_mean")
EXTENSIONS = (".npy", ".npz")
# Where the evaluation data come from (`ArrayData.val_source`).
VAL_NPZ = "val_npz"
HELD_OUT = "held_out_paired"
TRAINING = "training"


def split_list(value: str) -> list[str]:
    """'a, b,,c' -> ['a', 'b', 'c'] (a comma-separated setting)."""
    return [item.strip() for item in value.split(",") if item.strip()]


def check_part_names(names: Sequence[str], where: str) -> None:
    """K >= 2 distinct names that can name metrics and served outputs."""
    if len(names) < 2:
        raise SettingError(f"{where}: a sample needs at least 2 parts, got {list(names)}")
    for name in names:
        if not NAME.match(name) or name in RESERVED_NAMES or name.endswith("_bytes"):
            raise SettingError(
                f"{where}: part name {name!r} must be a letter followed by letters, digits "
                f"or '_', not end in '_bytes' and not be one of {RESERVED_NAMES}")
    duplicates = sorted({n for n in names if list(names).count(n) > 1})
    if duplicates:
        raise SettingError(f"{where}: part names must differ, {duplicates} appear twice")


# --- Reading and checking one array -------------------------------------------------


def _extension(path: str, setting: str) -> str:
    extension = os.path.splitext(path)[1].lower()
    if extension not in EXTENSIONS:
        raise SettingError(f"{setting}: {path!r} must be a .npy or .npz file")
    if not os.path.isfile(path):
        raise SettingPathError(f"{setting}: file {path!r} does not exist")
    return extension


def _unreadable(where: str, error: Exception) -> SettingError:
    if isinstance(error, ValueError) and ("pickle" in str(error) or "Object arrays" in str(error)):
        return SettingError(
            f"{where} holds pickled Python objects (or is no NumPy file); arrays are read "
            "with allow_pickle=False, so save plain numeric arrays with np.save / np.savez")
    return SettingError(f"cannot read {where}: {error}")


def _open(path: str, setting: str):
    """np.load of `path` without pickles, checked against its extension: an ndarray
    for .npy, an open NpzFile (close it) for .npz."""
    extension = _extension(path, setting)
    where = f"{setting} file {path}"
    try:
        loaded = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
        raise _unreadable(where, error) from None
    # np.load goes by the content, not the name.
    if extension == ".npy" and not isinstance(loaded, np.ndarray):
        loaded.close()
        raise SettingError(f"{where} is an .npz archive, not a .npy array; name it .npz")
    if extension == ".npz" and isinstance(loaded, np.ndarray):
        raise SettingError(f"{where} is a .npy array, not an .npz archive; name it .npy")
    return loaded


def _load(path: str, setting: str, key: Optional[str] = None):
    """The array of a .npy file, or of `key` in an .npz (None: {key: array} of all)."""
    loaded = _open(path, setting)
    if isinstance(loaded, np.ndarray):
        return loaded
    where = f"{setting} file {path}"
    with loaded:
        keys = list(loaded.files)
        wanted = keys if key is None else [key]
        for name in wanted:
            if name not in keys:
                raise SettingError(f"{where} has no key {name!r}; its keys are {keys}")
        arrays = {}
        for name in wanted:
            try:
                arrays[name] = loaded[name]
            except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
                raise _unreadable(f"{where}, key {name!r},", error) from None
    return arrays if key is None else arrays[key]


def _npz_keys(path: str, setting: str) -> list[str]:
    """The keys of the .npz archive `path`."""
    loaded = _open(path, setting)
    if isinstance(loaded, np.ndarray):
        raise SettingError(f"{setting} file {path} is a .npy array; {setting} needs an .npz archive")
    with loaded:
        return list(loaded.files)


def as_matrix(array, where: str) -> np.ndarray:
    """A checked float32 [N, F] copy of `array` ([N, F] or [N], any real dtype);
    `where` names it in errors ("--paired file x.npz, key 'a'")."""
    array = np.asarray(array)
    if array.dtype.kind == "O":
        raise SettingError(f"{where} holds Python objects (dtype object); expected numbers")
    if array.dtype.kind not in "biuf":
        raise SettingError(f"{where} has dtype {array.dtype}; expected real numbers "
                         "(float, integer or bool)")
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2:
        raise SettingError(f"{where} has shape {array.shape}; expected [rows, features] or [rows]")
    if array.size == 0:
        raise SettingError(f"{where} is empty (shape {array.shape}); expected at least one "
                         "row and one feature")
    with np.errstate(over="ignore", invalid="ignore"):
        matrix = array.astype(np.float32)
    bad = ~np.isfinite(matrix)
    if bad.any():
        row, column = np.argwhere(bad)[0]
        raise SettingError(
            f"{where}: {int(bad.sum())} of {matrix.size} values are NaN, infinite or beyond "
            f"float32's range (the first at row {row}, column {column})")
    return matrix


# --- Standardisation ---------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Standardiser:
    """Per-feature mean and std of each part (float64 [F_k] each)."""

    means: tuple
    stds: tuple

    @classmethod
    def fit(cls, observations_by_part: Sequence[Sequence[np.ndarray]]) -> "Standardiser":
        """From every observation of each part: a list of [N_i, F_k] arrays per part."""
        means, stds = [], []
        for arrays in observations_by_part:
            rows = np.concatenate([a for a in arrays if a is not None], axis=0).astype(np.float64)
            std = rows.std(axis=0)
            means.append(rows.mean(axis=0))
            stds.append(np.where(std > 0, std, 1.0))
        return cls(tuple(means), tuple(stds))

    def standardise(self, part: int, rows: np.ndarray) -> np.ndarray:
        """[N, F_part] user units -> float32 standardised."""
        return ((rows - self.means[part]) / self.stds[part]).astype(np.float32)

    @property
    def mean(self) -> np.ndarray:
        """[F_total]: every part's means, in part order."""
        return np.concatenate(self.means)

    @property
    def std(self) -> np.ndarray:
        return np.concatenate(self.stds)

    def to_user_units(self, samples: np.ndarray) -> np.ndarray:
        """Standardised [N, F_total] -> user units, float32."""
        return (np.asarray(samples, np.float64) * self.std + self.mean).astype(np.float32)


# --- The data set ------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ArrayData:
    """observations: standardised float32 training pools (`sources.Observations`).
    val: standardised [N_val, F_k] per part, or None. val_source: VAL_NPZ, HELD_OUT or
    TRAINING (no validation set). ignored_keys: keys of the paired .npz outside
    --parts."""

    observations: sources.Observations
    standardiser: Standardiser
    val: Optional[tuple]
    val_source: str
    ignored_keys: tuple = ()

    @property
    def part_names(self) -> tuple:
        return self.observations.part_names

    @property
    def part_sizes(self) -> tuple:
        return tuple(int(p.shape[1]) for p in self.observations.paired)

    def references(self) -> tuple[list, list]:
        """(per part: the real rows its marginal metric compares with, the real parts
        of the whole samples the joint and dependency metrics compare with): the
        validation set for both when there is one; else every training observation of
        the part (paired and unpaired) and the paired training set."""
        if self.val is not None:
            return list(self.val), list(self.val)
        obs = self.observations
        marginals = [np.asarray(obs.marginal_pool(k)) for k in range(len(self.part_names))]
        return marginals, list(obs.paired)

    def describe(self) -> str:
        """The data summary line(s) for the terminal."""
        sizes = ", ".join(f"{n} [{s}]" for n, s in zip(self.part_names, self.part_sizes))
        lines = [self.observations.describe(), f"parts (features): {sizes}"]
        if self.val is not None:
            lines.append(f"evaluation: {len(self.val[0])} paired rows ({self.val_source})")
        else:
            lines.append("evaluation: the training observations (no --val_npz or --val_fraction)")
        if self.ignored_keys:
            lines.append(f"ignored (not in --parts): {list(self.ignored_keys)}")
        return "\n".join(lines)

    def summary(self) -> dict:
        """Counts and sizes for metrics.json and the TensorBoard config."""
        result = dict(self.observations.summary())
        result.update(parts=list(self.part_names), part_sizes=list(self.part_sizes),
                      eval_reference=self.val_source,
                      num_val=0 if self.val is None else len(self.val[0]))
        return result


def _paired(paired: str, parts: Sequence[str]) -> tuple[list[str], list[np.ndarray], list[str]]:
    """(names, [N, F_k] arrays, ignored npz keys) of --paired."""
    paths = split_list(paired)
    if not paths:
        raise SettingError("{paired} is required: one .npz with an array per part, or one "
                         ".npy per part ({paired}=a.npy,b.npy)")
    for path in paths:
        _extension(path, "{paired}")
    if len(paths) == 1 and paths[0].lower().endswith(".npz"):
        path = paths[0]
        keys = _npz_keys(path, "{paired}")
        names = list(parts) or keys
        check_part_names(names, f"{{paired}} file {path}" if not parts else "{parts}")
        missing = [n for n in names if n not in keys]
        if missing:
            raise SettingError(f"{{paired}} file {path} has no key {missing[0]!r} ({{parts}}={','.join(parts)}); "
                             f"its keys are {keys}")
        arrays = [as_matrix(_load(path, "{paired}", n), f"{{paired}} file {path}, key {n!r}")
                  for n in names]
        wheres = [f"{path}, key {n!r}" for n in names]
        ignored = [k for k in keys if k not in names]
    else:
        if any(p.lower().endswith(".npz") for p in paths):
            raise SettingError("{paired} takes one .npz (an array per part) or .npy files (one "
                             f"per part), not a mixture: {paths}")
        names = list(parts) or [os.path.splitext(os.path.basename(p))[0] for p in paths]
        if parts and len(parts) != len(paths):
            raise SettingError(f"{{parts}} names {len(parts)} parts, {{paired}} gives {len(paths)} files")
        check_part_names(names, "{parts}" if parts else "{paired} (part names from the file names)")
        arrays = [as_matrix(_load(p, "{paired}"), f"{{paired}} file {p}") for p in paths]
        wheres = list(paths)
        ignored = []
    counts = {len(a) for a in arrays}
    if len(counts) > 1:
        rows = ", ".join(f"{w} has {len(a)}" for w, a in zip(wheres, arrays))
        raise SettingError(f"{{paired}} parts must have one row per sample, aligned, but their "
                         f"row counts differ: {rows}")
    return names, arrays, ignored


def _unpaired(unpaired: str, names: Sequence[str], sizes: Sequence[int]) -> list:
    """Per part: its unpaired [N_k, F_k] rows, or None."""
    found: dict[str, tuple[np.ndarray, str]] = {}

    def add(name, array, where):
        if name not in names:
            raise SettingError(f"{{unpaired}} {where}: {name!r} is not a part; the parts are {list(names)}")
        if name in found:
            raise SettingError(f"{{unpaired}} gives part {name!r} twice ({found[name][1]} and {where})")
        matrix = as_matrix(array, f"{{unpaired}} {where}")
        size = sizes[list(names).index(name)]
        if matrix.shape[1] != size:
            raise SettingError(f"{{unpaired}} {where} has {matrix.shape[1]} features per row, but "
                             f"part {name!r} has {size} in {{paired}}")
        found[name] = (matrix, where)

    for entry in split_list(unpaired):
        name, _, path = entry.partition("=")
        if not path or name.strip() not in names:  # a path that holds "=" itself
            name, path = "", entry
        name = name.strip()
        if path.lower().endswith(".npz"):
            if name:
                keys = _npz_keys(path, "{unpaired}")
                key = name if name in keys or len(keys) != 1 else keys[0]
                add(name, _load(path, "{unpaired}", key), f"file {path}, key {key!r}")
            else:
                for key, array in _load(path, "{unpaired}").items():
                    add(key, array, f"file {path}, key {key!r}")
        else:
            name = name or os.path.splitext(os.path.basename(path))[0]
            add(name, _load(path, "{unpaired}"), f"file {path}")
    return [found[n][0] if n in found else None for n in names]


def _val(path: str, names: Sequence[str], sizes: Sequence[int]) -> list[np.ndarray]:
    keys = _npz_keys(path, "{val_npz}")
    missing = [n for n in names if n not in keys]
    if missing:
        raise SettingError(f"{{val_npz}} file {path} has no key {missing[0]!r}; it needs one per part "
                         f"{list(names)}, its keys are {keys}")
    arrays = []
    for name, size in zip(names, sizes):
        where = f"{{val_npz}} file {path}, key {name!r}"
        matrix = as_matrix(_load(path, "{val_npz}", name), where)
        if matrix.shape[1] != size:
            raise SettingError(f"{where} has {matrix.shape[1]} features per row, part {name!r} "
                             f"has {size} in {{paired}}")
        arrays.append(matrix)
    counts = {len(a) for a in arrays}
    if len(counts) > 1:
        raise SettingError(f"{{val_npz}} file {path}: the parts' row counts differ "
                         f"({dict(zip(names, map(len, arrays)))}); rows must be aligned")
    if len(arrays[0]) < 2:
        raise SettingError(f"{{val_npz}} file {path} has {len(arrays[0])} row; the metrics need >= 2")
    return arrays


def load(paired: str, unpaired: str = "", parts: Sequence[str] = (), val_npz: str = "",
         val_fraction: float = 0.0, seed: int = 0) -> ArrayData:
    """Reads, checks and standardises the arrays (see the module docstring)."""
    names, arrays, ignored = _paired(paired, parts)
    sizes = [a.shape[1] for a in arrays]
    extra = _unpaired(unpaired, names, sizes)
    val, source = None, TRAINING
    if val_npz:
        if val_fraction:
            raise SettingError("give {val_npz} or {val_fraction}, not both")
        val, source = _val(val_npz, names, sizes), VAL_NPZ
    elif val_fraction:
        count = len(arrays[0])
        held = int(round(val_fraction * count))
        if held < 2 or held >= count:
            raise SettingError(f"{{val_fraction}}={val_fraction} of the {count} paired rows holds out "
                             f"{held}; the metrics need >= 2 held out and training >= 1 paired row")
        order = np.random.default_rng(seed).permutation(count)
        val_rows, train_rows = np.sort(order[:held]), np.sort(order[held:])
        val = [a[val_rows] for a in arrays]
        arrays = [a[train_rows] for a in arrays]
        source = HELD_OUT
    elif len(arrays[0]) < 2:
        raise SettingError(f"{{paired}} has {len(arrays[0])} row; the joint metrics need >= 2 paired "
                         "rows (or a {val_npz})")
    standardiser = Standardiser.fit([[a, u] for a, u in zip(arrays, extra)])
    paired_pools = tuple(standardiser.standardise(k, a) for k, a in enumerate(arrays))
    unpaired_pools = tuple(None if u is None else standardiser.standardise(k, u)
                           for k, u in enumerate(extra))
    observations = sources.Observations(paired_pools, unpaired_pools, tuple(names))
    if val is not None:
        val = tuple(standardiser.standardise(k, v) for k, v in enumerate(val))
    return ArrayData(observations, standardiser, val, source, tuple(ignored))
