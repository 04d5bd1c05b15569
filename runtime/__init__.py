"""specc runtime: the container entrypoint that runs a built-in trainer from a runtime config.

Importing this package is cheap; trainers import their frameworks lazily.
"""
