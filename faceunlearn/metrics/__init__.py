"""Evaluation metrics for face identity unlearning (pure functions: tensors in, numbers out).

- ``retrieval``: exact full-ranking mAP and CMC R@k by chunked rank counting (base and
  distractor-extended galleries in one pass);
- ``neighbours``: FAISS top-k neighbour lists and search-based R@k;
- ``index_search``: galleries past memory in a FAISS index (flat/IVF, GPU, sharded), filled in
  chunks: R@k and the truncated mAP@k (imports FAISS: ``from faceunlearn.metrics.index_search import ...``);
- ``streaming``: the FAISS evaluation engine (``evaluation.engine: faiss``): galleries streamed into indexes
  while they are embedded, sharded over DDP processes;
- ``chance``: the exact mAP and R@k of a random ranking of a benchmark's composition;
- ``verification``: 1:1 TAR at FAR (exact, chunked radix selection);
- ``compactness``: Cluster Compactness (paper Eq. 10), closed form;
- ``benchmarks``: benchmarks as configuration (queries, gallery, distractors, clusters) → all metrics;
- ``centroids``: nearest-centroid accuracy (normalised-mean centroids, CosFace-head centroids).
"""
from .centroids import centroid_accuracy, head_accuracy
from .chance import chance_retrieval
from .verification import tar_at_far
from .compactness import cluster_compactness
from .retrieval import retrieval_metrics, retrieval_metrics_extended
from .benchmarks import Benchmark, evaluate_benchmarks



def __getattr__(name: str):
    """``nearest_neighbours`` and ``cmc_recall`` import FAISS: only when asked for (``fit`` never needs it)."""
    if name in ("nearest_neighbours", "cmc_recall"):
        from . import neighbours

        return getattr(neighbours, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "retrieval_metrics",
    "retrieval_metrics_extended",
    "cluster_compactness",
    "chance_retrieval",
    "tar_at_far",
    "centroid_accuracy",
    "head_accuracy",
    "nearest_neighbours",
    "cmc_recall",
    "Benchmark",
    "evaluate_benchmarks",
]
