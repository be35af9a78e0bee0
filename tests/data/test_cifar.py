"""CIFAR-10/100 reading, on tiny folders in the python-pickle layout that the tests write."""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import logging
import os
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import yaml

from sswp import cli
from sswp.config.load import load_params
from sswp.data import cifar
from sswp.data.cifar import load_cifar
from sswp.data.datasets import NORMALIZATION, load_prepared, load_raw
from sswp.errors import SswpError
from sswp.pipeline.paths import PREPARED_DIR
from sswp.stages import prepare

REPO = Path(__file__).resolve().parents[2]

CIFAR10_TRAIN = [f"data_batch_{i}" for i in range(1, 6)]


class _Py2Pickler(pickle._Pickler):
    """Writes bytes as Python 2 `str`, like the files of the real archives."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_py2_str(self, obj: bytes) -> None:
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_py2_str


def dump(path: Path, obj: object, py2: bool) -> None:
    """Python 2 style (bytes keys, protocol 2, numpy.core names) or a plain Python 3 pickle."""
    if not py2:
        path.write_bytes(pickle.dumps(obj, protocol=4))
        return
    with path.open("wb") as handle:
        _Py2Pickler(handle, protocol=2).dump(_to_bytes(obj))
    # the real files name numpy's old module
    old = path.read_bytes().replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    path.write_bytes(old)


def _to_bytes(obj: object) -> object:
    if isinstance(obj, str):
        return obj.encode()
    if isinstance(obj, dict):
        return {_to_bytes(k): _to_bytes(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_to_bytes(v) for v in obj]
    return obj


def _batch(rng: np.random.Generator, n: int, label_keys: dict[str, int]) -> dict:
    batch = {"batch_label": "tiny", "data": rng.integers(0, 256, (n, 3072), dtype=np.uint8)}
    batch["filenames"] = [f"img{i}.png" for i in range(n)]
    for key, classes in label_keys.items():
        batch[key] = rng.integers(0, classes, n).tolist()
    return batch


def write_cifar10(folder: Path, n: int = 3, py2: bool = False) -> dict[str, dict]:
    """Five train batches and a test batch of `n` images each; returns what was written."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    names = [f"class{i}" for i in range(10)]
    dump(folder / "batches.meta", {"label_names": names, "num_vis": 3072}, py2)
    batches = {name: _batch(rng, n, {"labels": 10}) for name in [*CIFAR10_TRAIN, "test_batch"]}
    for name, batch in batches.items():
        dump(folder / name, batch, py2)
    return batches


def write_cifar100(folder: Path, n: int = 4, py2: bool = False) -> dict[str, dict]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    meta = {
        "fine_label_names": [f"fine{i}" for i in range(100)],
        "coarse_label_names": [f"coarse{i}" for i in range(20)],
    }
    dump(folder / "meta", meta, py2)
    batches = {
        name: _batch(rng, n, {"fine_labels": 100, "coarse_labels": 20})
        for name in ("train", "test")
    }
    for name, batch in batches.items():
        dump(folder / name, batch, py2)
    return batches


def _image(row: np.ndarray) -> np.ndarray:
    return row.reshape(3, 32, 32).transpose(1, 2, 0)


@pytest.mark.parametrize("py2", [False, True], ids=["py3-pickle", "py2-pickle"])
def test_reads_cifar10(tmp_path, py2):
    batches = write_cifar10(tmp_path / "cifar-10-batches-py", py2=py2)
    ds = load_cifar("cifar10", tmp_path)
    assert ds.name == "cifar10" and ds.problem() is None
    assert ds.classes == tuple(f"class{i}" for i in range(10))
    assert ds.train_x.shape == (15, 32, 32, 3) and ds.test_x.shape == (3, 32, 32, 3)
    assert ds.train_x.flags.c_contiguous and ds.test_x.flags.c_contiguous
    expected_y = sum((batches[name]["labels"] for name in CIFAR10_TRAIN), [])
    assert ds.train_y.tolist() == expected_y and ds.train_y.dtype == np.int64
    assert np.array_equal(ds.train_x[3], _image(batches["data_batch_2"]["data"][0]))
    assert np.array_equal(ds.test_x[2], _image(batches["test_batch"]["data"][2]))
    assert ds.test_y.tolist() == batches["test_batch"]["labels"]


