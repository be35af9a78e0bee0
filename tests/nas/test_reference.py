"""Reference genotypes: the published cells, expanded over this project's layers."""

from __future__ import annotations

import pytest

from sswp.nas.genotype import Genotype, reduction_cells
from sswp.nas.reference import DARTS_V2, PDARTS, REFERENCES, reference_genotype


@pytest.mark.parametrize("name", sorted(REFERENCES))
@pytest.mark.parametrize("layers", [5, 8, 20])
def test_reference_repeats_its_normal_and_reduction_cells(name, layers):
    genotype = reference_genotype(name, layers)
    normal, reduction = REFERENCES[name]
    assert genotype.layers == layers
    for i, cell in enumerate(genotype.cells):
        is_reduction = i in reduction_cells(layers)
        assert cell.reduction == is_reduction
        assert cell.edges == (reduction if is_reduction else normal)
    # It passes the same validation as a searched genotype read from disk.
    assert Genotype.from_json(genotype.to_json()) == genotype


def test_darts_v2_and_pdarts_differ_and_keep_two_inputs_per_node():
    assert DARTS_V2 != PDARTS
    for cells in (DARTS_V2, PDARTS):
        for cell in cells:
            assert len(cell) == 8
            for k, (_, source) in enumerate(cell):
                assert 0 <= source < 2 + k // 2  # node k//2 sees the 2 inputs and earlier nodes
