"""``faceunlearn embed``: a gallery (a folder of photos per person, or a pack) embedded by any model — e.g. re-enrolled
with the unlearned model, so that no gallery the Original embedded keeps finding the forgotten people.

    faceunlearn embed --model out/model.onnx --root photos/gallery --out gallery.npz          # detect + align (YuNet)
    faceunlearn embed --model sface --root aligned/ --aligned --out gallery.faiss             # already 112x112 crops
    faceunlearn embed --model run/checkpoints/last.ckpt --pack $FACEUNLEARN_DATA/orl --out orl.npz

A folder is packed first exactly as ``faceunlearn prepare folder`` does (one sub-folder per person; faces
detected and aligned with ``--detector``, default ``yunet``, or taken as aligned with ``--aligned``), into a
temporary folder removed afterwards: no crop stays behind. ``.npz``: ``embeddings`` (float32, L2-normalised),
``labels`` (person folder names), ``ids``; ``.faiss``: an inner-product index with ``<out>.labels.npz``.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="faceunlearn embed", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n", 1)[1])
    parser.add_argument("--model", required=True, help="an .onnx recognizer, `sface`, an insightface .pth (with --backbone) or a .ckpt")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--root", help="a folder with one sub-folder of photos per person")
    source.add_argument("--pack", help="a faceunlearn pack (faceunlearn prepare's output)")
    parser.add_argument("--out", required=True, help="FILE.npz (arrays) or FILE.faiss (index)")
    parser.add_argument("--aligned", action="store_true", help="--root holds aligned 112x112 crops: no detection")
    parser.add_argument("--detector", default="yunet", help="face detector for --root (default yunet; or an .onnx path)")
    parser.add_argument("--backbone", help="the IResNet of an insightface .pth (iresnet50, ...)")
    parser.add_argument("--embedding-size", type=int, help="its embedding size (default 512)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--device", default="cpu")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    if Path(args.out).suffix not in (".npz", ".faiss"):
        sys.exit(f"faceunlearn embed: error: --out {args.out}: write a .npz (arrays) or a .faiss (index) file")
    from faceunlearn.disjoint.embedders import InputError
    from faceunlearn.gallery import embed_pack, write_gallery
    from faceunlearn.prepare.errors import PrepareError

    try:
        with tempfile.TemporaryDirectory(prefix="faceunlearn-embed-") as scratch:
            pack = args.pack
            if args.root is not None:
                from faceunlearn.prepare.arguments import build_parser as prepare_parser
                from faceunlearn.prepare.job import prepare

                words = ["folder", "--root", args.root, "--out", str(Path(scratch) / "pack"), "--split", "holdout", "--no-progress"]
                words += ["--aligned"] if args.aligned else ["--detector", args.detector]
                summary = prepare(prepare_parser().parse_args(words))
                print("\n".join(summary.lines()))
                pack = str(Path(scratch) / "pack")
            gallery = embed_pack(args.model, pack, args.backbone, args.embedding_size, args.device, args.batch_size)
        written = write_gallery(gallery, args.out)
    except (InputError, PrepareError, FileNotFoundError, ValueError) as error:
        sys.exit(f"faceunlearn embed: error: {error}")
    people = len(set(gallery.labels.tolist()))
    print(f"[embed] {len(gallery.ids)} faces of {people} people, {gallery.embeddings.shape[1]}-d, by {args.model}: "
          + ", ".join(map(str, written)))


if __name__ == "__main__":
    main()
