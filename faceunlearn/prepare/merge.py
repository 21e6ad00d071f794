"""``faceunlearn prepare merge``: several packs → one pack the DataModule reads.

The DataModule reads one packed folder, and the paper's protocols combine datasets: CelebA
training identities, CFP-FP and VGGFace2-test holdout identities, IJB-B distractors. Merging
copies the images (in chunks, through the memory-mapped writer), renumbers identities so that
every identity with training images comes first (0..num_classes-1, the CosFace classes) followed by
holdout and then distractor identities, and gives images new ids 0..N-1 in input order.
Identities are never merged across packs: names become ``<source>/<name>`` ("celeba/2880",
"cfp/001"), where <source> is the pack's ``meta.json`` source (or its folder name when two packs
share a source). ``meta.json`` lists the inputs and where each one's images start.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from tqdm import tqdm

from faceunlearn.data.packed import SPLITS, PackedDatasetError, PackedFaces, PackedFacesWriter, split_code
from faceunlearn.prepare.errors import PrepareError
from faceunlearn.prepare.plan import PackIndex, counts
from faceunlearn.prepare.run import SOURCE_LIST


def merge_packs(out: str | os.PathLike, sources: list[str | os.PathLike], chunk_size: int = 4096, progress: bool = True) -> PackedFaces:
    out = Path(out)
    if out.exists():
        raise PrepareError(f"{out} already exists; refusing to overwrite it. Choose another --out or delete it.")
    resolved = [Path(source).resolve() for source in sources]
    repeated = sorted({str(path) for path in resolved if resolved.count(path) > 1})
    if repeated:
        raise PrepareError(f"merge: {', '.join(repeated)} given more than once")
    try:
        packs = [PackedFaces.open(source) for source in sources]
    except PackedDatasetError as error:
        raise PrepareError(str(error)) from None
    prefixes = _prefixes(packs)
    # identity key = (pack, old id); new ids ordered by the key's first split, then pack, then old id
    keys, names = [], []
    for number, pack in enumerate(packs):
        old_ids = np.unique(pack.identities)
        first_split = np.full(int(old_ids.max()) + 1 if len(old_ids) else 0, len(SPLITS), dtype=np.int64)
        np.minimum.at(first_split, pack.identities, pack.splits.astype(np.int64))
        old_names = pack.meta.get("identity_names")
        for old in old_ids.tolist():
            keys.append((int(first_split[old]), number, old))
            name = old_names[old] if old_names is not None and old < len(old_names) else str(old)
            names.append(f"{prefixes[number]}/{name}")
    order = sorted(range(len(keys)), key=keys.__getitem__)
    lookups = [np.zeros(int(pack.identities.max()) + 1 if len(pack) else 0, dtype=np.int64) for pack in packs]
    for position, i in enumerate(order):
        _, number, old = keys[i]
        lookups[number][old] = position
    identities = np.concatenate([lookup[pack.identities] for lookup, pack in zip(lookups, packs)])
    splits = np.concatenate([pack.splits for pack in packs])
    tags = np.concatenate([pack.tags for pack in packs])
    total = int(sum(len(pack) for pack in packs))
    train = identities[splits == split_code("train")]
    index = PackIndex(np.arange(total, dtype=np.int64), identities, splits, tags, [names[i] for i in order], int(train.max()) + 1 if len(train) else 0)

    writer = PackedFacesWriter(out, total)
    inputs, offset = [], 0
    with tqdm(total=total, unit="img", desc="merge", disable=not progress) as bar:
        for number, pack in enumerate(packs):
            for start in range(0, len(pack), chunk_size):
                block = np.asarray(pack.images[start : start + chunk_size])
                writer.write(offset + start, block)
                bar.update(len(block))
            inputs.append({"root": str(pack.root.resolve()), "source": prefixes[number], "first_image_id": offset, "num_images": len(pack)})
            offset += len(pack)
    with open(writer.partial / SOURCE_LIST, "w", encoding="utf-8") as listing:
        for number, pack in enumerate(packs):
            path = pack.root / SOURCE_LIST
            lines = path.read_text(encoding="utf-8").splitlines() if path.is_file() else [f"image_id {i}" for i in pack.image_ids]
            listing.writelines(f"{prefixes[number]}:{line}\n" for line in lines)
    meta = {
        "source": "merged",
        "num_classes": index.num_classes,
        "identity_names": index.identity_names,
        "counts": counts(index),
        "merged_from": inputs,
    }
    return writer.commit(index.image_ids, index.identities, index.splits, index.tags, meta)


def _prefixes(packs: list[PackedFaces]) -> list[str]:
    sources = [str(pack.meta.get("source", pack.root.name)) for pack in packs]
    return [source if sources.count(source) == 1 else pack.root.name for source, pack in zip(sources, packs)]
