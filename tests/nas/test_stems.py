"""The cifar and imagenet stems: channel plans, feature-map strides, and the saved search space."""

import dataclasses
from pathlib import Path

import pytest
import torch

from sswp.config.load import load_params
from sswp.nas.ops import FactorizedReduce
from sswp.nas.supernet import SuperNet, cell_channels, make_stem, search_space

IMAGENET_PARAMS = Path(__file__).parents[2] / "params" / "imagenet.yaml"


def test_cifar_plan_starts_from_3c_at_full_resolution():
    plan = cell_channels(6, 4, "cifar")
    assert plan[0] == (12, 12, 4, False, False)
    assert plan == cell_channels(6, 4)  # cifar is the default
    assert [p[3] for p in plan] == [False, False, True, False, True, False]
    assert plan[3] == (16, 32, 8, False, True)


def test_imagenet_plan_starts_from_c_with_a_reduced_s0():
    plan = cell_channels(6, 4, "imagenet")
    assert plan[0] == (4, 4, 4, False, True)  # preprocess0 is a FactorizedReduce
    assert plan[1] == (4, 16, 4, False, False)
    assert plan[2] == (16, 16, 8, True, False)
    assert [p[2] for p in plan] == [4, 4, 8, 8, 16, 16]


def test_unknown_stem_is_rejected():
    with pytest.raises(ValueError, match="unknown stem"):
        cell_channels(6, 4, "mnist")
    with pytest.raises(ValueError, match="unknown stem"):
        SuperNet(3, 4, stem="mnist")


@pytest.mark.parametrize("size", [32, 64])
def test_imagenet_stem_has_stride_8_and_feeds_s0_at_stride_4(size):
    s0, s1 = make_stem("imagenet", 8, affine=False)(torch.randn(2, 3, size, size))
    assert s0.shape == (2, 8, size // 4, size // 4)
    assert s1.shape == (2, 8, size // 8, size // 8)
    c0, c1 = make_stem("cifar", 8, affine=False)(torch.randn(2, 3, size, size))
    assert c0 is c1 and c0.shape == (2, 24, size, size)


@pytest.mark.parametrize("size", [32, 64])
def test_imagenet_supernet_runs_on_tiny_inputs_at_stride_8(size):
    torch.manual_seed(0)
    net = SuperNet(layers=6, channels=4, stem="imagenet")
    net.sample_paths(torch.Generator().manual_seed(0))
    x = torch.randn(2, 3, size, size)
    s0, s1 = net.stem(x)
    sizes = []
    for cell in net.cells:
        s0, s1 = s1, cell(s0, s1)
        sizes.append(s1.shape[-1])
    first = size // 8
    assert sizes == [first, first, first // 2, first // 2, first // 4, first // 4]
    assert net(x).shape == (2, 128)
    assert net.features(x).shape == (2, net.feature_dim) and net.feature_dim == 4 * 16


def test_search_space_records_the_stem():
    cifar, imagenet = search_space(6, 4), search_space(6, 4, "imagenet")
    assert cifar["stem"] == "cifar" and imagenet["stem"] == "imagenet"
    assert cifar != imagenet
    assert {k: v for k, v in cifar.items() if k != "stem"} == {
        k: v for k, v in imagenet.items() if k != "stem"
    }
    assert set(cifar) == {"layers", "channels", "ops", "stem"}


def test_imagenet_params_build_their_supernet_at_tiny_scale():
    params = load_params(IMAGENET_PARAMS)
    sp = params.search
    assert (sp.stem, sp.layers, sp.channels) == ("imagenet", 14, 48)
    assert params.train.label_smoothing == pytest.approx(0.1)
    tiny = dataclasses.replace(sp, layers=3, channels=4)
    net = SuperNet(tiny.layers, tiny.channels, tiny.gate_mode, stem=tiny.stem)
    assert isinstance(net.cells[0].preprocess0, FactorizedReduce)
    net.sample_paths(torch.Generator().manual_seed(0))
    assert net(torch.randn(2, 3, 32, 32)).shape == (2, 128)
    assert search_space(tiny.layers, tiny.channels, tiny.stem)["stem"] == "imagenet"
