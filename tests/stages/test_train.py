"""`sswp train` of a reference genotype needs prepared data only, no search."""

from __future__ import annotations

import json

import torch
import yaml

from sswp import cli
from sswp.nas.reference import reference_genotype


def test_reference_architecture_trains_without_any_search(tmp_path, monkeypatch, tiny_config):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(tiny_config))
    assert cli.main(["prepare"]) == 0
    assert cli.main(["train", "--architecture", "pdarts"]) == 0
    assert not (tmp_path / "artifacts/search").exists()
    metrics = json.loads((tmp_path / "metrics/train/pdarts-seed-0.json").read_text())
    assert 0 <= metrics["test_acc"] <= 1
    assert all(type(value) in (int, float) for value in metrics.values()), metrics
    info = json.loads((tmp_path / "artifacts/train/pdarts-seed-0/info.json").read_text())
    assert info == {"architecture": "pdarts", "seed": 0}

    saved = torch.load(tmp_path / "artifacts/train/pdarts-seed-0/model.pt", weights_only=True)
    assert saved["genotype"] == reference_genotype("pdarts", 3).to_json()
