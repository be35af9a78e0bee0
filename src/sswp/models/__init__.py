"""Discrete networks built from genotypes."""
