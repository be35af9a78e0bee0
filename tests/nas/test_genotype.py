"""Derivation of genotypes from alphas, the skip/pool restriction, and the JSON format."""

import json

import pytest
import torch

from sswp.errors import SswpError
from sswp.nas.genotype import Genotype, derive_genotype, edge_index
from sswp.nas.ops import CANDIDATE_OPS

SKIP, MAX, AVG, SEP3, SEP5, DIL3, DIL5 = range(7)


def _alphas(choices: dict[tuple[int, int], tuple[int, float]], extra=None) -> torch.Tensor:
    """Cell logits: edge (node, src) -> (op, logit); everything else 0."""
    a = torch.zeros(14, 7)
    for (node, src), (op, logit) in choices.items():
        a[edge_index(node, src), op] = logit
    for (node, src, op), logit in (extra or {}).items():
        a[edge_index(node, src), op] = logit
    return a


def test_keeps_two_strongest_edges_per_node_with_their_argmax_op():
    a = _alphas(
        {
            (0, 0): (SEP3, 3.0),
            (0, 1): (DIL3, 2.0),
            (1, 0): (SEP5, 1.0),
            (1, 1): (SEP3, 4.0),
            (1, 2): (DIL5, 3.0),
            (2, 3): (SEP3, 5.0),
            (2, 0): (DIL3, 4.5),
            (2, 1): (SEP5, 0.5),
            (3, 4): (DIL5, 2.0),
            (3, 2): (SEP3, 2.5),
            (3, 0): (SEP3, 1.0),
        }
    )
    cell = derive_genotype([a, a, a]).cells[0]
    assert cell.edges == (
        ("sep_conv_3x3", 0),
        ("dil_conv_3x3", 1),
        ("sep_conv_3x3", 1),
        ("dil_conv_5x5", 2),
        ("dil_conv_3x3", 0),
        ("sep_conv_3x3", 3),
        ("sep_conv_3x3", 2),
        ("dil_conv_5x5", 4),
    )


def test_excess_skips_are_replaced_weakest_first_by_best_free_parametric_op():
    # Skips win on 4 kept edges; the two weakest (node 2 src 1 and node 3 src 0) must go.
    a = _alphas(
        {
            (0, 0): (SKIP, 5.0),
            (0, 1): (SEP3, 4.0),
            (1, 0): (SKIP, 4.5),
            (1, 1): (SEP5, 4.0),
            (2, 1): (SKIP, 3.0),
            (2, 0): (SEP3, 4.0),
            (3, 0): (SKIP, 2.0),
            (3, 1): (DIL3, 4.0),
        },
        extra={
            (2, 2, DIL5): 1.5,
            (2, 3, SEP5): 1.0,
            (2, 1, SEP3): 0.5,  # best free in node 2: (2, dil5)
            (3, 4, SEP5): 0.2,
            (3, 0, DIL3): 1.8,  # best free in node 3: its own edge, dil3
        },
    )
    cell = derive_genotype([a, a, a], max_skips=2).cells[0]
    assert cell.edges[:4] == (
        ("skip_connect", 0),
        ("sep_conv_3x3", 1),
        ("skip_connect", 0),
        ("sep_conv_5x5", 1),
    )
    assert cell.edges[4:6] == (("sep_conv_3x3", 0), ("dil_conv_5x5", 2))
    assert cell.edges[6:] == (("dil_conv_3x3", 0), ("dil_conv_3x3", 1))
    assert [op for op, _ in cell.edges].count("skip_connect") == 2


def test_excess_pools_count_max_and_avg_together():
    a = _alphas(
        {
            (0, 0): (MAX, 5.0),
            (0, 1): (AVG, 4.0),
            (1, 0): (MAX, 3.0),
            (1, 1): (SEP3, 6.0),
        },
        extra={(1, 2, SEP5): 2.0},
    )
    cell = derive_genotype([a, a, a], max_pools=2).cells[0]
    assert cell.edges[:2] == (("max_pool_3x3", 0), ("avg_pool_3x3", 1))
    assert cell.edges[2:4] == (("sep_conv_3x3", 1), ("sep_conv_5x5", 2))


def test_restriction_off_keeps_argmax():
    a = _alphas(
        {(0, 0): (SKIP, 5.0), (0, 1): (SKIP, 5.0), (1, 0): (SKIP, 5.0), (1, 1): (SKIP, 5.0)}
    )
    cell = derive_genotype([a, a, a], max_skips=99).cells[0]
    assert [op for op, _ in cell.edges[:4]] == ["skip_connect"] * 4


def test_reduction_flags_follow_layers():
    geno = derive_genotype([torch.randn(14, 7) for _ in range(6)])
    assert [c.reduction for c in geno.cells] == [False, False, True, False, True, False]


def test_json_round_trip_and_short_form(tmp_path):
    geno = derive_genotype([torch.randn(14, 7) for _ in range(5)])
    path = tmp_path / "g.json"
    geno.save(path)
    assert Genotype.load(path) == geno
    assert geno.short().count("[") == 5


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["cells"][0]["edges"].__setitem__(0, ["conv_9x9", 0]), "unknown op"),
        (lambda d: d["cells"].pop(), "reduction"),
        (lambda d: d["cells"][0]["edges"].pop(), "needs 8"),
        (lambda d: d["cells"][1]["edges"].__setitem__(1, ["skip_connect", 7]), "out of range"),
        (lambda d: d.pop("cells"), "non-empty 'cells'"),
    ],
)
def test_malformed_genotypes_are_rejected_clearly(tmp_path, mutate, message):
    data = derive_genotype([torch.randn(14, 7) for _ in range(6)]).to_json()
    mutate(data)
    path = tmp_path / "g.json"
    path.write_text(json.dumps(data))
    with pytest.raises(SswpError, match=message):
        Genotype.load(path)


def test_non_json_genotype_is_rejected(tmp_path):
    path = tmp_path / "g.json"
    path.write_text("__import__('os').system('true')")
    with pytest.raises(SswpError, match="not valid JSON"):
        Genotype.load(path)


def test_ops_order_is_the_papers():
    assert CANDIDATE_OPS[:3] == ("skip_connect", "max_pool_3x3", "avg_pool_3x3")
