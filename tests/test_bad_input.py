"""Bad input: one clear line on stderr, a non-zero exit, and no declared output left behind."""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
from pathlib import Path

import pytest
import torch
import yaml

import sswp
from sswp import cli
from sswp.config.load import params_from_dict
from sswp.engine.checkpoint import Checkpointer
from sswp.engine.logs import ATTEMPT_SEPARATOR
from sswp.nas.genotype import derive_genotype
from sswp.nas.supernet import SuperNet, search_space
from sswp.pipeline.paths import snapshot_dir
from sswp.pipeline.plan import search_plan
from sswp.pipeline.provenance import RECORD_FILE, make_record

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
    plan = search_plan(0)
    record = make_record("search", plan.command, params_from_dict(tiny_config), plan.inputs, {})
    (plan.artifact / RECORD_FILE).write_text(json.dumps(record))
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
    _set(workdir, "finetune.label_ratios", [0.001, 0.5, 1.0])
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


def _prepare_fails(capsys, *expected: str) -> str:
    line = _fails_cleanly(capsys, ["prepare"], *expected)
    assert not Path("data/prepared").exists()
    return line


@pytest.mark.parametrize(
    ("edited", "refused"),
    [(None, False), ("stages/search.py", False), ("stages/prepare.py", True)],
    ids=["same code", "other stage's code edited", "this stage's code edited"],
)
def test_a_stage_runs_only_the_checkouts_own_code(fresh, capsys, edited, refused):
    """As when a venv shared by two clones has its editable install in the other one."""
    shutil.copytree(Path(sswp.__file__).parent, fresh / "src/sswp")
    if edited:
        with open(fresh / "src/sswp" / edited, "a") as module:
            module.write("\n# edited\n")
    if refused:
        _prepare_fails(capsys, "src/sswp/ differs from the sswp package that runs", "pip install")
    else:
        assert cli.main(["prepare"]) == 0


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


# ----- run selection, params files -----


def test_ratio_not_in_params_is_refused_like_a_seed(workdir, capsys):
    for stage in (["finetune", "--init", "random"], ["linear_eval"]):
        _fails_cleanly(
            capsys, [*stage, "--ratio", "0.3"], "--ratio 0.3 is not in", "finetune.label_ratios"
        )


def test_params_file_that_is_not_utf8(fresh, capsys):
    (fresh / "params.yaml").write_bytes(b"# caf\xe9\n" + (fresh / "params.yaml").read_bytes())
    _prepare_fails(capsys, "params.yaml is not UTF-8", "0xe9", "offset 5")


def test_yaml_error_gives_line_and_column(fresh, capsys):
    text = (fresh / "params.yaml").read_text()
    (fresh / "params.yaml").write_text("seeds: [0\nruntime: {}\n" + text)
    _prepare_fails(capsys, "not valid YAML", "line 2, column 8")


def test_seed_beyond_32_bits(workdir, capsys):
    _set(workdir, "seeds", [2**32])
    _fails_cleanly(capsys, ["search"], "seeds.0 = 4294967296", "maximum of 4294967295")


def test_data_subset_error_names_data_subset(fresh, capsys):
    _set(fresh, "data.subset", 0.001)
    line = _prepare_fails(capsys, "data.subset 0.001 leaves class")
    assert "label ratio" not in line


# ----- inputs and their provenance -----


def test_inputs_made_with_other_params_are_refused(workdir, capsys):
    _set(workdir, "search.epochs", 5)
    _fails_cleanly(
        capsys,
        ["finetune", "--init", "preserved", "--ratio", "1.0"],
        "artifacts/search/seed-0 is stale",
        "other search params",
        "rerun `sswp search --seed 0`",
    )


def test_the_most_upstream_stale_stage_is_named(workdir, capsys):
    _set(workdir, "data.subset", 0.2)
    _fails_cleanly(
        capsys, ["train"], "data/prepared is stale", "other prepare params", "`sswp prepare`"
    )


def test_an_input_made_from_an_input_since_remade_is_refused(workdir, capsys):
    _set(workdir, "data.subset", 0.2)
    assert cli.main(["prepare"]) == 0  # other data: the search was made from the old one
    _fails_cleanly(
        capsys,
        ["train"],
        "artifacts/search/seed-0 is stale",
        "data/prepared was remade after it",
        "`sswp search --seed 0`",
    )


