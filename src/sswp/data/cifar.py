"""CIFAR-10/100 from the python-version archives the user placed on disk (never downloaded).

The batches are pickles, and unpickling can run arbitrary code, so they are read with an
unpickler that only rebuilds numpy arrays: a tampered file is refused, not executed.

Files that hold the official number of images (50,000 training, 10,000 test) claim to be
the published ones, so every file's md5 must then equal the published value: a damaged or
altered copy stops prepare instead of silently changing the results. A smaller set in the
same layout (a subset, or the tests' files) is not the official data and is not checked.
"""

from __future__ import annotations

import hashlib
import logging
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sswp.data.arrays import ArrayDataset
from sswp.errors import SswpError

log = logging.getLogger(__name__)

try:
    from numpy._core.multiarray import _reconstruct
except ImportError:  # numpy < 2
    from numpy.core.multiarray import _reconstruct

_SIDE = 32
_PIXELS = 3 * _SIDE * _SIDE
# (training, test) images of both official datasets.
_OFFICIAL_IMAGES = (50_000, 10_000)

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
    md5: dict[str, str]  # the published md5 of every file of the extracted archive

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
        md5={
            "data_batch_1": "c99cafc152244af753f735de768cd75f",
            "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
            "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
            "data_batch_4": "634d18415352ddfa80567beed471001a",
            "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
            "test_batch": "40351d587109b95175f43aff81a1287e",
            "batches.meta": "5ff9c542aee3614f3951f8cda6e48888",
        },
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
        md5={
            "train": "16019d7e3df5f24257cddd939b257f8d",
            "test": "f0ef6b0ae62326f3e7ffdfab6717acfc",
            "meta": "7973b15100ade9c7d40fb424638fde48",
        },
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


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _verify_official(folder: Path, layout: _Layout, images: tuple[int, int]) -> None:
    """If the files hold the official image counts, each must have the published md5."""
    if images != _OFFICIAL_IMAGES:
        log.info(
            "%s in %s: %d training and %d test images, not the official %d and %d, so the "
            "md5s are not checked",
            layout.title,
            folder,
            *images,
            *_OFFICIAL_IMAGES,
        )
        return
    for name in layout.files:
        found = _md5(folder / name)
        if found != layout.md5[name]:
            raise SswpError(
                f"{folder / name} has md5 {found}, not the official {layout.md5[name]}: the "
                f"file is damaged or altered; extract it again from {layout.archive} (its "
                f"md5 is in docs/data.md, Getting the data)"
            )
    log.info("%s in %s: every file has the official md5", layout.title, folder)


def load_cifar(name: str, root: Path) -> ArrayDataset:
    """Read CIFAR-10 (`name="cifar10"`) or CIFAR-100 (`"cifar100"`, fine labels) from `root`."""
    layout = _LAYOUTS[name]
    folder = _find_folder(root, layout)
    classes = _class_names(folder / layout.meta_file, layout)
    train = [_read_batch(folder / f, layout, len(classes)) for f in layout.train_files]
    test_x, test_y = _read_batch(folder / layout.test_file, layout, len(classes))
    train_y = np.concatenate([y for _, y in train])
    _verify_official(folder, layout, (len(train_y), len(test_y)))
    return ArrayDataset(
        train_x=np.concatenate([x for x, _ in train]),
        train_y=train_y,
        test_x=test_x,
        test_y=test_y,
        classes=classes,
        name=name,
    )
