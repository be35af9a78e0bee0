"""Image folders in the ImageNet layout: reading, both loaders, bad data and the prepared index."""

from __future__ import annotations

import dataclasses
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sswp.config.load import load_params
from sswp.data.datasets import IMAGENET_STATS, load_prepared
from sswp.data.image_folder import load_image_folder
from sswp.data.loaders import LoaderContext, make_loader
from sswp.data.splits import labelled_subset
from sswp.errors import SswpError
from sswp.pipeline.paths import DATASET_FILE, MANIFEST_FILE, PREPARED_DIR
from sswp.stages import prepare

REPO = Path(__file__).resolve().parents[2]
SIZE = 24


def _loader(ds, kind, backend, batch_size=4, **options):
    mean, std = IMAGENET_STATS
    context = LoaderContext(batch_size, mean, std, 0, image_size=SIZE, loader=backend, **options)
    return make_loader(
        ds.train_x, ds.train_y, np.arange(len(ds.train_y)), kind, context, name="train",
        shuffle=True, drop_last=False, cutout=8,
    )  # fmt: skip


def test_lists_classes_and_files_in_sorted_order(image_folder):
    root = image_folder()
    ds = load_image_folder(root, "image_folder", SIZE)
    assert ds.is_files and ds.problem() is None and ds.image_size == SIZE
    assert ds.classes == ("cat", "dog", "emu") and ds.root == str(root)
    names = [os.path.relpath(p, root) for p in ds.train_x]
    assert names[:3] == ["train/cat/a.jpg", "train/cat/b.PNG", "train/cat/nested/c.jpeg"]
    assert ds.train_y.tolist() == [0, 0, 0, 1, 1, 1, 2, 2]
    assert [os.path.relpath(p, root) for p in ds.test_x] == ["val/cat/v.png", "val/dog/v.jpg"]
    assert ds.test_y.tolist() == [0, 1] and ds.test_y.dtype == np.int64


@pytest.mark.parametrize("kind", ["simclr", "train", "eval"])
def test_both_backends_decode_png_and_jpeg(image_folder, backend, kind):
    ds = load_image_folder(image_folder(), "image_folder", SIZE)
    loader = _loader(ds, kind, backend)
    batches = list(loader)
    assert len(batches) == len(loader) == 2
    assert sorted(torch.cat([b[-1] for b in batches]).tolist()) == sorted(ds.train_y.tolist())
    for *views, labels in batches:
        assert len(views) == (2 if kind == "simclr" else 1) and labels.dtype == torch.int64
        for view in views:
            assert view.shape == (len(labels), 3, SIZE, SIZE) and view.dtype == torch.float32
            assert view.isfinite().all()


def test_eval_views_agree_across_backends(image_folder, backend):
    ds = load_image_folder(image_folder(), "image_folder", SIZE)
    reference = _loader(ds, "eval", "torch", batch_size=8, workers=0)
    expected, _ = next(iter(reference))
    found, _ = next(iter(_loader(ds, "eval", backend, batch_size=8)))
    # decoders and resamplers differ slightly; the smooth test images keep that small
    assert (found - expected).abs().mean() < 0.05


@pytest.mark.parametrize(
    ("damage", "words"),
    [
        (lambda root: root.rename(root.with_name("elsewhere")), "image folder .* not found"),
        (lambda root: (root / "val").rename(root / "test"), "has no val/ folder"),
        (lambda root: _flatten(root / "train"), "train has no class subfolders"),
        (lambda root: (root / "train" / "fox").mkdir(), "class folder .*fox holds no"),
        (lambda root: (root / "val" / "yak").mkdir(), r"lacks \(yak\)"),
        (lambda root: _write(root / "train/dog/b.png", b"not a png"), "dog/b.png is corrupted"),
        (lambda root: _truncate(root / "val/cat/v.png"), "cat/v.png is corrupted"),
        # Parses (verify() passes) but cannot be decoded: only a full decode finds it.
        (lambda root: _truncate_scan(root / "train/cat/a.jpg"), "cat/a.jpg is corrupted"),
        (lambda root: _as_gif(root / "train/emu/a.png"), "emu/a.png is GIF, not JPEG or PNG"),
        (lambda root: _empty_val(root), "val holds no .jpg, .jpeg or .png images"),
    ],
    ids=["missing", "no-val", "no-classes", "empty-class", "unknown-val-class", "garbage",
         "truncated", "truncated-jpeg-scan", "gif", "empty-val"],
)  # fmt: skip
def test_bad_folders_get_one_clear_error(tmp_path, image_folder, monkeypatch, damage, words):
    root = image_folder()
    damage(root)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SswpError, match=words) as error:
        prepare.run(_params(root), None)
    assert "\n" not in str(error.value)
    assert not PREPARED_DIR.exists()


