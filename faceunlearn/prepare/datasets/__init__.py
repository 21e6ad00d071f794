"""One reader per raw dataset layout; each turns a dataset root into ``SourceRecords``.

A reader module has ``NAME``, ``HELP``, ``LAYOUT`` (the expected files, shown in errors),
``add_arguments(parser)`` for its own options and ``read(root, args) -> SourceRecords``. Its
docstring lists exactly which files and columns it reads and which split/tag each image gets.
"""

from faceunlearn.prepare.datasets import celeba, cfp, folder, ijbb, vggface2

READERS = {module.NAME: module for module in (celeba, vggface2, cfp, ijbb, folder)}

__all__ = ["READERS"]
