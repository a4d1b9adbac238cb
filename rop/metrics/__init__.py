"""The figure catalogue: each figure of METRICS.md defined once, as data."""
