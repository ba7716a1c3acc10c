"""Row pools that training batches are gathered from: in memory, or on disk past memory.

A pool is anything with `len()`, `.shape`, `.dtype` and `take(indices) -> ndarray`:
a NumPy array (in memory; `np.take` along axis 0) or a `DiskArray` (a raw row-major
file of fixed-size rows with a JSON header beside it, read row by row with `os.pread`,
so memory does not grow with the pool). `ConcatPool` joins pools end to end without
copying them: a marginal stream draws from the paired samples' part and the unpaired
observations of that part as one pool.

A DiskArray is written once by `write_disk_array` from an iterator of row batches
into a folder that appears complete or not at all (renamed into place), so a killed
decode leaves no half cache behind.
"""

import dataclasses
import os
import shutil
import tempfile
from typing import Iterable, Sequence, Union

import numpy as np

from tf_factorgan import files

DATA_FILE = "rows.bin"
HEADER_FILE = "header.json"


@dataclasses.dataclass(frozen=True)
class DiskArray:
    """Rows of `shape[1:]` and `dtype` in `<folder>/rows.bin`, row-major.

    shape: [N, ...]; rows are read on demand, never all at once.
    """

    folder: str
    shape: tuple
    dtype: np.dtype

    @property
    def row_bytes(self) -> int:
        return int(np.prod(self.shape[1:], dtype=np.int64)) * np.dtype(self.dtype).itemsize

    @property
    def nbytes(self) -> int:
        return self.row_bytes * self.shape[0]

    def __len__(self) -> int:
        return int(self.shape[0])

    def take(self, indices) -> np.ndarray:
        """Rows `indices` (int [B], each in [0, N)) as one array [B, ...]."""
        indices = _checked(indices, len(self), self.folder)
        out = np.empty((len(indices), *self.shape[1:]), self.dtype)
        view = out.reshape(len(indices), self.row_bytes // out.itemsize).view(np.uint8)
        # One descriptor per call: calls may run on several tf.data threads at once.
        fd = os.open(os.path.join(self.folder, DATA_FILE), os.O_RDONLY)
        try:
            for row, index in enumerate(indices):
                chunk = os.pread(fd, self.row_bytes, int(index) * self.row_bytes)
                if len(chunk) != self.row_bytes:
                    raise OSError(f"{self.folder}/{DATA_FILE} is shorter than its header says")
                view[row] = np.frombuffer(chunk, np.uint8)
        finally:
            os.close(fd)
        return out

    def to_memory(self) -> np.ndarray:
        """The whole pool as one array (for pools that fit in memory)."""
        return np.fromfile(os.path.join(self.folder, DATA_FILE), self.dtype).reshape(self.shape)


Pool = Union[np.ndarray, DiskArray, "ConcatPool"]


def _checked(indices, num_rows: int, where: str) -> np.ndarray:
    indices = np.asarray(indices, np.int64).reshape(-1)
    if indices.size and (indices.min() < 0 or indices.max() >= num_rows):
        raise IndexError(f"row index out of range [0, {num_rows}) in {where}")
    return indices


@dataclasses.dataclass(frozen=True)
class ConcatPool:
    """Pools joined along axis 0 (same row shape and dtype), without copying."""

    pools: tuple

    def __post_init__(self):
        rows = {(tuple(p.shape[1:]), np.dtype(p.dtype)) for p in self.pools}
        if len(rows) != 1:
            raise ValueError(f"pools to join must share row shape and dtype, got {sorted(map(str, rows))}")

    @property
    def shape(self) -> tuple:
        return (sum(len(p) for p in self.pools), *self.pools[0].shape[1:])

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.pools[0].dtype)

    @property
    def nbytes(self) -> int:
        return sum(int(p.nbytes) for p in self.pools)

    def __len__(self) -> int:
        return self.shape[0]

    def take(self, indices) -> np.ndarray:
        indices = _checked(indices, len(self), "joined pools")
        out = np.empty((len(indices), *self.shape[1:]), self.dtype)
        start = 0
        for pool in self.pools:
            inside = (indices >= start) & (indices < start + len(pool))
            if inside.any():
                out[inside] = take(pool, indices[inside] - start)
            start += len(pool)
        return out


