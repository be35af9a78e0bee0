"""Published reference architectures, trainable in place of a searched one.

DARTS-V2 and P-DARTS share one normal and one reduction cell across the network; here they
are expanded to this project's per-cell genotype, so the same child network, training
recipe and report handle them. Each cell is 8 (op, input) pairs, two per intermediate node.
"""

from __future__ import annotations

from sswp.nas.genotype import CellGenotype, Genotype, reduction_cells

Cell = tuple[tuple[str, int], ...]

# DARTS (second order), Liu et al. 2019, the CIFAR-10 cells.
DARTS_V2: tuple[Cell, Cell] = (
    (
        ("sep_conv_3x3", 0),
        ("sep_conv_3x3", 1),
        ("sep_conv_3x3", 0),
        ("sep_conv_3x3", 1),
        ("sep_conv_3x3", 1),
        ("skip_connect", 0),
        ("skip_connect", 0),
        ("dil_conv_3x3", 2),
    ),
    (
        ("max_pool_3x3", 0),
        ("max_pool_3x3", 1),
        ("skip_connect", 2),
        ("max_pool_3x3", 1),
        ("max_pool_3x3", 0),
        ("skip_connect", 2),
        ("skip_connect", 2),
        ("max_pool_3x3", 1),
    ),
)

# P-DARTS, Chen et al. 2019, the CIFAR-10 cells.
PDARTS: tuple[Cell, Cell] = (
    (
        ("skip_connect", 0),
        ("dil_conv_3x3", 1),
        ("skip_connect", 0),
        ("sep_conv_3x3", 1),
        ("sep_conv_3x3", 1),
        ("sep_conv_3x3", 3),
        ("sep_conv_3x3", 0),
        ("dil_conv_5x5", 4),
    ),
    (
        ("avg_pool_3x3", 0),
        ("sep_conv_5x5", 1),
        ("sep_conv_3x3", 0),
        ("dil_conv_5x5", 2),
        ("max_pool_3x3", 0),
        ("dil_conv_3x3", 1),
        ("dil_conv_3x3", 1),
        ("dil_conv_5x5", 3),
    ),
)

REFERENCES: dict[str, tuple[Cell, Cell]] = {"darts_v2": DARTS_V2, "pdarts": PDARTS}
DISPLAY_NAMES = {"darts_v2": "DARTS-V2", "pdarts": "P-DARTS"}


def reference_genotype(name: str, layers: int) -> Genotype:
    """The named reference architecture with `layers` cells (reductions at L//3 and 2L//3)."""
    normal, reduction = REFERENCES[name]
    reductions = set(reduction_cells(layers))
    return Genotype(
        tuple(
            CellGenotype(i in reductions, reduction if i in reductions else normal)
            for i in range(layers)
        )
    )
