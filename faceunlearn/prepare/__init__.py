"""``faceunlearn prepare``: raw face datasets → the packed aligned format (``faceunlearn.data.packed``).

One job per module:

* ``datasets/``: one reader per raw layout (celeba, vggface2, cfp, ijbb, folder) → ``SourceRecords``
  (path, identity name, split, tag, 5 landmarks or a face box);
* ``annotations``: locating annotation files and parsing lines with ``file:line`` errors;
* ``plan``: final record order, the resume fingerprint, identity numbering;
* ``images`` (decode, with reasons for unusable files), ``detector`` (YuNet or an insightface ONNX
  detector; ``yunet``: the OpenCV YuNet wrapper), ``align`` (5-point ``norm_crop`` to 112×112),
  ``worker`` (all three, per batch, in a pool);
* ``run``: the streaming, resumable converter; ``job``: one run from the parsed options (the
  arguments themselves: ``faceunlearn.commands.prepare``).
"""

from faceunlearn.prepare.errors import PrepareError

__all__ = ["PrepareError"]
