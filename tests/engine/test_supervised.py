"""Label smoothing: it shapes the training loss (main and auxiliary), never the test loss."""

import copy
import dataclasses
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from sswp.config.load import load_params
from sswp.engine.checkpoint import Checkpointer
from sswp.engine.distributed import DistContext
from sswp.engine.hardware import Hardware
from sswp.engine.interrupt import StopFlag
from sswp.engine.supervised import SupervisedLoop, training_loss
from sswp.models.child import ChildNetwork
from sswp.nas.genotype import derive_genotype

IMAGENET_PARAMS = Path(__file__).parents[2] / "params" / "imagenet.yaml"


def smoothed_ce(logits: torch.Tensor, labels: torch.Tensor, eps: float) -> float:
    """(1 - eps) * NLL + eps * mean over classes of -log p, averaged over the batch."""
    total = 0.0
    for row, label in zip(logits.tolist(), labels.tolist(), strict=True):
        lse = math.log(sum(math.exp(z) for z in row))
        neg_log_p = [lse - z for z in row]
        total += (1 - eps) * neg_log_p[label] + eps * sum(neg_log_p) / len(row)
    return total / len(labels)


@pytest.fixture
def sp():
    """The ImageNet training recipe: label smoothing 0.1, auxiliary weight 0.4."""
    return load_params(IMAGENET_PARAMS).train


def test_smoothed_ce_of_known_logits():
    logits, labels = torch.tensor([[2.0, 0.0, -1.0]]), torch.tensor([0])
    lse = math.log(math.exp(2) + 1 + math.exp(-1))
    nll, uniform = lse - 2, ((lse - 2) + lse + (lse + 1)) / 3
    assert smoothed_ce(logits, labels, 0.1) == pytest.approx(0.9 * nll + 0.1 * uniform)


def test_training_loss_smooths_main_and_auxiliary_heads(sp):
    torch.manual_seed(0)
    logits, aux, labels = torch.randn(6, 5), torch.randn(6, 5), torch.randint(0, 5, (6,))
    eps, weight = sp.label_smoothing, sp.auxiliary_weight
    assert (eps, weight) == (0.1, 0.4)
    expected = smoothed_ce(logits, labels, eps) + weight * smoothed_ce(aux, labels, eps)
    assert training_loss(logits, aux, labels, sp).item() == pytest.approx(expected, rel=1e-6)
    assert training_loss(logits, None, labels, sp).item() == pytest.approx(
        smoothed_ce(logits, labels, eps), rel=1e-6
    )
    plain = dataclasses.replace(sp, label_smoothing=0.0, auxiliary_weight=0.0)
    assert training_loss(logits, aux, labels, plain).item() == pytest.approx(
        F.cross_entropy(logits, labels).item(), rel=1e-6
    )
    assert smoothed_ce(logits, labels, eps) != pytest.approx(smoothed_ce(logits, labels, 0.0))


def test_loop_trains_on_the_smoothed_loss_and_tests_on_plain_cross_entropy(sp, one_batch):
    torch.manual_seed(0)
    params = load_params(IMAGENET_PARAMS)
    runtime = dataclasses.replace(params.runtime, progress="never")
    sp = dataclasses.replace(sp, epochs=1)
    genotype = derive_genotype([torch.randn(14, 7) for _ in range(3)])
    model = ChildNetwork(genotype, channels=4, num_classes=3, auxiliary=True, stem="imagenet")
    with torch.no_grad():  # confident logits, so that smoothing visibly changes the loss
        model.classifier.weight.mul_(100)
    train = (torch.randn(4, 3, 32, 32), torch.tensor([0, 1, 2, 0]))
    test = (torch.randn(4, 3, 32, 32), torch.tensor([2, 1, 0, 1]))
    before = copy.deepcopy(model).train()
    with torch.no_grad():
        logits, aux = before(train[0])
    hw = Hardware(torch.device("cpu"), DistContext(), channels_last=False)
    loop = SupervisedLoop(model, one_batch(*train), one_batch(*test), sp, runtime, hw, "smooth")
    metrics = loop.run_epoch(0, StopFlag(), Checkpointer("smooth", {}))

    assert aux is not None
    expected_train = smoothed_ce(logits, train[1], 0.1) + 0.4 * smoothed_ce(aux, train[1], 0.1)
    assert metrics["train_loss"] == pytest.approx(expected_train, rel=1e-5)
    with torch.no_grad():
        test_logits, _ = model.eval()(test[0])
    assert metrics["test_loss"] == pytest.approx(smoothed_ce(test_logits, test[1], 0.0), rel=1e-5)
    assert metrics["test_loss"] != pytest.approx(smoothed_ce(test_logits, test[1], 0.1), rel=1e-4)


class _NullLogger:
    def log_epoch(self, epoch, metrics):
        pass


def test_run_reports_the_final_and_the_best_test_accuracy_over_epochs(
    sp, tmp_path, monkeypatch, one_batch
):
    monkeypatch.chdir(tmp_path)
    torch.manual_seed(0)
    params = load_params(IMAGENET_PARAMS)
    runtime = dataclasses.replace(params.runtime, progress="never")
    sp = dataclasses.replace(sp, epochs=4, warmup_epochs=0, lr=0.5, auxiliary_weight=0.0)
    genotype = derive_genotype([torch.randn(14, 7) for _ in range(3)])
    model = ChildNetwork(genotype, channels=4, num_classes=3, auxiliary=False, stem="imagenet")
    train = (torch.randn(6, 3, 32, 32), torch.tensor([0, 1, 2, 0, 1, 2]))
    test = (torch.randn(6, 3, 32, 32), torch.tensor([2, 1, 0, 1, 0, 2]))
    hw = Hardware(torch.device("cpu"), DistContext(), channels_last=False)
    loop = SupervisedLoop(model, one_batch(*train), one_batch(*test), sp, runtime, hw, "best")
    metrics = loop.run(_NullLogger(), Checkpointer("best", {}), StopFlag())
    accs = [epoch["test_acc"] for epoch in loop.history]
    assert len(accs) == 4
    assert metrics["test_acc"] == accs[-1]
    assert metrics["best_test_acc"] == max(accs)
