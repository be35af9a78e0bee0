"""CIFAR-10/100 from the python-version archives the user placed on disk (never downloaded).

The batches are pickles, and unpickling can run arbitrary code, so they are read with an
unpickler that only rebuilds numpy arrays: a tampered file is refused, not executed.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sswp.data.datasets import ArrayDataset
from sswp.errors import SswpError

try:
    from numpy._core.multiarray import _reconstruct
except ImportError:  # numpy < 2
    from numpy.core.multiarray import _reconstruct

_SIDE = 32
_PIXELS = 3 * _SIDE * _SIDE

# Everything a CIFAR pickle needs; plain dicts, lists, bytes and str need no lookup at all.
_ALLOWED: dict[tuple[str, str], Any] = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
}


@dataclass(frozen=True)
class _Layout:
    title: str
    archive: str
    subdir: str
    train_files: tuple[str, ...]
    test_file: str
    meta_file: str
    label_key: str
    names_key: str

    @property
    def files(self) -> tuple[str, ...]:
        return (*self.train_files, self.test_file, self.meta_file)


_LAYOUTS = {
    "cifar10": _Layout(
        title="CIFAR-10",
        archive="cifar-10-python.tar.gz",
        subdir="cifar-10-batches-py",
        train_files=tuple(f"data_batch_{i}" for i in range(1, 6)),
        test_file="test_batch",
        meta_file="batches.meta",
        label_key="labels",
        names_key="label_names",
    ),
    "cifar100": _Layout(
        title="CIFAR-100",
        archive="cifar-100-python.tar.gz",
        subdir="cifar-100-python",
        train_files=("train",),
        test_file="test",
        meta_file="meta",
        label_key="fine_labels",
        names_key="fine_label_names",
    ),
}


class _ForbiddenGlobal(pickle.UnpicklingError):
    """A pickle asked for a class or function outside `_ALLOWED`."""


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise _ForbiddenGlobal(f"{module}.{name}") from None


def _text(value: Any) -> Any:
    return value.decode("latin1") if isinstance(value, bytes) else value


def _replace_hint(layout: _Layout) -> str:
    return f"replace it with the file from the python-version archive ({layout.archive})"


def _read_dict(path: Path, layout: _Layout) -> dict[str, Any]:
    """Unpickle one file (Python 2 or 3 pickle) into a dict with str keys."""
    if not path.is_file():
        raise SswpError(
            f"{layout.title} file {path} is missing; extract the complete python-version "
            f"archive ({layout.archive}) there"
        )
    try:
        with path.open("rb") as handle:
            raw = _ArrayUnpickler(handle, encoding="bytes").load()
    except _ForbiddenGlobal as exc:
        raise SswpError(
            f"{path} refers to the forbidden object {exc}, which a {layout.title} file never "
            f"holds; {_replace_hint(layout)}"
        ) from None
    except Exception as exc:  # a damaged pickle can fail in many ways; all mean the same
        raise SswpError(
            f"{path} is corrupted or not a {layout.title} pickle ({type(exc).__name__}); "
            f"{_replace_hint(layout)}"
        ) from exc
    if not isinstance(raw, dict):
        raise SswpError(f"{path} does not hold a dict, so it is corrupted; {_replace_hint(layout)}")
    return {_text(key): value for key, value in raw.items()}


def _entry(batch: dict[str, Any], key: str, path: Path, layout: _Layout) -> Any:
    if key not in batch:
        raise SswpError(f"{path} has no {key!r} entry; {_replace_hint(layout)}")
    return batch[key]


def _read_batch(path: Path, layout: _Layout, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """One batch file -> (N, 32, 32, 3) uint8 images and (N,) int64 labels."""
    batch = _read_dict(path, layout)
    data = _entry(batch, "data", path, layout)
    labels = np.asarray(_entry(batch, layout.label_key, path, layout))
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.shape[1:] != (_PIXELS,):
        found = (
            f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        )
        raise SswpError(
            f"{path}: data must be an N x {_PIXELS} uint8 array, found {found}; "
            f"{_replace_hint(layout)}"
        )
    if labels.shape != (len(data),) or (labels.size and labels.dtype.kind not in "iu"):
        raise SswpError(
            f"{path}: {layout.label_key} must be {len(data)} integers (one per image), "
            f"found {labels.dtype} {labels.shape}; {_replace_hint(layout)}"
        )
    labels = labels.astype(np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise SswpError(
            f"{path}: {layout.label_key} must lie in 0..{num_classes - 1} (one per class name); "
            f"{_replace_hint(layout)}"
        )
    images = np.ascontiguousarray(data.reshape(-1, 3, _SIDE, _SIDE).transpose(0, 2, 3, 1))
    return images, labels


def _class_names(path: Path, layout: _Layout) -> tuple[str, ...]:
    names = _entry(_read_dict(path, layout), layout.names_key, path, layout)
    if not isinstance(names, list) or not all(isinstance(n, (bytes, str)) for n in names):
        raise SswpError(
            f"{path}: {layout.names_key} must be a list of names; {_replace_hint(layout)}"
        )
    return tuple(_text(n) for n in names)


def _find_folder(root: Path, layout: _Layout) -> Path:
    """`root` itself or its standard subfolder, whichever holds the files."""
    if (root / layout.subdir).is_dir():
        return root / layout.subdir
    if root.is_dir() and any((root / name).exists() for name in layout.files):
        return root
    raise SswpError(
        f"{layout.title} not found in {root} or {root / layout.subdir} (expected "
        f"{', '.join(layout.files)}); data is never downloaded: extract the python-version "
        f"archive ({layout.archive}) there or set data.path"
    )


def load_cifar(name: str, root: Path) -> ArrayDataset:
    """Read CIFAR-10 (`name="cifar10"`) or CIFAR-100 (`"cifar100"`, fine labels) from `root`."""
    layout = _LAYOUTS[name]
    folder = _find_folder(root, layout)
    classes = _class_names(folder / layout.meta_file, layout)
    train = [_read_batch(folder / f, layout, len(classes)) for f in layout.train_files]
    test_x, test_y = _read_batch(folder / layout.test_file, layout, len(classes))
    return ArrayDataset(
        train_x=np.concatenate([x for x, _ in train]),
        train_y=np.concatenate([y for _, y in train]),
        test_x=test_x,
        test_y=test_y,
        classes=classes,
        name=name,
    )
