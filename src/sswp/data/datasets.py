"""In-memory datasets and the prepared artifact (`data/prepared`) that every later stage reads.

`prepare` turns whichever raw dataset params name into one array file plus a manifest (format
version, classes, counts, content hash, normalisation) and the seeded splits, so later stages
never touch the raw data and a changed or damaged artifact is caught before training on it.
Array datasets (digits, CIFAR) store their uint8 images; image folders store an index of their
files (see `image_folder`), since copying ImageNet would double it on disk.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from sswp.config.params import DataParams
from sswp.data.arrays import ARRAY_KEYS, ArrayDataset
from sswp.data.splits import Splits, search_splits
from sswp.errors import SswpError
from sswp.pipeline.atomic import write_json
from sswp.pipeline.paths import DATASET_FILE, MANIFEST_FILE, PREPARED_DIR, SPLITS_FILE

DATASETS = ("digits", "cifar10", "cifar100", "imagenet", "image_folder")
FOLDER_DATASETS = ("imagenet", "image_folder")
FILE_KEYS = (*ARRAY_KEYS, "train_sizes", "test_sizes")
# Bumped whenever the artifact's layout changes, so a stale one is rebuilt, not misread.
FORMAT_VERSION = 2

Triple = tuple[float, float, float]

# Per-channel mean/std of each training set on the 0-1 scale. The CIFAR and ImageNet values are
# the standard constants, which also serve user photos (too many to measure while preparing);
# arrays without constants (the digits, at any size) are measured while preparing.
IMAGENET_STATS: tuple[Triple, Triple] = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
NORMALIZATION: dict[str, tuple[Triple, Triple]] = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
    "imagenet": IMAGENET_STATS,
    "image_folder": IMAGENET_STATS,
}


def load_raw(data: DataParams) -> ArrayDataset:
    """Read the dataset that params name; nothing is ever downloaded."""
    if data.dataset == "digits":
        from sswp.data.digits import load_digits_dataset

        return load_digits_dataset(data.image_size)
    if data.dataset in ("cifar10", "cifar100"):
        from sswp.data.cifar import load_cifar

        return load_cifar(data.dataset, Path(data.path))
    if data.dataset in FOLDER_DATASETS:
        from sswp.data.image_folder import load_image_folder

        return load_image_folder(Path(data.path), data.dataset, data.image_size)
    raise SswpError(f"data.dataset = {data.dataset!r} is unknown; use one of {', '.join(DATASETS)}")


def channel_stats(images: np.ndarray) -> tuple[Triple, Triple]:
    """Per-channel mean and std on the 0-1 scale, for datasets without standard constants."""
    flat = images.reshape(-1, images.shape[-1]).astype(np.float64) / 255.0
    mean, std = flat.mean(axis=0), flat.std(axis=0)
    return tuple(round(float(m), 4) for m in mean), tuple(round(float(s), 4) for s in std)


def normalization(manifest: Mapping[str, Any]) -> tuple[Triple, Triple]:
    """The mean and std that loaders normalise with, as stored by `write_prepared`."""
    return tuple(manifest["mean"]), tuple(manifest["std"])


def content_hash(ds: ArrayDataset) -> str:
    """sha256 over the arrays' names, dtypes, shapes and bytes."""
    return arrays_hash(ds.arrays())


def arrays_hash(arrays: Mapping[str, np.ndarray]) -> str:
    """sha256 over named arrays (what dataset.npz holds), in the mapping's order."""
    digest = hashlib.sha256()
    for key, array in arrays.items():
        digest.update(f"{key}:{array.dtype.str}:{array.shape};".encode())
        digest.update(np.ascontiguousarray(array).data)
    return digest.hexdigest()


def _counts(labels: np.ndarray, classes: tuple[str, ...]) -> dict[str, int]:
    counts = np.bincount(labels, minlength=len(classes))
    return {name: int(n) for name, n in zip(classes, counts, strict=True)}


