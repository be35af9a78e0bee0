"""Bad input: one clear line on stderr, a non-zero exit, and no declared output left behind."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest
import torch
import yaml

from sswp import cli
from sswp.engine.checkpoint import Checkpointer
from sswp.nas.genotype import derive_genotype
from sswp.nas.supernet import SuperNet, search_space
from sswp.paths import snapshot_dir

OUTPUTS = (
    "artifacts/train",
    "artifacts/finetune",
    "artifacts/pretrain",
    "artifacts/linear_eval",
    "metrics",
    "results",
)


@pytest.fixture
def workdir(tmp_path, monkeypatch, tiny_config):
    """A run folder with tiny params, prepared data and a fake search snapshot."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(tiny_config))
    assert cli.main(["prepare"]) == 0
    layers, channels = tiny_config["search"]["layers"], tiny_config["search"]["channels"]
    snap = snapshot_dir(0, "final")
    derive_genotype([torch.randn(14, 7) for _ in range(layers)]).save(snap / "genotype.json")
    net = SuperNet(layers, channels)
    torch.save(
        {"search_space": search_space(layers, channels), "state_dict": net.state_dict()},
        snap / "supernet.pt",
    )
    return tmp_path


def _fails_cleanly(capsys, argv: list[str], *expected: str) -> str:
    capsys.readouterr()
    status = cli.main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2
    assert len(err) == 1, err
    line = err[0]
    assert line.startswith(f"sswp {argv[0]}: error: ")
    for text in expected:
        assert text in line, line
    for path in OUTPUTS:
        assert not list(Path(path).rglob("*.*")), path
    return line


def _set(workdir, dotted: str, value) -> None:
    config = yaml.safe_load((workdir / "params.yaml").read_text())
    node = config
    *parents, last = dotted.split(".")
    for part in parents:
        node = node[part]
    node[last] = value
    (workdir / "params.yaml").write_text(yaml.safe_dump(config))


def test_negative_epochs(workdir, capsys):
    _set(workdir, "train.epochs", -1)
    _fails_cleanly(capsys, ["train"], "train.epochs = -1", "minimum of 1")


def test_phase_ratios_over_one(workdir, capsys):
    _set(workdir, "search.phases", {"warmup": 0.5, "search": 0.4, "prune": 0.4, "stabilise": 0})
    _fails_cleanly(capsys, ["search"], "search.phases sum to 1.3")


def test_unknown_key_in_params(workdir, capsys):
    _set(workdir, "search.lerning_rate", 0.1)
    _fails_cleanly(capsys, ["search"], "lerning_rate", "remove it or check its spelling")


@pytest.mark.parametrize("ratio", ["0", "1.5", "-0.1"])
def test_label_ratio_outside_unit_interval(workdir, capsys, ratio):
    _fails_cleanly(capsys, ["finetune", "--init", "random", "--ratio", ratio], "outside (0, 1]")


def test_label_ratio_so_small_that_a_class_gets_no_image(workdir, capsys):
    _fails_cleanly(
        capsys,
        ["finetune", "--init", "random", "--ratio", "0.001"],
        "leaves class",
        "with no images",
        "use a ratio of at least",
    )


def test_batch_larger_than_its_split(workdir, capsys):
    _set(workdir, "search.batch_size", 10_000)
    _fails_cleanly(capsys, ["search"], "batch size 10000", "search.batch_size")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("{not json", "not valid JSON"),
        ('{"cells": [{"reduction": true, "edges": [["conv_9x9", 0]]}]}', "needs 8"),
        (None, "unknown op 'conv_9x9'"),
        ("wrong-cells", "has 2 cells but search.layers = 3"),
    ],
)
def test_bad_genotype_files(workdir, capsys, content, expected):
    path = snapshot_dir(0, "final") / "genotype.json"
    if content is None:
        data = derive_genotype([torch.randn(14, 7) for _ in range(3)]).to_json()
        data["cells"][0]["edges"][3][0] = "conv_9x9"
        content = json.dumps(data)
    elif content == "wrong-cells":
        derive_genotype([torch.randn(14, 7) for _ in range(2)]).save(path)
        content = path.read_text()
    path.write_text(content)
    _fails_cleanly(capsys, ["train"], str(path) if content.startswith("{not") else "", expected)


