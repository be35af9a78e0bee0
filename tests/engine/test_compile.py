"""runtime.compile: a compiled child trains like the eager one, resumes exactly, and keeps
its checkpoint keys; drop path's ramp never recompiles it.

Compiled and eager kernels sum in different orders, so they agree to a tolerance (float32:
1e-4 relative on the weights after two SGD steps), not bit for bit; a compiled run is
bit-for-bit repeatable on CPU, which the resume test checks.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
from torch._dynamo.utils import counters

from sswp.config.params import Params
from sswp.engine.checkpoint import Checkpointer
from sswp.engine.distributed import DistContext
from sswp.engine.hardware import Hardware
from sswp.engine.interrupt import StopFlag
from sswp.engine.supervised import SupervisedLoop
from sswp.models.child import ChildNetwork
from sswp.nas.reference import reference_genotype


class NullLogger:
    def log_epoch(self, epoch, metrics):
        pass


def _child() -> ChildNetwork:
    torch.manual_seed(0)
    return ChildNetwork(reference_genotype("pdarts", 1), 2, 3, auxiliary=True)


def _loop(
    model: ChildNetwork, params: Params, compile_mode: str, epochs: int, one_batch
) -> SupervisedLoop:
    generator = torch.Generator().manual_seed(1)
    images = torch.randn(8, 3, 8, 8, generator=generator)
    labels = torch.randint(0, 3, (8,), generator=generator)
    hw = Hardware(torch.device("cpu"), DistContext(), channels_last=False, compile=compile_mode)
    sp = dataclasses.replace(params.train, epochs=epochs, warmup_epochs=0, lr=0.1)
    runtime = dataclasses.replace(params.runtime, progress="never")
    batch = one_batch(images, labels)
    return SupervisedLoop(model, batch, batch, sp, runtime, hw, "compile")


def test_compiled_child_trains_like_eager_and_resumes_exactly(
    tiny_params, tmp_path, monkeypatch, one_batch, scalar_inductor
):
    monkeypatch.chdir(tmp_path)
    eager_model, compiled_model = _child(), _child()
    eager = _loop(eager_model, tiny_params, "off", 2, one_batch).run(
        NullLogger(), Checkpointer("eager", {}), StopFlag()
    )
    compiled_loop = _loop(compiled_model, tiny_params, "default", 2, one_batch)
    assert compiled_loop.forward_module is not compiled_model  # it is compiled
    compiled = compiled_loop.run(NullLogger(), Checkpointer("whole", {}), StopFlag())
    assert compiled["test_loss"] == pytest.approx(eager["test_loss"], rel=1e-4)
    compiled_state = compiled_model.state_dict()
    for name, value in eager_model.state_dict().items():
        torch.testing.assert_close(compiled_state[name], value, rtol=1e-4, atol=1e-5, msg=name)

    # One epoch, a checkpoint, then a fresh process-like start that resumes the second.
    first = _loop(_child(), tiny_params, "default", 2, one_batch)
    checkpointer = Checkpointer("resumed", {})
    first.history.append(first.run_epoch(0, StopFlag(), checkpointer))
    checkpointer.save(first.state_dict(1, 0))
    saved = checkpointer.load()
    assert saved is not None and saved["model"].keys() == compiled_model.state_dict().keys()
    resumed_model = _child()
    with torch.no_grad():
        for p in resumed_model.parameters():
            p.add_(1.0)  # the checkpoint, not the init, decides
    _loop(resumed_model, tiny_params, "default", 2, one_batch).run(
        NullLogger(), checkpointer, StopFlag()
    )
    resumed_state = resumed_model.state_dict()
    for name, value in compiled_state.items():
        assert torch.equal(resumed_state[name], value), name


def test_drop_path_ramp_does_not_recompile():
    model = _child().train()
    compiled = torch.compile(model, backend="eager", dynamic=False)
    x = torch.randn(4, 3, 8, 8)
    counters.clear()
    for prob in (0.1, 0.2, 0.3):
        model.drop_path_prob = prob
        with torch.no_grad():
            compiled(x)
    assert counters["stats"]["unique_graphs"] == 1
    assert model.drop_path_prob == 0.3 and model.drop_keep.item() == pytest.approx(0.7)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_max_autotune_trains_with_cuda_graphs_like_eager(
    tiny_params, tmp_path, monkeypatch, one_batch
):
    """On a GPU, max-autotune captures the static-shaped steps in CUDA graphs. TF32 and
    autotuned kernels change the sums, so the tolerance is wider than on CPU."""
    monkeypatch.chdir(tmp_path)
    states = {}
    for mode in ("off", "max-autotune"):
        model = _child().cuda()
        loop = _loop(model, tiny_params, mode, 2, one_batch)
        loop.hw = dataclasses.replace(loop.hw, device=torch.device("cuda"))
        loop.train_loader.batch = tuple(t.cuda() for t in loop.train_loader.batch)
        counters.clear()
        loop.run(NullLogger(), Checkpointer(mode, {}), StopFlag())
        if mode != "off":
            assert counters["inductor"]["cudagraph_skips"] == 0
        states[mode] = model.state_dict()
    for name, value in states["off"].items():
        torch.testing.assert_close(states["max-autotune"][name], value, rtol=1e-2, atol=1e-3)
