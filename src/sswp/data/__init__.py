"""Datasets, the prepared artifact, class-balanced splits, augmentations and loaders."""
