"""faceunlearn purge: every copy of the forget identities' embeddings found and removed, nothing else touched."""

import json

import numpy as np
import pytest
import torch

from faceunlearn import runfiles
from faceunlearn.commands.purge import main
from faceunlearn.data.packed import PackedFaces
from faceunlearn.purge import forget_data_files, purge, purge_pack


def _run(tmp_path):
    run = tmp_path / "sweep/demo_disp/seed0"
    run.mkdir(parents=True)
    (run / "done.json").write_text(json.dumps({"forget_identities": [0, 1]}))
    (run / "history.csv").write_text("step,benchmark,metric,value\n0,forget,mAP,0.5\n")
    for step in (0, 4):
        runfiles.save_snapshot(runfiles.snapshot_path(run, step), {
            "forget": {"embeddings": torch.randn(4, 3), "labels": torch.tensor([0, 0, 1, 1]), "image_ids": torch.arange(4)},
            "mixed": {"embeddings": torch.randn(3, 3), "labels": torch.tensor([1, 5, 6]), "image_ids": torch.tensor([3, 9, 10])},
            "retain_eval": {"embeddings": torch.randn(2, 3), "labels": torch.tensor([5, 6]), "image_ids": torch.tensor([9, 10])},
        })
        for tag in ("forget", "mixed", "retain_eval"):
            (run / f"{step:05d}/{tag}").mkdir(parents=True)
            (run / f"{step:05d}/{tag}/tensors.tsv").write_text("0.1\t0.2\n")
    (run / "projector_config.pbtxt").write_text("".join(
        f'embeddings {{\n  tensor_name: "{tag}:{step:05d}"\n  tensor_path: "{step:05d}/{tag}/tensors.tsv"\n}}\n'
        for step in (0, 4) for tag in ("forget", "mixed", "retain_eval")))
    (run / "figures").mkdir()
    (run / "figures/tsne.png").write_bytes(b"png")
    return run


def test_purge_finds_and_removes_every_copy(tmp_path, capsys):
    run = _run(tmp_path)
    found = {str(path.relative_to(run)) for path, _ in forget_data_files(run)}
    assert found == {"embeddings/step0.pt", "embeddings/step4.pt", "00000/forget", "00000/mixed", "00004/forget",
                     "00004/mixed", "figures/tsne.png"}
    before = {path: path.read_bytes() for path in run.rglob("*") if path.is_file()}
    main([str(tmp_path / "sweep"), "--dry-run"])
    assert {path: path.read_bytes() for path in run.rglob("*") if path.is_file()} == before  # a dry run changes nothing
    assert "would remove" in capsys.readouterr().out
    main([str(tmp_path / "sweep")])
    printed = capsys.readouterr().out
    assert "rewrote" in printed and "deleted" in printed
    assert forget_data_files(run) == []
    for step in (0, 4):
        snapshot = runfiles.load_snapshot(runfiles.snapshot_path(run, step))
        assert set(snapshot) == {"mixed", "retain_eval"} and snapshot["mixed"]["labels"].tolist() == [5, 6]
        assert torch.equal(snapshot["retain_eval"]["labels"], torch.tensor([5, 6]))
        assert (run / f"{step:05d}/retain_eval/tensors.tsv").is_file() and not (run / f"{step:05d}/forget").exists()
    config = (run / "projector_config.pbtxt").read_text()
    assert config.count("embeddings {") == 2 and "retain_eval" in config and "forget" not in config
    assert (run / "history.csv").is_file()
    assert (run / "figures/tsne.png").read_bytes()[:4] == b"\x89PNG" and "redrew" in printed  # from the purged snapshots
    assert purge(tmp_path / "sweep") == []  # nothing left to do


def test_purge_pack_blanks_only_the_named_identities(tmp_path):
    from conftest import write_random_packed

    packed = write_random_packed(tmp_path / "packed")
    before = np.array(packed.images)
    with pytest.raises(SystemExit, match="not in"):
        purge_pack(packed.root, [0, 999])
    assert np.array_equal(np.load(packed.root / "images.npy"), before)  # nothing changed
    message = purge_pack(packed.root, [0, 1])
    after = PackedFaces.open(packed.root)
    gone = np.isin(after.identities, [0, 1])
    assert "blanked 24 crops" in message and not np.asarray(after.images)[gone].any()
    assert np.array_equal(np.asarray(after.images)[~gone], before[~gone])
    assert json.loads((packed.root / "meta.json").read_text())["purged_identities"] == [0, 1]
