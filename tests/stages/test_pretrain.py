"""Which images the two-stage baseline pre-trains on."""

from __future__ import annotations

import dataclasses

import numpy as np

from sswp.data.splits import Splits
from sswp.stages.pretrain import pretrain_images


def test_pretrain_reads_all_images_but_the_validation_split_or_the_search_weight_half(
    tiny_params,
):
    splits = Splits(np.array([0, 3, 4]), np.array([1, 5]), np.array([2], dtype=np.int64))
    every = dataclasses.replace(
        tiny_params, pretrain=dataclasses.replace(tiny_params.pretrain, images="all")
    )
    assert pretrain_images(every, 6, splits).tolist() == [0, 1, 3, 4, 5]
    original = dataclasses.replace(
        tiny_params, pretrain=dataclasses.replace(tiny_params.pretrain, images="search_weights")
    )
    assert pretrain_images(original, 6, splits).tolist() == [0, 3, 4]