def take(pool: Pool, indices) -> np.ndarray:
    """Rows `indices` of any pool."""
    if isinstance(pool, np.ndarray):
        return np.take(pool, np.asarray(indices, np.int64), axis=0)
    return pool.take(indices)


def concat(pools: Sequence[Pool]) -> Pool:
    """One pool of `pools` end to end: NumPy arrays are concatenated (in memory
    already), anything on disk is joined by reference."""
    pools = [p for p in pools if p is not None and len(p)]
    if not pools:
        raise ValueError("concat needs at least one non-empty pool")
    if len(pools) == 1:
        return pools[0]
    if all(isinstance(p, np.ndarray) for p in pools):
        return _adjacent_view(pools) if _adjacent(pools) else np.concatenate(pools)
    return ConcatPool(tuple(pools))


def _adjacent(arrays: Sequence[np.ndarray]) -> bool:
    """Whether C-contiguous slices of one buffer follow each other in memory (the
    paired rows and the rest of one aligned array): then they join without a copy."""
    first = arrays[0]
    for before, after in zip(arrays, arrays[1:]):
        if not (before.flags.c_contiguous and after.flags.c_contiguous
                and before.base is not None and before.base is after.base
                and before.ctypes.data + before.nbytes == after.ctypes.data
                and before.dtype == first.dtype and before.shape[1:] == after.shape[1:]):
            return False
    return True


def _adjacent_view(arrays: Sequence[np.ndarray]) -> np.ndarray:
    first = arrays[0]
    shape = (sum(len(a) for a in arrays), *first.shape[1:])
    view = np.lib.stride_tricks.as_strided(first, shape=shape, strides=first.strides)
    view.flags.writeable = False
    return view


def to_memory(pool: Pool) -> np.ndarray:
    """Any pool as one array."""
    return pool if isinstance(pool, np.ndarray) else take(pool, np.arange(len(pool)))


def read_disk_array(folder: str) -> DiskArray:
    """The DiskArray in `folder`; fails naming the folder if it is incomplete."""
    header = files.read_json(os.path.join(folder, HEADER_FILE))
    array = DiskArray(folder, tuple(int(d) for d in header["shape"]), np.dtype(header["dtype"]))
    size = os.path.getsize(os.path.join(folder, DATA_FILE))
    if size != array.nbytes:
        raise ValueError(f"cache {folder} holds {size} bytes, its header says {array.nbytes}")
    return array


def write_disk_array(folder: str, batches: Iterable[np.ndarray], row_shape: Sequence[int],
                     dtype, num_rows: int) -> DiskArray:
    """Writes `num_rows` rows from `batches` (arrays [b, *row_shape]) to `folder`,
    which appears complete or not at all; returns it as a DiskArray."""
    parent = os.path.dirname(os.path.abspath(folder))
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".tmp-", dir=parent)
    try:
        written = 0
        with open(os.path.join(staging, DATA_FILE), "wb") as f:
            for batch in batches:
                batch = np.ascontiguousarray(batch, dtype=dtype)
                if tuple(batch.shape[1:]) != tuple(row_shape):
                    raise ValueError(f"rows of shape {batch.shape[1:]}, expected {tuple(row_shape)}")
                f.write(batch.tobytes())
                written += len(batch)
        if written != num_rows:
            raise ValueError(f"wrote {written} rows to {folder}, expected {num_rows}")
        files.write_json(os.path.join(staging, HEADER_FILE),
                         {"shape": [num_rows, *map(int, row_shape)], "dtype": np.dtype(dtype).name})
        try:
            os.rename(staging, folder)
        except OSError:
            # Another process finished the same entry first: keep its (identical) copy,
            # which it may be reading; replace only an entry that does not read back.
            try:
                return read_disk_array(folder)
            except (OSError, ValueError, KeyError):
                shutil.rmtree(folder, ignore_errors=True)
                os.rename(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return read_disk_array(folder)
