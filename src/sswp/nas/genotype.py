"""Genotypes: the discrete architecture, its JSON format, validation and derivation.

A genotype holds one entry per cell (every cell has its own architecture in SSWP-NAS),
each with 8 (op, input) pairs: two incoming edges per intermediate node. Files are JSON,
parsed and validated, never evaluated.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from sswp.errors import SswpError
from sswp.nas.ops import CANDIDATE_OPS, PARAMETRIC, POOL_INDICES, SHORT_NAMES, SKIP_INDEX

STEPS = 4
EDGES_PER_CELL = sum(2 + i for i in range(STEPS))
FORMAT_VERSION = 1


def edge_index(node: int, source: int) -> int:
    """Index of the edge from state `source` into intermediate node `node` (0-based)."""
    return sum(2 + i for i in range(node)) + source


def reduction_cells(layers: int) -> tuple[int, ...]:
    return (layers // 3, 2 * layers // 3)


@dataclass(frozen=True)
class CellGenotype:
    reduction: bool
    edges: tuple[tuple[str, int], ...]

    def node_edges(self, node: int) -> tuple[tuple[str, int], tuple[str, int]]:
        return self.edges[2 * node], self.edges[2 * node + 1]

    def short(self) -> str:
        nodes = (
            "+".join(f"{SHORT_NAMES[op]}@{src}" for op, src in self.node_edges(n))
            for n in range(STEPS)
        )
        return ("R" if self.reduction else "N") + "[" + " ".join(nodes) + "]"


@dataclass(frozen=True)
class Genotype:
    cells: tuple[CellGenotype, ...]

    @property
    def layers(self) -> int:
        return len(self.cells)

    def short(self) -> str:
        """One-line form for tables, e.g. `N[sep3@0+skip@1 ...] R[...]`."""
        return " ".join(cell.short() for cell in self.cells)

    def kept_ops(self) -> list[tuple[int, int, int]]:
        """(cell, edge index, op index) of every edge the genotype keeps, 8 per cell."""
        return [
            (c, edge_index(k // 2, src), CANDIDATE_OPS.index(op))
            for c, cell in enumerate(self.cells)
            for k, (op, src) in enumerate(cell.edges)
        ]

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT_VERSION,
            "ops": list(CANDIDATE_OPS),
            "cells": [
                {"reduction": c.reduction, "edges": [[op, src] for op, src in c.edges]}
                for c in self.cells
            ],
        }

    def save(self, path: str | Path) -> None:
        from sswp.pipeline import atomic

        atomic.write_json(path, self.to_json())

    @classmethod
    def from_json(cls, data: Any, source: str = "genotype") -> Genotype:
        return parse_genotype(data, source)

    @classmethod
    def load(cls, path: str | Path) -> Genotype:
        path = Path(path)
        if not path.is_file():
            raise SswpError(f"genotype file {path} not found; run the search stage first")
        try:
            data = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise SswpError(f"{path} is not valid JSON ({exc}); rerun the search stage") from exc
        return parse_genotype(data, str(path))


def parse_genotype(data: Any, source: str) -> Genotype:
    """Validate the JSON structure fully before building anything from it."""
    if not isinstance(data, dict) or not isinstance(data.get("cells"), list) or not data["cells"]:
        raise SswpError(f"{source}: a genotype is an object with a non-empty 'cells' list")
    layers = len(data["cells"])
    expected_reductions = set(reduction_cells(layers))
    cells = []
    for i, cell in enumerate(data["cells"]):
        where = f"{source}: cell {i}"
        if not isinstance(cell, dict) or not isinstance(cell.get("edges"), list):
            raise SswpError(f"{where} must be an object with 'reduction' and 'edges'")
        if cell.get("reduction") is not (i in expected_reductions):
            raise SswpError(
                f"{where}: 'reduction' must be {i in expected_reductions} for {layers} cells "
                f"(reduction cells are {sorted(expected_reductions)})"
            )
        edges = cell["edges"]
        if len(edges) != 2 * STEPS:
            raise SswpError(f"{where} has {len(edges)} edges; a cell needs {2 * STEPS}")
        parsed = []
        for k, edge in enumerate(edges):
            node = k // 2
            if (
                not isinstance(edge, list)
                or len(edge) != 2
                or not isinstance(edge[0], str)
                or not isinstance(edge[1], int)
                or isinstance(edge[1], bool)
            ):
                raise SswpError(f"{where} edge {k}: expected [op_name, input_index], got {edge!r}")
            op, src = edge
            if op not in CANDIDATE_OPS:
                raise SswpError(
                    f"{where} edge {k}: unknown op {op!r}; use one of {', '.join(CANDIDATE_OPS)}"
                )
            if not 0 <= src < 2 + node:
                raise SswpError(
                    f"{where} edge {k}: input {src} out of range for node {node} (0..{node + 1})"
                )
            parsed.append((op, src))
        cells.append(CellGenotype(reduction=i in expected_reductions, edges=tuple(parsed)))
    return Genotype(cells=tuple(cells))


def _derive_cell(
    probs: torch.Tensor, reduction: bool, max_skips: int, max_pools: int
) -> CellGenotype:
    """Keep the 2 strongest incoming edges per node, then enforce the skip/pool limits.

    An excess skip (or pool), weakest first, is replaced by the best parametric op on an
    edge of the same node that is not kept (the replaced edge itself counts as free).
    """
    best_prob, best_op = probs.max(dim=1)
    chosen: list[list[Any]] = []  # [node, source, op_index, prob]
    for node in range(STEPS):
        candidates = [
            (float(best_prob[edge_index(node, s)]), s, int(best_op[edge_index(node, s)]))
            for s in range(2 + node)
        ]
        candidates.sort(key=lambda c: (-c[0], c[1]))
        for prob, src, op in sorted(candidates[:2], key=lambda c: c[1]):
            chosen.append([node, src, op, prob])

    def enforce(limit: int, matches: tuple[int, ...]) -> None:
        offenders = sorted((c for c in chosen if c[2] in matches), key=lambda c: c[3])
        for entry in offenders[: max(0, len(offenders) - limit)]:
            node = entry[0]
            taken = {c[1] for c in chosen if c[0] == node and c is not entry}
            best: tuple[float, int, int] | None = None
            for src in range(2 + node):
                if src in taken:
                    continue
                row = probs[edge_index(node, src)]
                for op in PARAMETRIC:
                    cand = (float(row[op]), src, op)
                    if best is None or cand[0] > best[0]:
                        best = cand
            assert best is not None  # the entry's own edge is always free
            entry[3], entry[1], entry[2] = best

    enforce(max_skips, (SKIP_INDEX,))
    enforce(max_pools, POOL_INDICES)
    edges: list[tuple[str, int]] = []
    for node in range(STEPS):
        node_entries = sorted((c for c in chosen if c[0] == node), key=lambda c: c[1])
        edges.extend((CANDIDATE_OPS[c[2]], c[1]) for c in node_entries)
    return CellGenotype(reduction=reduction, edges=tuple(edges))


def derive_genotype(alphas: list[torch.Tensor], max_skips: int = 2, max_pools: int = 2) -> Genotype:
    """Final prune: one CellGenotype per cell from that cell's (14, 7) architecture logits."""
    layers = len(alphas)
    reductions = set(reduction_cells(layers))
    cells = tuple(
        _derive_cell(
            torch.softmax(a.detach().float().cpu(), dim=-1), i in reductions, max_skips, max_pools
        )
        for i, a in enumerate(alphas)
    )
    return Genotype(cells=cells)
