"""The shipped configs, installed as ``faceunlearn.configs`` (faceunlearn/configs links to this folder; the wheel holds a copy), so
that ``importlib.resources.files("faceunlearn.configs")`` reads them from a wheel as from the repository, and any
``--config NAME`` finds them by name (``faceunlearn.io.shipped``)."""
