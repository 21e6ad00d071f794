"""FAISS gallery engine (``faceunlearn.metrics.index_search``) against the exact engine at 10⁶ gallery items.

    .venv/bin/python benchmarks/faiss_gallery.py [--gallery 1000000] [--queries 1000] [--no-write]

Data (seeded): d = 512 unit-norm float32 embeddings, identity centre + gaussian noise (as
``benchmarks/retrieval.py``'s clustered data), 10 gallery images per identity; each query is a
further image of a gallery identity. The FAISS indexes are filled chunk by chunk as the chunks
are drawn (the gallery never exists as one tensor there); the exact engine then gets the whole
gallery as one tensor, as it needs. Reported per engine: build time, search + metric time, the
process's resident memory growth from before the build to after the search, R@1, R@10, mAP@100 and, for the exact engine,
full mAP; recall of FAISS = R@k agreement, and |mAP@100 − exact mAP@100| (exact mAP@100 from
the flat index, which is exact). Writes its table into BENCHMARKS.md between
``<!-- faiss:begin -->`` and ``<!-- faiss:end -->``.
"""
from __future__ import annotations

import argparse
import datetime
import platform
import resource
import time
from pathlib import Path

import torch

from faceunlearn.metrics import retrieval_metrics
from faceunlearn.metrics.index_search import GalleryIndex, truncated_retrieval

SEED, DIM, PER_IDENTITY, NOISE, CHUNK = 0, 512, 10, 2.0, 100_000


def _resident_mb() -> float:
    """The process's resident memory now (not its peak: the engines run one after another here)."""
    return int(Path("/proc/self/statm").read_text().split()[1]) * resource.getpagesize() / 2**20


def _centres(identities: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(SEED)
    return torch.nn.functional.normalize(torch.randn(identities, DIM, generator=generator), dim=1)


def gallery_chunks(size: int):
    """(embeddings, labels, image ids) chunks of the gallery, drawn on the fly, seeded per chunk."""
    centres = _centres(size // PER_IDENTITY)
    for start in range(0, size, CHUNK):
        labels = torch.arange(start, min(start + CHUNK, size)) // PER_IDENTITY
        generator = torch.Generator().manual_seed(SEED + 1 + start)
        noise = torch.randn(len(labels), DIM, generator=generator) * (NOISE / DIM ** 0.5)
        yield torch.nn.functional.normalize(centres[labels] + noise, dim=1), labels, torch.arange(start, start + len(labels))


def training_sample(size: int, count: int) -> torch.Tensor:
    centres = _centres(size // PER_IDENTITY)
    generator = torch.Generator().manual_seed(SEED + 2 * 10**9)
    labels = torch.randint(0, size // PER_IDENTITY, (count,), generator=generator)
    return torch.nn.functional.normalize(centres[labels] + torch.randn(count, DIM, generator=generator) * (NOISE / DIM ** 0.5), dim=1)


def queries(size: int, count: int):
    centres = _centres(size // PER_IDENTITY)
    generator = torch.Generator().manual_seed(SEED + 10**9)
    labels = torch.randint(0, size // PER_IDENTITY, (count,), generator=generator)
    noise = torch.randn(count, DIM, generator=generator) * (NOISE / DIM ** 0.5)
    return torch.nn.functional.normalize(centres[labels] + noise, dim=1), labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gallery", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=1_000)
    parser.add_argument("--nlist", type=int, default=1024)
    parser.add_argument("--nprobe", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    query, query_labels = queries(args.gallery, args.queries)
    rows = []

    def faiss_row(name, kind, nprobe=None):
        before, start = _resident_mb(), time.perf_counter()
        index = GalleryIndex(DIM, kind=kind, nlist=args.nlist, nprobe=nprobe or 1, device="auto")
        if kind == "ivf":  # lists trained on images of identities drawn across the whole gallery
            index.train(training_sample(args.gallery, 64 * args.nlist))
        for embeddings, labels, ids in gallery_chunks(args.gallery):
            index.add(embeddings, labels, ids)
        built = time.perf_counter() - start
        start = time.perf_counter()
        metrics = truncated_retrieval(query, query_labels, index, k=100, ks=(1, 10))
        rows.append((name, built, time.perf_counter() - start, _resident_mb() - before, metrics))
        del index

    faiss_row("FAISS flat (exact top-100)", "flat")
    for nprobe in args.nprobe:
        faiss_row(f"FAISS IVF-Flat nlist {args.nlist}, nprobe {nprobe}", "ivf", nprobe)
    before, start = _resident_mb(), time.perf_counter()
    parts = list(gallery_chunks(args.gallery))
    gallery = torch.cat([p[0] for p in parts])
    labels = torch.cat([p[1] for p in parts])
    del parts
    built = time.perf_counter() - start
    start = time.perf_counter()
    exact = retrieval_metrics(query, query_labels, gallery, labels, ks=(1, 10))
    rows.append(("exact engine (full ranking; default)", built, time.perf_counter() - start, _resident_mb() - before, exact))

    reference = rows[0][4]
    device = "cuda " + torch.cuda.get_device_name() if torch.cuda.is_available() else f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    lines = [f"G = {args.gallery:,} gallery items (d = {DIM}, {PER_IDENTITY} per identity), Q = {args.queries:,} queries; "
             f"{device}, torch {torch.__version__}, {datetime.date.today()}.", "",
             "| engine | build s | search + metrics s | RSS growth MB | R@1 | R@10 | mAP@100 | full mAP | R@1 vs exact | mAP@100 − flat |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, built, searched, memory, metrics in rows:
        at100 = metrics.get("mAP@100", float("nan"))
        lines.append(f"| {name} | {built:.1f} | {searched:.1f} | {memory:,.0f} | {100 * metrics['R@1']:.2f} | {100 * metrics['R@10']:.2f} | "
                     f"{100 * at100:.2f} | {100 * metrics['mAP']:.2f} |" if "mAP" in metrics else
                     f"| {name} | {built:.1f} | {searched:.1f} | {memory:,.0f} | {100 * metrics['R@1']:.2f} | {100 * metrics['R@10']:.2f} | "
                     f"{100 * at100:.2f} | – |")
        lines[-1] += f" {100 * (metrics['R@1'] - exact['R@1']):+.2f} | " + (f"{100 * (at100 - reference['mAP@100']):+.3f} |" if at100 == at100 else "– |")
    table = "\n".join(lines)
    print(table)
    if not args.no_write:
        path = Path(__file__).resolve().parents[1] / "BENCHMARKS.md"
        text = path.read_text()
        block = f"<!-- faiss:begin -->\n{table}\n<!-- faiss:end -->"
        if "<!-- faiss:begin -->" in text:
            head, rest = text.split("<!-- faiss:begin -->", 1)
            text = head + block + rest.split("<!-- faiss:end -->", 1)[1]
        else:
            text += "\n## (e) Galleries past memory: FAISS index vs the exact engine\n\n" + block + "\n"
        path.write_text(text)


if __name__ == "__main__":
    main()
