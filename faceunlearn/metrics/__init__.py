"""Evaluation metrics for face identity unlearning (pure functions on torch tensors)."""
from .centroids import centroid_accuracy, head_accuracy
from .compactness import cluster_compactness
from .retrieval import retrieval_metrics

__all__ = ["retrieval_metrics", "cluster_compactness", "centroid_accuracy", "head_accuracy"]
