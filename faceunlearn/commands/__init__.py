"""The ``faceunlearn <word> ...`` commands, one module per command, apart from the library they drive.

Each module holds one command's argument parser and ``main(argv)`` (``faceunlearn.cli.COMMANDS``
maps the word to it): ``demo``, ``compare``, ``sweep``, ``tune``, ``reevaluate``, ``report``,
``figures``, ``prepare``, ``check_disjoint`` (``check-disjoint``), ``export``. They parse the
command line, call the library and print; the work itself is done in ``faceunlearn.data``,
``.methods``, ``.losses``, ``.metrics``, ``.callbacks``, ``.models``, ``.experiments``, ``.figures``,
``.prepare``, ``.check_disjoint``, ``.export``, ``.demo`` and ``.compare``. Importing a command
module is cheap: torch, Lightning, ONNX, OpenCV, insightface, Optuna and matplotlib are imported
only when its ``main`` runs. LightningCLI's ``fit``/``validate``/``test`` stay in ``faceunlearn.cli``.
"""
