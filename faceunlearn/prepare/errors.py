"""The one error type of ``faceunlearn prepare``: its message is printed as is, without a traceback."""


class PrepareError(RuntimeError):
    """A raw dataset, an argument or an output folder is not as expected; the message says what to do."""
