"""Compile stage: one small unit per output kind, each a pure `build(...) -> dict`."""
