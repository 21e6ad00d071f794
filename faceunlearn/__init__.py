"""faceunlearn: face identity unlearning for retrieval via embedding dispersion (arXiv 2512.13317).

Layout: ``models`` (IResNet, CosFace head), ``losses`` (pure objectives), ``methods`` (one
LightningModule per unlearning method), ``data`` (packed faces, synthetic faces, splits, samplers,
DataModule), ``metrics`` (pure retrieval metrics), ``callbacks`` (evaluation wiring), ``cli`` (the
``faceunlearn`` command, LightningCLI), ``commands`` (one module per ``faceunlearn <word>`` command),
``workflow`` (``faceunlearn.unlearn`` and ``faceunlearn.audit_models``: the one-call path for your own model).
"""

__version__ = "0.1.0"

#: the Python API, imported on first use (``import faceunlearn`` stays light)
_API = {"unlearn": "faceunlearn.workflow.run", "UnlearnResult": "faceunlearn.workflow.run",
        "UnlearnInputError": "faceunlearn.workflow.inputs", "audit_models": "faceunlearn.workflow.pair"}
__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name in _API:
        import importlib

        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'faceunlearn' has no attribute {name!r}")