def test_supernet_from_another_search_space(workdir, capsys):
    path = snapshot_dir(0, "final") / "supernet.pt"
    blob = torch.load(path, weights_only=True)
    blob["search_space"] = search_space(3, 4)
    torch.save(blob, path)
    _fails_cleanly(
        capsys,
        ["finetune", "--init", "preserved", "--ratio", "1.0"],
        "comes from another search space",
        "'channels': 4",
    )


def test_truncated_weights_file(workdir, capsys):
    path = snapshot_dir(0, "final") / "supernet.pt"
    path.write_bytes(path.read_bytes()[:1000])
    _fails_cleanly(
        capsys,
        ["finetune", "--init", "preserved", "--ratio", "1.0"],
        "cannot read weights",
        "rerun `sswp search --seed 0`",
    )


def test_whole_number_label_ratio(workdir, capsys):
    _set(workdir, "finetune.label_ratios", [0.5, 1])
    _fails_cleanly(capsys, ["search"], "finetune.label_ratios holds 1", "(1.0, not 1)")


def test_seed_not_in_params(workdir, capsys):
    _fails_cleanly(capsys, ["train", "--seed", "7"], "--seed 7 is not in", "seeds (0)")


def test_reference_architecture_has_no_preserved_weights(workdir, capsys):
    _set(workdir, "finetune.architecture", "darts_v2")
    line = _fails_cleanly(capsys, ["finetune", "--init", "preserved", "--ratio", "1.0"])
    assert "finetune.architecture" in line


def test_two_stage_before_pretrain(workdir, capsys):
    _fails_cleanly(
        capsys,
        ["finetune", "--init", "two_stage", "--ratio", "1.0"],
        "artifacts/pretrain/seed-0/model.pt not found",
        "run `sswp pretrain --seed 0` first",
    )


def test_failed_checkpoint_write_keeps_the_previous_one(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    checkpointer = Checkpointer("search", {"k": 1})
    checkpointer.save({"epoch": 1, "step": 0, "weights": torch.ones(3)})

    def disk_full(obj, f, *args, **kwargs):
        f.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(OSError, match="No space left"):
        checkpointer.save({"epoch": 2, "step": 0, "weights": torch.zeros(3)})
    monkeypatch.undo()
    monkeypatch.chdir(tmp_path)
    state = Checkpointer("search", {"k": 1}).load()
    assert state["epoch"] == 1 and torch.equal(state["weights"], torch.ones(3))
    assert sorted(p.name for p in checkpointer.dir.iterdir()) == ["checkpoint.pt", "key.json"]


@pytest.fixture
def fresh(tmp_path, monkeypatch, tiny_config):
    """A run folder with params but no prepared data."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(tiny_config))
    return tmp_path


def _prepare_fails(capsys, *expected: str) -> None:
    _fails_cleanly(capsys, ["prepare"], *expected)
    assert not Path("data/prepared").exists()


def test_missing_data_path(fresh, capsys):
    _set(fresh, "data.dataset", "cifar10")
    _set(fresh, "data.path", str(fresh / "nowhere"))
    _prepare_fails(capsys, "nowhere", "data_batch_1")


def test_unknown_dataset_name(fresh, capsys):
    _set(fresh, "data.dataset", "mnist")
    _prepare_fails(capsys, "data.dataset = 'mnist' is not allowed", "'cifar10'")


def test_corrupted_cifar_pickle(fresh, capsys):
    folder = fresh / "cifar"
    folder.mkdir()
    for name in [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch", "batches.meta"]:
        (folder / name).write_bytes(b"\x80\x04garbage")
    _set(fresh, "data.dataset", "cifar10")
    _set(fresh, "data.path", str(folder))
    _prepare_fails(capsys, "cifar")


def test_image_folder_with_no_classes(fresh, capsys):
    (fresh / "photos/train").mkdir(parents=True)
    (fresh / "photos/val").mkdir(parents=True)
    _set(fresh, "data.dataset", "image_folder")
    _set(fresh, "data.path", str(fresh / "photos"))
    _prepare_fails(capsys, "photos", "class")
