"""The one-call path for your own recognizer: ``unlearn`` (``faceunlearn unlearn``) and ``audit_models``
(``faceunlearn audit --before A --after B``), on folders of photos per person. They compose the library's own
steps — ``prepare``, ``disjoint``, ``experiments.sweep``, ``audit``, ``export``, ``audit.purge`` — and add the
input checks (``inputs``), the content-hashed packs (``packs``) and the one-page report (``report``)."""
