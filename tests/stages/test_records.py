"""Metrics files hold numbers only; labels go to info.json."""

from __future__ import annotations

import math

from sswp.pipeline.records import split_record


def test_numbers_are_metrics_and_labels_are_info():
    record = {
        "test_acc": 0.5,
        "labels_used": 0,
        "seed": 1,
        "label_ratio": 0.1,
        "labelled_images": 72,
        "device": "cpu",
        "architecture": "final",
        "final": {"epoch": 3, "objective_acc": 0.2},
        "converged": True,
        "test_loss": math.nan,
    }
    metrics, info = split_record(record)
    assert metrics == {"test_acc": 0.5, "labels_used": 0}
    assert info == {k: v for k, v in record.items() if k not in metrics}
