"""faceunlearn purge: every copy of the forget identities' embeddings found and removed, nothing else touched."""

import json

import numpy as np
import pytest
import torch

from faceunlearn.io import run_folder
from faceunlearn.commands.purge import main
from faceunlearn.data.packed import PackedFaces
from faceunlearn.audit.purge import PURGED_KEY, forget_data_files, purge, purge_checkpoints, purge_pack


def _run(tmp_path):
    run = tmp_path / "sweep/demo_disp/seed0"
    run.mkdir(parents=True)
    (run / "done.json").write_text(json.dumps({"forget_identities": [0, 1]}))
    (run / "history.csv").write_text("step,benchmark,metric,value\n0,forget,mAP,0.5\n")
    for step in (0, 4):
        run_folder.save_snapshot(run_folder.snapshot_path(run, step), {
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
    # TensorBoard's copy of the t-SNE figure, beside a scalar that must survive
    from torch.utils.tensorboard import SummaryWriter

    from faceunlearn.figures.tsne import TAG

    writer = SummaryWriter(str(run))
    writer.add_scalar("forget/mAP", 0.5, 4)
    writer.add_image(TAG, np.zeros((3, 8, 8), dtype=np.uint8), 4)
    writer.close()
    return run


def _tags(run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run))
    events.Reload()
    return events.Tags()


def test_purge_finds_and_removes_every_copy(tmp_path, capsys):
    run = _run(tmp_path)
    found = {str(path.relative_to(run)) for path, _ in forget_data_files(run)}
    events = next(run.glob("events.out.tfevents.*")).name
    assert found == {"embeddings/step0.pt", "embeddings/step4.pt", "00000/forget", "00000/mixed", "00004/forget",
                     "00004/mixed", "figures/tsne.png", events}
    assert _tags(run)["images"] == ["embeddings/tsne"]
    before = {path: path.read_bytes() for path in run.rglob("*") if path.is_file()}
    main([str(tmp_path / "sweep"), "--dry-run"])
    assert {path: path.read_bytes() for path in run.rglob("*") if path.is_file()} == before  # a dry run changes nothing
    assert "would remove" in capsys.readouterr().out
    main([str(tmp_path / "sweep")])
    printed = capsys.readouterr().out
    assert "rewrote" in printed and "deleted" in printed
    assert forget_data_files(run) == []
    for step in (0, 4):
        snapshot = run_folder.load_snapshot(run_folder.snapshot_path(run, step))
        assert set(snapshot) == {"mixed", "retain_eval"} and snapshot["mixed"]["labels"].tolist() == [5, 6]
        assert torch.equal(snapshot["retain_eval"]["labels"], torch.tensor([5, 6]))
        assert (run / f"{step:05d}/retain_eval/tensors.tsv").is_file() and not (run / f"{step:05d}/forget").exists()
    config = (run / "projector_config.pbtxt").read_text()
    assert config.count("embeddings {") == 2 and "retain_eval" in config and "forget" not in config
    assert (run / "history.csv").is_file()
    assert (run / "figures/tsne.png").read_bytes()[:4] == b"\x89PNG" and "redrew" in printed  # from the purged snapshots
    tags = _tags(run)  # the event file, rewritten: no t-SNE image, the scalar kept
    assert tags["images"] == [] and tags["scalars"] == ["forget/mAP"] and f"rewrote {run / events}" in printed
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


def _checkpoint(path, rows=4):
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    checkpoint = {"state_dict": {"head.weight": torch.randn(rows, 3), "backbone.fc.weight": torch.randn(3, 5)},
                  "optimizer_states": [{"state": {0: {"momentum_buffer": torch.randn(rows, 3)}}}], "lr_schedulers": [{}],
                  "epoch": 1}
    torch.save(checkpoint, path)
    return checkpoint


def test_purge_checkpoints_zeroes_only_the_forget_rows_and_drops_the_optimiser_state(tmp_path, capsys):
    run = _run(tmp_path)  # done.json: forget identities 0 and 1
    original = {name: _checkpoint(run / "checkpoints" / name) for name in ("last.ckpt", "epoch=0-step=3.ckpt")}
    loose = tmp_path / "sweep/elsewhere/last.ckpt"  # a checkpoint folder outside a run folder: no done.json
    _checkpoint(loose)
    before = {path: path.read_bytes() for path in tmp_path.rglob("*.ckpt")}
    with pytest.raises(SystemExit, match="elsewhere/last.ckpt records no forget identities.*--identities; nothing changed"):
        purge_checkpoints(tmp_path / "sweep")
    assert {path: path.read_bytes() for path in tmp_path.rglob("*.ckpt")} == before  # checked before any was written
    with pytest.raises(SystemExit, match=r"identities \[7\] have no row in the head of .*elsewhere/last.ckpt \(4 classes\)"):
        purge_checkpoints(tmp_path / "sweep", identities=[7])
    assert purge_checkpoints(tmp_path / "sweep", identities=[3], dry_run=True)[0].startswith("would zero")
    assert {path: path.read_bytes() for path in tmp_path.rglob("*.ckpt")} == before

    main([str(tmp_path / "sweep"), "--checkpoints", "--identities", "3"])
    printed = capsys.readouterr().out
    assert printed.count("zeroed the head rows") == 3 and "it no longer resumes" in printed
    assert "rewrote" in printed  # the embeddings were purged too
    for name, saved in original.items():
        purged = torch.load(run / "checkpoints" / name, weights_only=True)
        head = purged["state_dict"]["head.weight"]
        assert torch.equal(head[:2], torch.zeros(2, 3)) and torch.equal(head[2:], saved["state_dict"]["head.weight"][2:])
        assert torch.equal(purged["state_dict"]["backbone.fc.weight"], saved["state_dict"]["backbone.fc.weight"])
        assert "optimizer_states" not in purged and "lr_schedulers" not in purged and purged["epoch"] == 1
        assert purged[PURGED_KEY] == [0, 1]
    elsewhere = torch.load(loose, weights_only=True)  # --identities only where the run recorded none
    assert elsewhere[PURGED_KEY] == [3] and torch.equal(elsewhere["state_dict"]["head.weight"][3], torch.zeros(3))
    assert not torch.equal(elsewhere["state_dict"]["head.weight"][0], torch.zeros(3))
    # a checkpoint records its own forget identities (FaceDataModule.state_dict): they come first
    recorded = _checkpoint(tmp_path / "own/last.ckpt")
    torch.save({**recorded, "FaceDataModule": {"forget_identities": [2]}}, tmp_path / "own/last.ckpt")
    purge_checkpoints(tmp_path / "own", identities=[3])
    assert torch.load(tmp_path / "own/last.ckpt", weights_only=True)[PURGED_KEY] == [2]


def test_purge_checkpoints_refuses_what_it_cannot_purge(tmp_path):
    not_a_checkpoint = tmp_path / "run/checkpoints/last.ckpt"
    not_a_checkpoint.parent.mkdir(parents=True)
    not_a_checkpoint.write_bytes(b"not torch")
    with pytest.raises(SystemExit, match="cannot read checkpoint .*last.ckpt"):
        purge_checkpoints(not_a_checkpoint, identities=[0])
    torch.save({"state_dict": {"backbone.fc.weight": torch.zeros(2)}}, not_a_checkpoint)
    with pytest.raises(SystemExit, match=r"has no CosFace head \(state_dict\['head.weight'\]\)"):
        purge_checkpoints(not_a_checkpoint, identities=[0])
    with pytest.raises(SystemExit):
        main([str(tmp_path / "absent"), "--checkpoints"])


def test_purge_checkpoints_leaves_other_runs_checkpoints_unless_named(tmp_path, capsys):
    """An Original's (or Retrain's) checkpoint is the user's model, not an unlearning run's: a folder purge skips it."""
    run = _run(tmp_path)
    _checkpoint(run / "checkpoints/last.ckpt")
    original = tmp_path / "sweep/original/checkpoints/last.ckpt"
    checkpoint = _checkpoint(original)
    checkpoint["unlearning"] = False
    checkpoint["FaceDataModule"] = {"forget_identities": [0, 1]}
    torch.save(checkpoint, original)
    before = original.read_bytes()
    done = purge_checkpoints(tmp_path / "sweep")
    assert original.read_bytes() == before and any(f"left {original} alone" in line for line in done)
    assert any("zeroed the head rows" in line and "seed0" in line for line in done)
    purge_checkpoints(original)  # named: purged
    assert torch.load(original, weights_only=True)["state_dict"]["head.weight"][[0, 1]].abs().sum() == 0
