import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from sswp.config.load import load_params
from sswp.data.datasets import FORMAT_VERSION, channel_stats, load_prepared, normalization
from sswp.data.splits import labelled_subset
from sswp.errors import SswpError
from sswp.pipeline.paths import DATASET_FILE, MANIFEST_FILE, PREPARED_DIR, SPLITS_FILE
from sswp.stages import prepare

REPO = Path(__file__).resolve().parents[2]


def all_digits():
    """The repository's params on every digit (the smoke default keeps only a subset)."""
    params = load_params(REPO / "params.yaml")
    data = dataclasses.replace(params.data, dataset="digits", subset=1.0)
    return dataclasses.replace(params, data=data)


@pytest.fixture
def prepared(tmp_path, monkeypatch):
    """Run the prepare stage on the digits into a fresh folder."""
    monkeypatch.chdir(tmp_path)
    params = all_digits()
    prepare.run(params, None)
    return params


def test_prepare_then_load(prepared):
    ds, splits, manifest = load_prepared()
    assert ds.name == "digits" and ds.num_classes == 10
    size = prepared.data.image_size
    assert ds.train_x.shape == (1437, size, size, 3) and ds.test_x.shape == (360, size, size, 3)
    assert manifest["image_shape"] == [size, size, 3]
    assert manifest["version"] == FORMAT_VERSION and manifest["format"] == "arrays"
    assert sum(manifest["train_counts"].values()) == 1437
    assert manifest["test_counts"]["3"] == int((ds.test_y == 3).sum())
    assert manifest["seed"] == prepared.data.split_seed
    assert normalization(manifest) == channel_stats(ds.train_x)
    validation = splits.validation
    every = np.concatenate([splits.search_weights, splits.search_arch, validation])
    assert np.array_equal(np.sort(every), np.arange(1437))  # the search leaves validation out
    assert len(validation) == manifest["num_validation"]
    assert abs(len(validation) - prepared.data.val_fraction * 1437) <= 10
    assert not np.isin(labelled_subset(ds.train_y, validation, 0, 0, 0.1), validation).any()


def test_prepare_is_reproducible_and_replaces_the_folder(prepared):
    first = (PREPARED_DIR / SPLITS_FILE).read_text(), (PREPARED_DIR / MANIFEST_FILE).read_text()
    (PREPARED_DIR / "stale.txt").write_text("old")
    prepare.run(prepared, None)
    again = (PREPARED_DIR / SPLITS_FILE).read_text(), (PREPARED_DIR / MANIFEST_FILE).read_text()
    assert first == again
    assert not (PREPARED_DIR / "stale.txt").exists()


def test_prepare_logs_a_summary(tmp_path, monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)
    caplog.set_level("INFO", logger="sswp.stages.prepare")
    prepare.run(all_digits(), None)
    assert "prepared digits: 1437 train" in caplog.text


def test_missing_prepared_folder(tmp_path):
    with pytest.raises(SswpError, match=r"dataset.npz is missing; run `sswp prepare`"):
        load_prepared(tmp_path / "prepared")


def _flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("damage", "words"),
    [
        (lambda p: _flip_byte(p, len(p.read_bytes()) // 2), "sha256 differs|unreadable"),
        (lambda p: p.write_bytes(p.read_bytes()[:1000]), "unreadable"),
        (lambda p: p.write_bytes(b"garbage"), "unreadable"),
    ],
    ids=["flipped-byte", "truncated", "garbage"],
)
def test_corrupted_npz_detected(prepared, damage, words):
    damage(PREPARED_DIR / DATASET_FILE)
    with pytest.raises(SswpError, match=rf"dataset.npz is ({words}).*`sswp prepare`"):
        load_prepared()


def test_changed_arrays_detected(prepared):
    path = PREPARED_DIR / DATASET_FILE
    with np.load(path) as npz:
        arrays = dict(npz)
    arrays["train_y"] = arrays["train_y"][::-1].copy()
    np.savez(path, **arrays)
    with pytest.raises(SswpError, match="sha256 differs.*`dvc repro prepare`"):
        load_prepared()


def test_pickled_npz_refused(prepared):
    path = PREPARED_DIR / DATASET_FILE
    with np.load(path) as npz:
        arrays = dict(npz)
    arrays["train_y"] = np.array([{"a": 1}], dtype=object)
    np.savez(path, **arrays)
    with pytest.raises(SswpError, match="dataset.npz is unreadable"):
        load_prepared()


def test_bad_splits_detected(prepared):
    path = PREPARED_DIR / SPLITS_FILE
    raw = json.loads(path.read_text())
    raw["search_arch"] = raw["search_weights"]
    path.write_text(json.dumps(raw))
    with pytest.raises(SswpError, match="splits.json is invalid .*overlap"):
        load_prepared()
    path.write_text("{not json")
    with pytest.raises(SswpError, match="splits.json is not valid JSON"):
        load_prepared()


def test_bad_manifest_detected(prepared):
    (PREPARED_DIR / MANIFEST_FILE).write_text("[]")
    with pytest.raises(SswpError, match="manifest.json is missing one of the keys"):
        load_prepared()


def test_other_format_version_detected(prepared):
    path = PREPARED_DIR / MANIFEST_FILE
    manifest = json.loads(path.read_text())
    path.write_text(json.dumps({**manifest, "version": FORMAT_VERSION - 1}))
    with pytest.raises(SswpError, match=f"manifest.json is of format version {FORMAT_VERSION - 1}"):
        load_prepared()