@pytest.mark.parametrize("py2", [False, True], ids=["py3-pickle", "py2-pickle"])
def test_reads_cifar100_fine_labels_from_the_folder_itself(tmp_path, py2):
    batches = write_cifar100(tmp_path, py2=py2)
    ds = load_cifar("cifar100", tmp_path)
    assert ds.num_classes == 100 and ds.classes[7] == "fine7"
    assert ds.train_y.tolist() == batches["train"]["fine_labels"]
    assert np.array_equal(ds.test_x[1], _image(batches["test"]["data"][1]))


def test_missing_folder_says_never_downloaded(tmp_path):
    with pytest.raises(SswpError, match="CIFAR-10 not found.*data_batch_1.*never downloaded"):
        load_cifar("cifar10", tmp_path / "nowhere")


def test_missing_file_is_named(tmp_path):
    write_cifar10(tmp_path)
    (tmp_path / "data_batch_4").unlink()
    with pytest.raises(SswpError, match=r"file .*data_batch_4 is missing"):
        load_cifar("cifar10", tmp_path)


def test_corrupted_file_is_named(tmp_path):
    write_cifar10(tmp_path)
    (tmp_path / "test_batch").write_bytes(b"\x80\x04garbage bytes, not a pickle")
    with pytest.raises(SswpError, match=r"test_batch is corrupted"):
        load_cifar("cifar10", tmp_path)


def test_truncated_file_is_named(tmp_path):
    write_cifar100(tmp_path)
    path = tmp_path / "train"
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(SswpError, match=r"train is corrupted"):
        load_cifar("cifar100", tmp_path)


@pytest.mark.parametrize(
    ("data", "labels", "words"),
    [
        (np.zeros((3, 1024), np.uint8), [0, 1, 2], "N x 3072 uint8"),
        (np.zeros((3, 3072), np.float32), [0, 1, 2], "N x 3072 uint8"),
        (np.zeros((3, 3072), np.uint8), [0, 1], "must be 3 integers"),
        (np.zeros((3, 3072), np.uint8), [0, 1, 10], r"must lie in 0\.\.9"),
    ],
)
def test_wrong_shapes_rejected(tmp_path, data, labels, words):
    write_cifar10(tmp_path)
    dump(tmp_path / "data_batch_1", {"data": data, "labels": labels}, py2=False)
    with pytest.raises(SswpError, match=f"data_batch_1: .*{words}"):
        load_cifar("cifar10", tmp_path)


class _RunsShell:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("payload", ["os.system", "OrderedDict"])
def test_forbidden_classes_refused_without_running(tmp_path, payload):
    write_cifar10(tmp_path)
    marker = tmp_path / "pwned"
    data = (
        _RunsShell(marker)
        if payload == "os.system"
        else collections.OrderedDict(data=np.zeros((1, 3072), np.uint8), labels=[0])
    )
    dump(tmp_path / "data_batch_3", {"data": data, "labels": [0]}, py2=False)
    with pytest.raises(SswpError, match=r"data_batch_3 refers to the forbidden object"):
        load_cifar("cifar10", tmp_path)
    assert not marker.exists()


def test_load_raw_dispatches_and_rejects_unknown(tmp_path):
    params = load_params(REPO / "params.yaml")
    write_cifar100(tmp_path / "cifar-100-python")
    data = dataclasses.replace(params.data, dataset="cifar100", path=str(tmp_path))
    assert load_raw(data).name == "cifar100"
    with pytest.raises(SswpError, match="unknown; use one of digits, cifar10, cifar100"):
        load_raw(dataclasses.replace(data, dataset="mnist"))


