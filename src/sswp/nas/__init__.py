"""The search space: candidate ops, binary-gated mixed edges, the supernet and genotypes."""
