"""The CPU fast paths of the candidate ops compute what the plain torch modules compute."""

import pytest
import torch
from torch import nn

from sswp.nas.cpu_fast_paths import (
    Activation,
    BatchNorm2d,
    PhaseConv2d,
    ReLUFirst,
    concat_channels,
    run_op,
)
from sswp.nas.ops import CANDIDATE_OPS, FactorizedReduce, make_op


@pytest.mark.parametrize("kernel", [3, 5])
@pytest.mark.parametrize("size", [8, 9])
@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last])
def test_phase_conv_equals_the_dilated_strided_conv(kernel, size, memory_format):
    torch.manual_seed(0)
    phase = PhaseConv2d(4, 4, kernel, 2, kernel - 1, dilation=2, groups=4, bias=False)
    plain = nn.Conv2d(4, 4, kernel, 2, kernel - 1, dilation=2, groups=4, bias=False)
    plain.load_state_dict(phase.state_dict())
    x = torch.randn(3, 4, size, size).contiguous(memory_format=memory_format)
    xs = [x.clone().requires_grad_(True) for _ in range(2)]
    out, expected = phase(xs[0]), plain(xs[1])
    torch.testing.assert_close(out, expected)
    grad = torch.randn_like(out)
    out.backward(grad)
    expected.backward(grad)
    torch.testing.assert_close(xs[0].grad, xs[1].grad)
    assert xs[0].grad.is_contiguous(memory_format=memory_format)  # no layout mix backward
    torch.testing.assert_close(phase.weight.grad, plain.weight.grad)


def test_phase_conv_keeps_the_plain_path_where_other_phases_are_read():
    conv = PhaseConv2d(4, 4, 3, 1, 2, dilation=2, groups=4, bias=False)
    x = torch.randn(2, 4, 8, 8)
    torch.testing.assert_close(conv(x), nn.functional.conv2d(x, conv.weight, None, 1, 2, 2, 4))


@pytest.mark.parametrize("name", CANDIDATE_OPS)
@pytest.mark.parametrize("stride", [1, 2])
def test_an_op_on_a_shared_relu_equals_the_op_alone(name, stride):
    torch.manual_seed(0)
    op = make_op(name, 4, stride, affine=False)
    x = torch.randn(2, 4, 8, 8, requires_grad=True)
    state = Activation(x)
    shared = [run_op(op, state), run_op(op, state)]
    alone = op(x)
    assert all(torch.equal(out, alone) for out in shared)
    if isinstance(op, ReLUFirst):
        assert state.relu() is state.relu()  # computed once for both readers


@pytest.mark.parametrize("size", [8, 9])
@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last])
def test_factorized_reduce_on_phases_equals_the_padded_shift(memory_format, size):
    torch.manual_seed(0)
    reduce = FactorizedReduce(6, 8, affine=False)
    x = torch.randn(3, 6, size, size).contiguous(memory_format=memory_format)
    xs = [x.clone().requires_grad_(True) for _ in range(2)]
    out = reduce(xs[0])
    # DARTS' stride-2 convs, on contiguous input: on channels_last, oneDNN's AVX2 backward
    # of this conv corrupts the heap (docs/known-issues.md).
    y = torch.relu(xs[1]).contiguous()
    shifted = nn.functional.pad(y[:, :, 1:, 1:], (0, 1, 0, 1))
    expected = reduce.bn(torch.cat([reduce.conv_1(y), reduce.conv_2(shifted)], dim=1))
    torch.testing.assert_close(out, expected)
    grad = torch.randn_like(out)
    out.backward(grad)
    expected.backward(grad)
    torch.testing.assert_close(xs[0].grad, xs[1].grad)
    assert xs[0].grad.is_contiguous(memory_format=memory_format)


def test_channel_concat_equals_cat_and_hands_gradients_back_in_each_inputs_format():
    torch.manual_seed(0)
    xs = [
        torch.randn(2, c, 4, 4).contiguous(memory_format=torch.channels_last).requires_grad_(True)
        for c in (3, 5)
    ]
    out = concat_channels(xs)
    assert torch.equal(out, torch.cat(xs, dim=1))
    grad = torch.randn_like(out)
    out.backward(grad)
    for x, expected in zip(xs, grad.split([3, 5], dim=1), strict=True):
        assert torch.equal(x.grad, expected)
        assert x.grad.is_contiguous(memory_format=torch.channels_last)


@pytest.mark.parametrize("affine", [False, True])
@pytest.mark.parametrize("momentum", [0.1, None])
def test_few_channel_batch_norm_equals_torchs_and_keeps_channels_last(affine, momentum):
    torch.manual_seed(0)
    ours = BatchNorm2d(8, affine=affine, momentum=momentum)
    plain = nn.BatchNorm2d(8, affine=affine, momentum=momentum)
    if affine:
        with torch.no_grad():
            ours.weight.uniform_(0.5, 1.5)
            ours.bias.uniform_(-1, 1)
    plain.load_state_dict(ours.state_dict())
    for _ in range(2):  # twice: the running statistics and the batch count move alike
        x = torch.randn(4, 8, 6, 6).contiguous(memory_format=torch.channels_last)
        xs = [x.clone().requires_grad_(True) for _ in range(2)]
        out, expected = ours(xs[0]), plain(xs[1])
        torch.testing.assert_close(out, expected)
        assert out.is_contiguous(memory_format=torch.channels_last)
        grad = torch.randn_like(out)
        out.backward(grad)
        expected.backward(grad)
        torch.testing.assert_close(xs[0].grad, xs[1].grad)
        assert xs[0].grad.is_contiguous(memory_format=torch.channels_last)
    for key, value in plain.state_dict().items():
        torch.testing.assert_close(ours.state_dict()[key], value)
    if affine:
        torch.testing.assert_close(ours.weight.grad, plain.weight.grad)
        torch.testing.assert_close(ours.bias.grad, plain.bias.grad)


def test_a_shared_relu_first_taken_without_grad_is_retaken_with_it():
    x = torch.randn(2, 4, 3, 3, requires_grad=True)
    state = Activation(x)
    with torch.no_grad():
        assert not state.relu().requires_grad
    out = state.relu()
    assert out.requires_grad
    out.sum().backward()
    assert torch.equal(x.grad, (x > 0).float())
