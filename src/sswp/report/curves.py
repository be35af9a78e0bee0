"""One run's per-epoch history as a learning curve: whether it still rose at its end, and how
many optimiser steps it took to come near its final accuracy.

Test accuracy is measured only every few epochs (and always on the last), so a curve keeps
None for the epochs that were not evaluated; train accuracy is known for every epoch."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

# A run "still rises" when an accuracy gained more than this many points over its last tenth.
RISE_POINTS = 1.0

# The share of the final accuracy whose first crossing says how soon a run got there.
NEAR_FINAL = 0.9


@dataclass(frozen=True)
class Curve:
    """Per-epoch accuracies (fractions) of one run; `steps` are cumulative optimiser steps at
    each epoch's end (None when the history does not record them)."""

    train_acc: tuple[float, ...]
    test_acc: tuple[float | None, ...]
    steps: tuple[int, ...] | None = None

    @property
    def epochs(self) -> int:
        return len(self.train_acc)

    @property
    def final_test_acc(self) -> float:
        return self.test_acc[-1] or 0.0  # the last epoch is always evaluated


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _fraction(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 1


def curve_from_history(history: Any, need_steps: bool) -> Curve:
    """Parse history.json's epoch list; ValueError says what is wrong in one line.

    Every epoch needs train_acc in [0, 1]; test_acc is optional except on the last epoch,
    and in [0, 1] where present; `step` (with `need_steps`) is a non-decreasing count.
    """
    if not isinstance(history, list) or not history:
        raise ValueError("the history is not a non-empty list of epochs")
    for i, epoch in enumerate(history, 1):
        if not isinstance(epoch, dict):
            raise ValueError(f"epoch {i} is not an object")
        if not _fraction(epoch.get("train_acc")):
            raise ValueError(f"epoch {i} has no train_acc in [0, 1]")
        if "test_acc" in epoch and not _fraction(epoch["test_acc"]):
            raise ValueError(f"epoch {i} has test_acc = {epoch['test_acc']!r}, not in [0, 1]")
    if "test_acc" not in history[-1]:
        raise ValueError(f"the last epoch ({len(history)}) has no test_acc")
    steps = None
    if need_steps:
        steps = tuple(epoch.get("step") for epoch in history)
        counts = all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in steps)
        if not counts or any(b < a for a, b in zip(steps, steps[1:], strict=False)):
            raise ValueError("its epochs lack a non-decreasing step count (cumulative steps)")
    return Curve(
        train_acc=tuple(float(e["train_acc"]) for e in history),
        test_acc=tuple(float(e["test_acc"]) if "test_acc" in e else None for e in history),
        steps=steps,
    )


def end_window(epochs: int) -> int:
    """The last tenth of a run's epochs, at least one: max(1, ceil(epochs / 10))."""
    return max(1, -(-epochs // 10))


def end_rise(values: Sequence[float | None]) -> float | None:
    """Points an accuracy gained over the last tenth of the epochs: the last evaluated value
    minus the last one evaluated before that window; None when none was evaluated before it."""
    before = [v for v in values[: len(values) - end_window(len(values))] if v is not None]
    after = [v for v in values if v is not None]
    if not before or not after:
        return None
    return round(100 * (after[-1] - before[-1]), 6)


def still_rising(values: Sequence[float | None]) -> bool:
    """Whether an accuracy rose by more than RISE_POINTS over the last tenth of the epochs.

    A run with no value before that window (one epoch, or tests only at the end) cannot show
    that it settled, and counts as still rising.
    """
    rise = end_rise(values)
    return rise is None or rise > RISE_POINTS


def converged(curve: Curve) -> bool:
    """Neither train nor test accuracy still rose at the end of the run."""
    return not (still_rising(curve.train_acc) or still_rising(curve.test_acc))


def steps_to_near_final(curve: Curve, share: float = NEAR_FINAL) -> int:
    """Optimiser steps at the first evaluated epoch whose test accuracy reached `share` of the
    run's final test accuracy: where a head start shows, whatever the final numbers."""
    if curve.steps is None:
        raise ValueError("the history records no steps")
    target = share * curve.final_test_acc - 1e-12  # 0.9 * 0.8 is 0.7200000000000001
    pairs = zip(curve.test_acc, curve.steps, strict=True)
    return next((s for acc, s in pairs if acc is not None and acc >= target), curve.steps[-1])


@dataclass(frozen=True)
class SslCurve:
    """The label-free measure after each epoch of a self-supervised run: the objective's
    steps so far, and its held-out loss and accuracy."""

    steps: tuple[float, ...]
    loss: tuple[float, ...]
    acc: tuple[float, ...]


SSL_KEYS = ("ssl_steps", "val_ssl_loss", "val_ssl_acc")


def ssl_curve_from_history(history: Any) -> SslCurve | None:
    """The measure from a search's or pre-training's history.json; None where the run took
    none (no validation split, or an objective that reads labels)."""
    if not isinstance(history, list) or not history:
        raise ValueError("holds no epochs")
    if not all(isinstance(epoch, dict) for epoch in history):
        raise ValueError("is not a list of per-epoch objects")
    if all("val_ssl_loss" not in epoch for epoch in history):
        return None
    for epoch in history:
        for key in SSL_KEYS:
            if not _number(epoch.get(key)):
                raise ValueError(f"{key} = {epoch.get(key)!r} is not a finite number")
    steps, loss, acc = (tuple(float(epoch[key]) for epoch in history) for key in SSL_KEYS)
    return SslCurve(steps, loss, acc)
