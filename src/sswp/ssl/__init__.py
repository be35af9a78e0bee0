"""Self-supervised objectives used as the search signal."""
