"""Embed every face of a pack with any model (ONNX, insightface ``.pth``, faceunlearn ``.ckpt``, ``sface``) and
write the gallery: ``.npz`` (``embeddings`` float32 [N, D], L2-normalised; ``labels``: person names; ``ids``:
the pack's image ids) or ``.faiss`` (an inner-product ``IndexIDMap2`` over the same unit vectors, ids = image ids,
with ``<file>.labels.npz`` beside it holding ``labels`` and ``ids``). Outputs appear atomically."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from faceunlearn.data.packed import PackedFaces
from faceunlearn.disjoint.check import embed_rows, identity_names
from faceunlearn.disjoint.embedders import make_embedder
from faceunlearn.io.atomic import atomic_path

FORMATS = (".npz", ".faiss")


@dataclass
class Gallery:
    embeddings: np.ndarray  # float32 [N, D], unit rows
    labels: np.ndarray  # str [N]: the person of each image (the pack's identity names)
    ids: np.ndarray  # int64 [N]: the pack's image ids


def embed_pack(model: str, pack: str | Path, backbone: str | None = None, embedding_size: int | None = None,
               device: str = "cpu", batch_size: int = 64) -> Gallery:
    """Every image of the pack at ``pack`` through ``model`` (see ``faceunlearn.disjoint.embedders.make_embedder``)."""
    packed = PackedFaces.open(pack)
    rows = np.arange(len(packed))
    embed = make_embedder(str(model), backbone, embedding_size, device)
    with torch.inference_mode():
        vectors = F.normalize(embed_rows(packed, rows, embed, batch_size).float(), dim=1)
    names = np.asarray(identity_names(packed, packed.identities[rows]), dtype=str)
    return Gallery(vectors.numpy().astype(np.float32), names, np.asarray(packed.image_ids[rows], dtype=np.int64))


def write_gallery(gallery: Gallery, out: str | Path) -> list[Path]:
    """Write ``gallery`` to ``out`` (``.npz`` or ``.faiss``, module doc); returns the files written."""
    out = Path(out)
    if out.suffix not in FORMATS:
        raise ValueError(f"--out {out}: write a .npz (arrays) or a .faiss (index) file")
    if out.suffix == ".npz":
        with atomic_path(out) as temporary:
            np.savez(temporary, embeddings=gallery.embeddings, labels=gallery.labels, ids=gallery.ids)
        return [out]
    import faiss

    index = faiss.IndexIDMap2(faiss.IndexFlatIP(gallery.embeddings.shape[1]))
    index.add_with_ids(np.ascontiguousarray(gallery.embeddings), gallery.ids)
    sidecar = out.with_name(out.name + ".labels.npz")
    with atomic_path(sidecar) as temporary:
        np.savez(temporary, labels=gallery.labels, ids=gallery.ids)
    with atomic_path(out) as temporary:
        faiss.write_index(index, str(temporary))
    return [out, sidecar]
