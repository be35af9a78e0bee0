"""Learning curves from history.json: the convergence mark both ways, steps to 90 % of the
final accuracy, and the history checks."""

from __future__ import annotations

import pytest

from sswp.report import curves


def _epochs(train, test, steps=None) -> list[dict]:
    out = []
    for i, (tr, te) in enumerate(zip(train, test, strict=True)):
        epoch = {"train_acc": tr, "train_loss": 1.0, "lr": 0.1}
        if te is not None:
            epoch |= {"test_acc": te, "test_loss": 1.0}
        if steps is not None:
            epoch["step"] = steps[i]
        out.append(epoch)
    return out


@pytest.mark.parametrize(("epochs", "window"), [(1, 1), (9, 1), (10, 1), (11, 2), (30, 3), (40, 4)])
def test_end_window_is_the_last_tenth_rounded_up(epochs, window):
    assert curves.end_window(epochs) == window


def test_a_run_still_rising_at_its_end_is_not_converged():
    # 20 epochs: the window is the last 2; test accuracy 0.70 at epoch 18, 0.75 at 20.
    test = [None] * 17 + [0.70, None, 0.75]
    curve = curves.Curve(train_acc=(0.99,) * 20, test_acc=tuple(test))
    assert curves.end_rise(curve.test_acc) == 5.0
    assert curves.still_rising(curve.test_acc)
    assert not curves.converged(curve)


def test_a_flat_end_is_converged_and_train_accuracy_counts_too():
    test = (0.5, 0.7, 0.80, 0.805)  # +0.5 point over the last epoch
    flat = curves.Curve(train_acc=(0.5, 0.9, 0.95, 0.95), test_acc=test)
    assert curves.end_rise(flat.test_acc) == 0.5
    assert curves.converged(flat)
    rising_train = curves.Curve(train_acc=(0.5, 0.9, 0.95, 0.97), test_acc=test)
    assert curves.end_rise(rising_train.train_acc) == 2.0
    assert not curves.converged(rising_train)


def test_a_fall_or_exactly_one_point_is_not_a_rise():
    assert not curves.still_rising([0.5, 0.8, 0.81])
    assert not curves.still_rising([0.5, 0.8, 0.6])
    assert curves.still_rising([0.5, 0.8, 0.8101])


def test_no_value_before_the_window_counts_as_still_rising():
    assert curves.end_rise([0.9]) is None
    assert curves.still_rising([0.9])
    assert curves.still_rising([None, None, 0.9])  # tested only in the last epoch of 3


def test_steps_to_ninety_percent_of_the_final_accuracy():
    # Final 0.8, so the target is 0.72: first met at the epoch ending at step 30.
    curve = curves.curve_from_history(
        _epochs([0.5] * 4, [0.5, 0.72, 0.9, 0.8], steps=[10, 30, 50, 70]), need_steps=True
    )
    assert curves.steps_to_near_final(curve) == 30
    gaps = curves.curve_from_history(
        _epochs([0.5] * 4, [0.2, None, None, 0.8], steps=[5, 10, 15, 20]), need_steps=True
    )
    assert curves.steps_to_near_final(gaps) == 20
    with pytest.raises(ValueError, match="no steps"):
        curves.steps_to_near_final(curves.Curve((0.5,), (0.5,)))


def test_history_parses_unevaluated_epochs_as_none():
    curve = curves.curve_from_history(
        _epochs([0.4, 0.6], [None, 0.7], steps=[3, 6]), need_steps=True
    )
    assert curve == curves.Curve(train_acc=(0.4, 0.6), test_acc=(None, 0.7), steps=(3, 6))
    assert curves.curve_from_history(_epochs([0.4], [0.7]), need_steps=False).steps is None


@pytest.mark.parametrize(
    ("history", "message"),
    [
        ([], "is not a non-empty list of epochs"),
        ({"test_acc": 0.5}, "is not a non-empty list of epochs"),
        ([1.0], "epoch 1 is not an object"),
        ([{"test_acc": 0.5}], "epoch 1 has no train_acc in"),
        (_epochs([0.5, 0.5], [1.5, 0.5]), r"epoch 1 has test_acc = 1.5, not in \[0, 1\]"),
        (_epochs([0.5, 0.5], [0.5, None]), r"the last epoch \(2\) has no test_acc"),
        (_epochs([0.5, 0.5], [0.5, 0.5]), "lack a non-decreasing step count"),
        (_epochs([0.5, 0.5], [0.5, 0.5], steps=[4, 2]), "lack a non-decreasing step count"),
        (_epochs([0.5], [0.5], steps=[1.5]), "lack a non-decreasing step count"),
    ],
)
def test_bad_histories_are_named(history, message):
    with pytest.raises(ValueError, match=message):
        curves.curve_from_history(history, need_steps=True)
