"""SSWP-NAS: self-supervised, weight-preserving neural architecture search as a pipeline."""

__version__ = "0.1.0"