def test_inputs_without_a_record_are_refused(workdir, capsys):
    (search_plan(0).artifact / RECORD_FILE).unlink()
    _fails_cleanly(capsys, ["train"], "has no provenance record", "`sswp search --seed 0`")


def test_supernet_missing_tensors_is_refused(workdir, capsys):
    path = snapshot_dir(0, "final") / "supernet.pt"
    blob = torch.load(path, weights_only=True)
    dropped = sorted(k for k in blob["state_dict"] if k.startswith("cells.0.preprocess0."))
    blob["state_dict"] = {k: v for k, v in blob["state_dict"].items() if k not in dropped}
    torch.save(blob, path)
    line = _fails_cleanly(
        capsys,
        ["finetune", "--init", "preserved", "--ratio", "1.0"],
        f"lacks {len(dropped)} tensors",
        dropped[0],
        "rerun `sswp search --seed 0`",
    )
    assert str(path) in line


# ----- the machine: disk, folders, signals -----

REFERENCE_TRAIN = ["train", "--architecture", "pdarts"]


def _fails_after_running(capsys, argv: list[str], *expected: str) -> str:
    """A stage that logged progress, then failed: its last line is the one error line."""
    capsys.readouterr()
    status = cli.main(argv)
    err = capsys.readouterr().err
    assert status == 2, err
    assert "Traceback" not in err
    line = err.strip().splitlines()[-1]
    assert line.startswith(f"sswp {argv[0]}: error: "), line
    for text in expected:
        assert text in line, line
    for path in OUTPUTS:
        assert not list(Path(path).rglob("*.*")), path
    return line


def test_full_disk_is_one_line_and_leaves_no_partial_file(workdir, capsys, monkeypatch):
    def disk_full(obj, f, *args, **kwargs):
        f.write(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    _fails_after_running(capsys, REFERENCE_TRAIN, "No space left on device", "free some space")
    assert not list(Path(".checkpoints").rglob("*.tmp"))


def _read_only_under(monkeypatch, folder: str) -> None:
    """Writes below `folder` fail as on a read-only mount (chmod does not stop root)."""
    real_open = os.open
    below = os.path.abspath(folder) + os.sep

    def os_open(path, flags, *args, **kwargs):
        writes = flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)
        if os.path.abspath(path).startswith(below) and writes:
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", os_open)


def test_read_only_metrics_fails_before_training_and_writes_nothing(workdir, capsys, monkeypatch):
    _read_only_under(monkeypatch, "metrics")
    _fails_cleanly(capsys, REFERENCE_TRAIN, "Read-only file system", "metrics/train")
    assert not Path("artifacts/train").exists() or not list(Path("artifacts/train").iterdir())


def test_read_only_logs(workdir, capsys, monkeypatch):
    import builtins

    from sswp.engine import logs

    def read_only(path, *args, **kwargs):
        if str(path).startswith("logs"):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return builtins.open(path, *args, **kwargs)

    monkeypatch.setattr(logs, "open", read_only, raising=False)
    _fails_cleanly(capsys, REFERENCE_TRAIN, "Read-only file system", "logs/train-pdarts-seed-0.log")


def test_checkpoint_of_the_wrong_structure(workdir, capsys):
    _set(workdir, "runtime.keep_checkpoints", True)
    assert cli.main(REFERENCE_TRAIN) == 0
    (checkpoint,) = Path(".checkpoints/train/pdarts-seed-0").glob("*/checkpoint.pt")
    torch.save({"epoch": 1, "step": 0, "weights": {"w": torch.ones(2)}}, checkpoint)
    shutil.rmtree("artifacts/train")
    shutil.rmtree("metrics/train")
    _fails_cleanly(
        capsys, REFERENCE_TRAIN, f"checkpoint {checkpoint} does not fit", "delete", "start"
    )


def test_orphan_temp_files_of_the_stage_are_removed(workdir):
    orphan_dir = Path("artifacts/train/.pdarts-seed-0.x1.tmp")
    orphan_dir.mkdir(parents=True)
    (orphan_dir / "model.pt").write_bytes(b"half")
    orphan_file = Path("metrics/train/.pdarts-seed-0.json.x2.tmp")
    orphan_file.parent.mkdir(parents=True)
    orphan_file.write_text("{")
    other_run = Path("artifacts/train/.final-seed-0.x3.tmp")
    other_run.mkdir()
    assert cli.main(REFERENCE_TRAIN) == 0
    assert not orphan_dir.exists() and not orphan_file.exists()
    assert other_run.exists()  # another run's write, maybe in progress
    assert Path("artifacts/train/pdarts-seed-0/model.pt").is_file()


