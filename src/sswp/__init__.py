"""SSWP-NAS: self-supervised, weight-preserving neural architecture search as a pipeline."""

__version__ = "0.2.0"