def _flatten(train: Path) -> None:
    """Images straight in train/, without class folders."""
    for path in sorted(train.rglob("*.*")):
        path.rename(train / f"{path.parent.name}-{path.name}")
    for folder in sorted(train.rglob("*"), reverse=True):
        if folder.is_dir():
            folder.rmdir()


def _write(path: Path, data: bytes) -> None:
    path.write_bytes(data)


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-30])


def _truncate_scan(path: Path) -> None:
    data = path.read_bytes()[:-50]
    with Image.open(io.BytesIO(data)) as image:
        image.verify()  # the damage is in the pixel data, past what verify() reads
    path.write_bytes(data)


def _as_gif(path: Path) -> None:
    Image.open(path).save(path, format="GIF")


def _empty_val(root: Path) -> None:
    for path in (root / "val").rglob("v.*"):
        path.unlink()
    for folder in (root / "val").iterdir():
        folder.rmdir()


def _params(root: Path, **data):
    params = load_params(REPO / "params.yaml")
    data = dataclasses.replace(
        params.data,
        dataset="image_folder",
        path=str(root),
        image_size=SIZE,
        **{"subset": 1.0, **data},
    )
    return dataclasses.replace(params, data=data)


def test_prepare_indexes_the_files_without_copying_them(tmp_path, image_folder, monkeypatch):
    root = image_folder()
    monkeypatch.chdir(tmp_path)
    prepare.run(_params(root), None)
    ds, splits, manifest = load_prepared()
    assert ds.is_files and ds.image_size == SIZE and ds.num_classes == 3
    assert all(Path(p).is_file() for p in [*ds.train_x, *ds.test_x])
    assert manifest["format"] == "files" and manifest["root"] == str(root)
    assert manifest["image_shape"] == [SIZE, SIZE, 3] and len(manifest["files_sha256"]) == 64
    assert manifest["train_counts"] == {"cat": 3, "dog": 3, "emu": 2}
    assert manifest["test_counts"] == {"cat": 1, "dog": 1, "emu": 0}
    assert (manifest["mean"], manifest["std"]) == tuple(map(list, IMAGENET_STATS))
    with np.load(PREPARED_DIR / DATASET_FILE) as npz:
        assert npz["train_x"][0] == "train/cat/a.jpg" and npz["train_x"].dtype.kind == "U"
        assert npz["train_sizes"][0] == (root / "train/cat/a.jpg").stat().st_size
    both = np.sort(np.concatenate([splits.search_weights, splits.search_arch]))
    assert np.array_equal(both, np.arange(8))
    small, large = (labelled_subset(ds.train_y, splits.validation, 0, 0, r) for r in (0.3, 0.7))
    assert np.isin(small, large).all() and len(small) == 3


def test_content_hash_follows_the_bytes(tmp_path, image_folder, monkeypatch):
    root = image_folder()
    monkeypatch.chdir(tmp_path)

    def files_hash():
        prepare.run(_params(root), None)
        return json.loads((PREPARED_DIR / MANIFEST_FILE).read_text())["files_sha256"]

    first = files_hash()
    assert files_hash() == first
    Image.new("RGB", (40, 40), (10, 20, 30)).save(root / "val/cat/v.png")
    assert files_hash() != first


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (lambda path: path.unlink(), "is missing since `sswp prepare`"),
        (lambda path: path.write_bytes(path.read_bytes() + b"x"), r"changed size \(\d+ -> \d+"),
    ],
    ids=["deleted", "resized"],
)
def test_changed_files_after_prepare_detected(tmp_path, image_folder, monkeypatch, change, words):
    root = image_folder()
    monkeypatch.chdir(tmp_path)
    prepare.run(_params(root), None)
    change(root / "train/dog/a.JPEG")
    with pytest.raises(SswpError, match=f"image .*dog/a.JPEG, indexed in .*{words}"):
        load_prepared()


def test_subset_keeps_a_balanced_part_of_the_files(tmp_path, image_folder, monkeypatch):
    root = image_folder()
    monkeypatch.chdir(tmp_path)
    prepare.run(_params(root, subset=0.5), None)
    ds, splits, manifest = load_prepared()
    assert manifest["train_counts"] == {"cat": 2, "dog": 2, "emu": 1}
    assert len(ds.test_y) == 2 and len(splits.search_weights) + len(splits.search_arch) == 5
