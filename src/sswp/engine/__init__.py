"""Training loops and the run-time plumbing they share."""
