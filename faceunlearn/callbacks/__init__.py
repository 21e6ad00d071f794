"""Callbacks: cross-cutting concerns wired into the Lightning Trainer, one each.

* ``RetrievalEvaluation``: evaluates the benchmarks (step 0 and every validation) and logs them;
* ``RunFiles``: records a fit's evaluations as run files (history.csv, embedding snapshots, t-SNE);
* ``WeightSpaceDiagnostics``: the weight distance to the start model, and forget retrieval at the weight midpoint.
"""

from faceunlearn.callbacks.retrieval_evaluation import DEFAULT_BENCHMARKS, RetrievalEvaluation
from faceunlearn.callbacks.run_files import RunFiles
from faceunlearn.callbacks.weight_space import WeightSpaceDiagnostics

__all__ = ["DEFAULT_BENCHMARKS", "RetrievalEvaluation", "RunFiles", "WeightSpaceDiagnostics"]