def test_sigterm_while_writing_outputs(workdir, capsys, monkeypatch):
    from sswp.pipeline import outputs

    real = outputs.make_record

    def terminated_meanwhile(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        return real(*args, **kwargs)

    monkeypatch.setattr(outputs, "make_record", terminated_meanwhile)
    capsys.readouterr()
    assert cli.main(REFERENCE_TRAIN) == 128 + signal.SIGTERM
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "stopped by SIGTERM" in last and "Rerun the same command" in last
    for path in OUTPUTS:
        assert not list(Path(path).rglob("*.*")), path
    assert not list(Path(".").rglob("*.tmp"))


def test_logs_append_with_a_separator_per_attempt(workdir):
    assert cli.main(REFERENCE_TRAIN) == 0
    assert cli.main(REFERENCE_TRAIN) == 0
    lines = Path("logs/train-pdarts-seed-0.log").read_text().splitlines()
    separators = [i for i, line in enumerate(lines) if line.startswith(ATTEMPT_SEPARATOR)]
    assert len(separators) == 2 and separators[0] == 0
    assert sum("train done" in line for line in lines) == 2


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("search.weight_lr", float("nan")),
        ("train.lr", float("inf")),
        ("pretrain.lr", -float("inf")),
    ],
)
def test_non_finite_number_in_params(workdir, capsys, key, value):
    _set(workdir, key, value)
    _fails_cleanly(capsys, ["train", "--seed", "0"], f"{key} = {value!r} is not a finite number")


@pytest.mark.parametrize(
    ("argv", "key", "stage"),
    [
        (["train", "--seed", "0"], "train.lr", "train/final-seed-0"),
        (
            ["finetune", "--seed", "0", "--init", "preserved", "--ratio", "1.0"],
            "finetune.lr",
            "finetune/preserved-1.0-seed-0",
        ),
        (["search", "--seed", "0"], "search.weight_lr", "search"),
    ],
)
def test_divergence_mid_run_is_one_line_with_the_epoch_and_no_output(
    workdir, capsys, argv, key, stage
):
    """A learning rate of 1e30 sends the weights to infinity within the first epoch."""
    _set(workdir, key, 1e30)
    searching = argv[0] == "search"
    if searching:
        shutil.rmtree("artifacts/search")
    capsys.readouterr()
    assert cli.main(argv) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if " INFO " not in line]
    assert errors == [
        f"sswp {argv[0]}: error: {stage} diverged in epoch 1: the loss is nan; the learning "
        f"rate is the likely cause: lower {key} and rerun"
    ]
    for path in (*OUTPUTS, *(["artifacts/search"] if searching else [])):
        assert not list(Path(path).rglob("*.*")), path


@pytest.fixture
def avx512_kernels(monkeypatch):
    """The process looks as on a CPU with AVX-512 whose torch loaded before `sswp` pinned it."""
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX512")


def test_an_error_stays_one_line_where_torch_runs_other_kernels(workdir, capsys, avx512_kernels):
    _set(workdir, "finetune.label_ratios", [0.001, 0.5, 1.0])
    _fails_cleanly(capsys, ["finetune", "--init", "random", "--ratio", "0.001"], "leaves class")
    log = Path("logs/finetune-random-0.001-seed-0.log").read_text()
    assert "torch runs AVX512 CPU kernels, not AVX2 ones" in log


def test_the_kernel_warning_follows_a_stage_that_succeeds(workdir, capsys, avx512_kernels):
    capsys.readouterr()
    assert cli.main(REFERENCE_TRAIN) == 0
    err = capsys.readouterr().err.splitlines()
    warnings = [i for i, line in enumerate(err) if "torch runs AVX512 CPU kernels" in line]
    assert len(warnings) == 1 and err[warnings[0] + 1].endswith("train done"), err
    log = Path("logs/train-pdarts-seed-0.log").read_text()
    assert log.count("torch runs AVX512 CPU kernels") == 1
