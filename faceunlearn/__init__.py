"""faceunlearn: face identity unlearning for retrieval via embedding dispersion (arXiv 2512.13317).

Layout: ``models`` (IResNet, CosFace head), ``losses`` (pure objectives), ``methods`` (one
LightningModule per unlearning method), ``data`` (packed faces, synthetic faces, splits, samplers,
DataModule), ``metrics`` (pure retrieval metrics), ``callbacks`` (evaluation wiring), ``cli`` (the
``faceunlearn`` command, LightningCLI), ``commands`` (one module per ``faceunlearn <word>`` command).
"""

__version__ = "0.1.0"
