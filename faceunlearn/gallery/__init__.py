"""Galleries: a pack of faces embedded by any recognizer, written as arrays or a FAISS index (``faceunlearn embed``).

Re-enrolling a gallery with the unlearned model is what closes the old-gallery leak the audit measures
(``stale_gallery``): a gallery the Original embedded still finds the forgotten people.
"""
from faceunlearn.gallery.embed import Gallery, embed_pack, write_gallery

__all__ = ["Gallery", "embed_pack", "write_gallery"]
