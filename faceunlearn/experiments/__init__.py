"""Experiments over many runs: ``faceunlearn sweep`` (methods × forget sets, resumable) and
``faceunlearn report`` (the paper's tables, mean ± std over forget sets). The run-folder contract
between them is in ``faceunlearn.experiments.layout``; the tables are in ``tables``."""
