"""``faceunlearn export``: a backbone as an insightface-loadable ONNX model (``faceunlearn.export``)."""

from __future__ import annotations

import argparse


def main(argv: list[str] | None = None) -> None:
    # torch and the models: only when the command runs
    from faceunlearn.export import DEFAULT_OPSET, ExportError, export_onnx
    from faceunlearn.models.iresnet import BACKBONE_NAMES
    from faceunlearn.models.onnx_backbone import OnnxModelError
    from faceunlearn.models.weights import CheckpointMismatchError

    parser = argparse.ArgumentParser(
        prog="faceunlearn export",
        description="Export a backbone to ONNX for insightface (model_zoo.get_model → ArcFaceONNX).",
    )
    parser.add_argument("--model", "--ckpt", dest="ckpt", required=True,
                        help="faceunlearn .ckpt or insightface backbone.pth (--ckpt: the old name)")
    parser.add_argument("--out", required=True, help="output .onnx file")
    parser.add_argument("--backbone", choices=BACKBONE_NAMES, help="architecture (default: from the checkpoint)")
    parser.add_argument("--embedding-size", type=int, help="embedding dimension (default: from the checkpoint)")
    parser.add_argument("--opset", type=int, default=DEFAULT_OPSET, help=f"ONNX opset (default {DEFAULT_OPSET})")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    args = parser.parse_args(argv)
    try:
        result = export_onnx(args.ckpt, args.out, args.backbone, args.embedding_size, args.opset, args.overwrite)
    except (FileNotFoundError, FileExistsError, ValueError, CheckpointMismatchError, ExportError, OnnxModelError) as error:
        raise SystemExit(f"faceunlearn export: error: {error}") from None
    check = result.get("check", "insightface ArcFaceONNX.get_feat")
    print(
        f"wrote {result['path']}: {result['backbone']}, {result['embedding_size']}-d embedding, opset "
        f"{result['opset']}; {check} vs PyTorch: min cosine {result['min_cosine']:.6f}"
    )


if __name__ == "__main__":
    main()
