"""Photo datasets in the ImageNet layout: `<root>/train/<class>/*.jpg` and `<root>/val/<class>/...`.

Used for `imagenet` and for any user dataset (`image_folder`). The images are far too many to
copy, so the prepared artifact is an index of them: paths relative to the root, labels and file
sizes. Preparing reads every file once, checks that PIL can parse it (`verify()`) and decode
every pixel (a truncated file passes `verify()` but would crash training mid-epoch), and
hashes its bytes into the manifest's `files_sha256`; later stages re-check that each indexed
file still exists with the same size.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from sswp.data.arrays import ArrayDataset
from sswp.errors import SswpError

SUFFIXES = (".jpg", ".jpeg", ".png")
FORMATS = ("JPEG", "PNG")  # what the DALI and torchvision decoders both read
TRAIN, VAL = "train", "val"
# Checking is I/O bound, and reading and hashing release the GIL; files go to the threads in
# chunks, so that a million of them do not become a million pending futures.
_CHECK_THREADS = 8
_CHECK_CHUNK = 4096
_LAYOUT_HINT = "expected <path>/train/<class>/*.jpg|jpeg|png and <path>/val/<class>/..."


@dataclass(frozen=True)
class FileIndex:
    """What the artifact stores for a folder dataset (`arrays`) and the content hash."""

    arrays: dict[str, np.ndarray]
    files_sha256: str


def load_image_folder(root: Path, name: str, image_size: int) -> ArrayDataset:
    """List the images of both splits; labels are the train class folders in sorted order."""
    if not root.is_dir():
        raise SswpError(
            f"image folder {root} not found; data is never downloaded: put the images there "
            f"({_LAYOUT_HINT}) or set data.path"
        )
    for split in (TRAIN, VAL):
        if not (root / split).is_dir():
            raise SswpError(f"{root} has no {split}/ folder; {_LAYOUT_HINT}")
    classes = _class_folders(root / TRAIN)
    if not classes:
        raise SswpError(
            f"{root / TRAIN} has no class subfolders; put each class's images in "
            f"{root / TRAIN}/<class name>/"
        )
    unknown = sorted(set(_class_folders(root / VAL)) - set(classes))
    if unknown:
        raise SswpError(
            f"{root / VAL} has class folders that {root / TRAIN} lacks ({', '.join(unknown[:5])}); "
            "every validation class needs training images"
        )
    train_x, train_y = _list_split(root / TRAIN, classes, every_class=True)
    test_x, test_y = _list_split(root / VAL, classes, every_class=False)
    if not len(test_y):
        raise SswpError(f"{root / VAL} holds no .jpg, .jpeg or .png images; {_LAYOUT_HINT}")
    return ArrayDataset(
        train_x=train_x,
        train_y=train_y,
        test_x=test_x,
        test_y=test_y,
        classes=tuple(classes),
        name=name,
        root=str(root),
        crop_size=image_size,
    )


def _class_folders(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _images_in(folder: Path) -> list[str]:
    """Image files anywhere below `folder`, sorted, hidden files and other suffixes skipped."""
    found = []
    for path in folder.rglob("*"):
        hidden = any(part.startswith(".") for part in path.relative_to(folder).parts)
        if path.suffix.lower() in SUFFIXES and not hidden and path.is_file():
            found.append(str(path))
    return sorted(found)


def _list_split(
    folder: Path, classes: list[str], every_class: bool
) -> tuple[np.ndarray, np.ndarray]:
    paths: list[str] = []
    labels: list[int] = []
    for label, name in enumerate(classes):
        if not (folder / name).is_dir() and not every_class:
            continue
        files = _images_in(folder / name)
        if not files:
            raise SswpError(
                f"class folder {folder / name} holds no .jpg, .jpeg or .png images; "
                "add some or remove the folder"
            )
        paths += files
        labels += [label] * len(files)
    return np.array(paths, dtype=str), np.array(labels, dtype=np.int64)


def index_files(ds: ArrayDataset) -> FileIndex:
    """Check every image of `ds` and hash it; SswpError names the first unreadable one."""
    digest = hashlib.sha256()
    arrays: dict[str, np.ndarray] = {}
    for split in ("train", "test"):
        paths, labels = getattr(ds, f"{split}_x"), getattr(ds, f"{split}_y")
        relative = np.array([os.path.relpath(p, ds.root) for p in paths], dtype=str)
        sizes = np.zeros(len(paths), dtype=np.int64)
        for i, (size, file_digest) in enumerate(_check_all(paths)):
            sizes[i] = size
            digest.update(f"{split}\0{relative[i]}\0{labels[i]}\0{size}\0".encode())
            digest.update(file_digest)
        arrays.update({f"{split}_x": relative, f"{split}_y": labels, f"{split}_sizes": sizes})
    return FileIndex(arrays, digest.hexdigest())


def _check_all(paths: Sequence[str]) -> Iterator[tuple[int, bytes]]:
    with ThreadPoolExecutor(min(_CHECK_THREADS, os.cpu_count() or 1)) as pool:
        for start in range(0, len(paths), _CHECK_CHUNK):
            yield from pool.map(_check_file, paths[start : start + _CHECK_CHUNK])


def _check_file(path: str) -> tuple[int, bytes]:
    """(size, sha256 of the bytes) of an image that PIL can parse and decode as JPEG or PNG."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise SswpError(f"image {path} cannot be read ({exc.strerror}); fix or delete it") from exc
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
            kind = image.format
        # verify() reads the structure only; a truncated file fails when it is decoded.
        with Image.open(io.BytesIO(data)) as image:
            image.load()
    except Exception as exc:  # PIL signals damage with many exception types
        raise SswpError(
            f"image {path} is corrupted or not an image ({type(exc).__name__}); "
            "replace or delete it, then prepare again"
        ) from exc
    if kind not in FORMATS:
        raise SswpError(f"image {path} is {kind}, not JPEG or PNG; convert or delete it")
    return len(data), hashlib.sha256(data).digest()


def resolve_files(root: str, relative: np.ndarray, sizes: np.ndarray, prepared: Path) -> np.ndarray:
    """Join the index to its root, checking that every file is still there, unchanged in size."""
    paths = np.array([os.path.join(root, p) for p in relative], dtype=str)
    for path, size in zip(paths, sizes, strict=True):
        try:
            found = os.stat(path).st_size
        except OSError:
            found = None
        if found != size:
            what = "is missing" if found is None else f"changed size ({size} -> {found} bytes)"
            raise SswpError(
                f"image {path}, indexed in {prepared}, {what} since `sswp prepare`; restore it "
                "or prepare again"
            )
    return paths
