"""The arguments of ``faceunlearn check-disjoint`` (shared by the command and by ``faceunlearn unlearn``'s check)."""

from __future__ import annotations

import argparse


def build_parser() -> argparse.ArgumentParser:
    import torch  # the --device default; torch is imported only when the command runs

    from faceunlearn.disjoint.check import DEFAULT_CALIBRATION_REPORT, DEFAULT_REPORT, DEFAULT_THRESHOLD

    parser = argparse.ArgumentParser(
        prog="faceunlearn check-disjoint",
        description="Check that forget identities are disjoint from distractor/holdout identities (SPEC §5).",
    )
    forget = parser.add_argument_group("forget set (same draw as FaceDataModule)")
    forget.add_argument("--config", help="training config: its data section gives root, extra_sources, seed, num_forget_identities")
    forget.add_argument("--forget-data", help="packed dataset ([LABEL=]PATH) the forget identities come from (its train split)")
    forget.add_argument("--seed", type=int, help="forget-set seed (data.seed; default 0)")
    forget.add_argument("--num-forget", type=int, help="number of forget identities (default 10)")
    forget.add_argument("--forget-identities", type=lambda entry: int(entry) if entry.lstrip("-").isdigit() else entry, nargs="+",
                        help="explicit forget identities (ids, or names from the pack's identity_names) instead of a draw")
    others = parser.add_argument_group("identities to check against")
    others.add_argument("--against", nargs="+", help="packed datasets, [LABEL=]PATH (default: the forget dataset and the config's extra_sources)")
    others.add_argument("--splits", nargs="+", help="their splits (default: holdout distractor; with --calibrate: all)")
    model = parser.add_argument_group("reference model")
    model.add_argument("--model", required=True, help="faceunlearn .ckpt, insightface backbone.pth, an ONNX recognizer (.onnx), or 'sface'")
    model.add_argument("--backbone", help="architecture of a .pth/.ckpt (default: from the file)")
    model.add_argument("--embedding-size", type=int, help="embedding dimension (default: from the file)")
    model.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="cpu or cuda (default: cuda if available)")
    model.add_argument("--batch-size", type=int, default=256, help="images per forward pass")
    report = parser.add_argument_group("report")
    report.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD, help=f"fail above this centroid cosine (default {DEFAULT_THRESHOLD})")
    report.add_argument("--top-k", type=int, default=5, help="nearest other identities per forget identity in the CSV (default 5)")
    report.add_argument("--show", type=int, default=10, help="pairs printed, highest cosine first (default 10)")
    report.add_argument("--report", help=f"CSV report path (default {DEFAULT_REPORT}; with --calibrate: JSON, {DEFAULT_CALIBRATION_REPORT})")
    calibrate = parser.add_argument_group("calibration (--calibrate: measure a threshold for --model instead of checking)")
    calibrate.add_argument("--calibrate", action="store_true", help="measure same-/different-person centroid cosines on --packs")
    calibrate.add_argument("--packs", nargs="+", help="packed datasets with right identity labels, [LABEL=]PATH")
    calibrate.add_argument("--repeats", type=int, default=5, help="seeded half splits per identity (default 5; --seed is the first seed)")
    calibrate.add_argument("--max-false-match", type=float, default=0.01, help="false-match budget of the threshold rule (default 0.01)")
    calibrate.add_argument("--figure", help="write the histograms to this PNG")
    return parser
