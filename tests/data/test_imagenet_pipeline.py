"""The ImageNet variant end to end on a tiny image folder: stride-8 stem, search, finetune."""

from __future__ import annotations

import json

import torch
import yaml

from sswp import cli
from sswp.nas.supernet import search_space


def _folder_files() -> list[tuple]:
    """3 classes x 8 training images and 2 validation images each, of assorted sizes."""
    files = []
    for c, cls in enumerate(("cat", "dog", "emu")):
        files += [("train", cls, f"{i}.png", 36 + 2 * i, 40, "RGB") for i in range(8)]
        files += [("val", cls, f"v{i}.jpg", 40, 36 + c, "RGB") for i in range(2)]
    return files


def test_imagenet_stem_searches_and_finetunes_on_an_image_folder(
    tmp_path, monkeypatch, image_folder, tiny_config, merge_config
):
    root = image_folder(_folder_files())
    monkeypatch.chdir(tmp_path)
    config = merge_config(
        tiny_config,
        {
            "data": {"dataset": "imagenet", "path": str(root), "image_size": 32, "subset": 1.0},
            "search": {"stem": "imagenet", "batch_size": 4},
            "finetune": {"batch_size": 4, "label_ratios": [1.0], "auxiliary_weight": 0.4},
        },
    )
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(config))
    for argv in (
        ["prepare"],
        ["search"],
        ["finetune", "--init", "preserved", "--ratio", "1.0"],
    ):
        assert cli.main(argv) == 0, argv
    blob = torch.load("artifacts/search/seed-0/final/supernet.pt", weights_only=True)
    assert blob["search_space"] == search_space(3, 2, "imagenet")
    assert any(key.startswith("stem.stem1.") for key in blob["state_dict"])
    metrics = json.loads((tmp_path / "metrics/finetune/preserved-1.0-seed-0.json").read_text())
    info = json.loads((tmp_path / "artifacts/finetune/preserved-1.0-seed-0/info.json").read_text())
    # 24 training images less the validation split's 3 (data.val_fraction: 0.1, per class)
    assert info["labelled_images"] == 21 and 0 <= metrics["test_acc"] <= 1
    model = torch.load("artifacts/finetune/preserved-1.0-seed-0/model.pt", weights_only=True)
    assert any(key.startswith("stem.stem0.") for key in model["state_dict"])
