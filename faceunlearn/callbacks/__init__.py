"""Callbacks: cross-cutting concerns wired into the Lightning Trainer."""

from faceunlearn.callbacks.retrieval_evaluation import DEFAULT_BENCHMARKS, RetrievalEvaluation

__all__ = ["DEFAULT_BENCHMARKS", "RetrievalEvaluation"]