def test_prepare_stage_on_cifar10(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_cifar10(tmp_path / "raw" / "cifar-10-batches-py", n=4)
    params = load_params(REPO / "params.yaml")
    data = dataclasses.replace(params.data, dataset="cifar10", path="raw", subset=1.0)
    prepare.run(dataclasses.replace(params, data=data), None)
    ds, splits, manifest = load_prepared()
    assert ds.train_x.shape == (20, 32, 32, 3) and manifest["dataset"] == "cifar10"
    assert (manifest["mean"], manifest["std"]) == tuple(map(list, NORMALIZATION["cifar10"]))
    assert len(splits.search_weights) + len(splits.search_arch) + len(splits.validation) == 20


def test_failed_prepare_leaves_no_partial_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_cifar10(tmp_path / "raw")
    (tmp_path / "raw" / "test_batch").write_bytes(b"broken")
    params = load_params(REPO / "params.yaml")
    params = dataclasses.replace(
        params, data=dataclasses.replace(params.data, dataset="cifar10", path="raw")
    )
    with pytest.raises(SswpError, match="test_batch is corrupted"):
        prepare.run(params, None)
    assert not PREPARED_DIR.exists()
    assert not PREPARED_DIR.parent.exists() or not any(PREPARED_DIR.parent.iterdir())


def _as_official(monkeypatch, folder: Path, name: str, md5: dict[str, str] | None) -> None:
    """Make the tiny files count as official: their image counts, and `md5` as published."""
    ds = load_cifar(name, folder)  # before patching: the counts of what was written
    monkeypatch.setattr(cifar, "_OFFICIAL_IMAGES", (len(ds.train_y), len(ds.test_y)))
    if md5 is not None:
        layout = dataclasses.replace(cifar._LAYOUTS[name], md5=md5)
        monkeypatch.setitem(cifar._LAYOUTS, name, layout)


def _md5s(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.md5(p.read_bytes()).hexdigest() for p in folder.iterdir()}


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_official_counts_with_the_published_md5s_are_read(tmp_path, monkeypatch, caplog, name):
    folder = tmp_path / name
    (write_cifar10 if name == "cifar10" else write_cifar100)(folder)
    _as_official(monkeypatch, folder, name, _md5s(folder))
    with caplog.at_level(logging.INFO, logger="sswp.data.cifar"):
        ds = load_cifar(name, folder)
    assert ds.name == name
    assert "every file has the official md5" in caplog.text


def test_official_counts_with_another_md5_stop_naming_file_and_fix(tmp_path, monkeypatch):
    folder = tmp_path / "cifar-10-batches-py"
    write_cifar10(folder)
    md5 = _md5s(folder)
    _as_official(monkeypatch, folder, "cifar10", md5 | {"test_batch": "0" * 32})
    with pytest.raises(SswpError) as err:
        load_cifar("cifar10", tmp_path)
    assert str(err.value) == (
        f"{folder / 'test_batch'} has md5 {md5['test_batch']}, not the official {'0' * 32}: "
        "the file is damaged or altered; extract it again from cifar-10-python.tar.gz (its "
        "md5 is in docs/data.md, Getting the data)"
    )


def test_the_published_md5s_refuse_files_that_claim_the_official_counts(tmp_path, monkeypatch):
    write_cifar100(tmp_path / "cifar-100-python")
    _as_official(monkeypatch, tmp_path, "cifar100", None)
    with pytest.raises(SswpError, match=r"cifar-100-python/train has md5 [0-9a-f]{32}, not the "):
        load_cifar("cifar100", tmp_path)


def test_other_counts_are_read_unchecked_and_say_so(tmp_path, caplog):
    write_cifar10(tmp_path / "cifar-10-batches-py")
    with caplog.at_level(logging.INFO, logger="sswp.data.cifar"):
        load_cifar("cifar10", tmp_path)
    assert "15 training and 3 test images, not the official 50000 and 10000" in caplog.text


def test_prepare_with_a_wrong_md5_exits_2_with_one_line_and_no_output(
    tmp_path, monkeypatch, capsys, tiny_config
):
    monkeypatch.chdir(tmp_path)
    write_cifar10(tmp_path / "raw" / "cifar-10-batches-py")
    _as_official(monkeypatch, tmp_path / "raw", "cifar10", None)
    config = {**tiny_config, "data": {**tiny_config["data"], "dataset": "cifar10", "path": "raw"}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(config))
    capsys.readouterr()
    assert cli.main(["prepare"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "data_batch_1 has md5" in err[0], err
    assert not PREPARED_DIR.exists()