def write_prepared(
    ds: ArrayDataset, out_dir: str | Path, seed: int, val_fraction: float = 0.0
) -> Splits:
    """Write dataset.npz, manifest.json and splits.json (seeded splits) into `out_dir`.

    For image folders this reads and checks every image (see `image_folder.index_files`).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    problem = ds.problem()
    if problem:
        raise SswpError(f"dataset {ds.name!r} cannot be prepared: {problem}")
    splits = search_splits(ds.train_y, val_fraction, seed)
    if ds.is_files:
        from sswp.data.image_folder import index_files

        index = index_files(ds)
        arrays = {key: index.arrays[key] for key in FILE_KEYS}
        np.savez_compressed(out_dir / DATASET_FILE, **arrays)
        mean, std = NORMALIZATION.get(ds.name, IMAGENET_STATS)
        stored = {
            "format": "files",
            "root": ds.root,
            "image_size": ds.image_size,
            "image_shape": [ds.image_size, ds.image_size, 3],
            "sha256": arrays_hash(arrays),
            "files_sha256": index.files_sha256,
        }
    else:
        np.savez(out_dir / DATASET_FILE, **ds.arrays())
        mean, std = NORMALIZATION.get(ds.name) or channel_stats(ds.train_x)
        stored = {
            "format": "arrays",
            "image_shape": list(ds.train_x.shape[1:]),
            "sha256": content_hash(ds),
        }
    write_json(out_dir / SPLITS_FILE, splits.to_dict())
    write_json(
        out_dir / MANIFEST_FILE,
        {
            "version": FORMAT_VERSION,
            "dataset": ds.name,
            "classes": list(ds.classes),
            "num_train": len(ds.train_y),
            "num_test": len(ds.test_y),
            "train_counts": _counts(ds.train_y, ds.classes),
            "test_counts": _counts(ds.test_y, ds.classes),
            **stored,
            "mean": list(mean),
            "std": list(std),
            "seed": seed,
            "num_validation": len(splits.validation),
        },
    )
    return splits


def _broken(path: Path, why: str) -> SswpError:
    return SswpError(
        f"prepared data {path} is {why}; rebuild it with `sswp prepare` (or `dvc repro prepare`)"
    )


def load_prepared(
    dir: str | Path = PREPARED_DIR,
) -> tuple[ArrayDataset, Splits, dict[str, Any]]:
    """Read and verify the prepared artifact: format version, content hash, shapes, split
    indices and, for image folders, that every indexed file is still there."""
    dir = Path(dir)
    for name in (DATASET_FILE, MANIFEST_FILE, SPLITS_FILE):
        if not (dir / name).is_file():
            raise SswpError(
                f"prepared data not found: {dir / name} is missing; "
                "run `sswp prepare` (or `dvc repro prepare`) first"
            )
    manifest = _read_manifest(dir / MANIFEST_FILE)
    files = manifest["format"] == "files"
    try:
        with np.load(dir / DATASET_FILE, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in (FILE_KEYS if files else ARRAY_KEYS)}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        raise _broken(dir / DATASET_FILE, f"unreadable ({type(exc).__name__})") from exc
    if arrays_hash(arrays) != manifest["sha256"]:
        raise _broken(dir / DATASET_FILE, "changed since it was written (sha256 differs)")
    classes = tuple(str(c) for c in manifest["classes"])
    if files:
        from sswp.data.image_folder import resolve_files

        root = manifest["root"]
        ds = ArrayDataset(
            train_x=resolve_files(root, arrays["train_x"], arrays["train_sizes"], dir),
            train_y=arrays["train_y"],
            test_x=resolve_files(root, arrays["test_x"], arrays["test_sizes"], dir),
            test_y=arrays["test_y"],
            classes=classes,
            name=manifest["dataset"],
            root=root,
            crop_size=manifest["image_size"],
        )
    else:
        ds = ArrayDataset(**arrays, classes=classes, name=manifest["dataset"])
    problem = ds.problem()
    if problem:
        raise _broken(dir / DATASET_FILE, f"invalid ({problem})")
    try:
        splits = Splits.from_dict(_read_json(dir / SPLITS_FILE), len(ds.train_y))
    except (TypeError, ValueError, KeyError) as exc:
        raise _broken(dir / SPLITS_FILE, f"invalid ({exc})") from exc
    return ds, splits, manifest


def _read_manifest(path: Path) -> dict[str, Any]:
    """The manifest, checked for the keys its format needs and for this format version."""
    manifest = _read_json(path)
    required = ["version", "format", "dataset", "classes", "sha256", "mean", "std"]
    if isinstance(manifest, dict) and manifest.get("format") == "files":
        required += ["root", "image_size"]
    if not isinstance(manifest, dict) or any(key not in manifest for key in required):
        raise _broken(path, f"missing one of the keys {', '.join(required)}")
    if manifest["version"] != FORMAT_VERSION:
        raise _broken(
            path,
            f"of format version {manifest['version']}, but this sswp reads {FORMAT_VERSION}",
        )
    return manifest


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _broken(path, f"not valid JSON ({type(exc).__name__})") from exc
