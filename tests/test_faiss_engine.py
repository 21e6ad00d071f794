"""The FAISS evaluation engine (issue 14 pt 5): galleries streamed into indexes batch by batch give the exact
engine's R@k, and its mAP when the search is deep enough to cover the gallery; names say which engine."""
from pathlib import Path

import numpy as np
import pytest
import torch

from faceunlearn.callbacks import RetrievalEvaluation
from faceunlearn.cli import cli_main
from faceunlearn.metrics.benchmarks import EmbeddingTable, evaluate_benchmarks, parse_benchmarks
from faceunlearn.metrics.streaming import FaissOptions, StreamingGalleries

REPO = Path(__file__).resolve().parents[1]

BENCHMARKS = parse_benchmarks({
    "forget": {"queries": "forget_test", "gallery": ["forget"], "distractors": ["distractors"], "clusters": "forget"},
    "retain": {"queries": "profile", "gallery": ["frontal"], "distractors": ["distractors"]},
})


def _evaluation(seed=0, dim=12):
    """Embeddings of 5 subsets (forget_test ⊂ forget: queries whose own image is in the gallery)."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.cat([torch.arange(6).repeat_interleave(7), torch.arange(6, 14).repeat_interleave(5), torch.arange(14, 54).repeat_interleave(3)])
    centres = torch.randn(54, dim, generator=generator)
    embeddings = centres[labels] + 1.1 * torch.randn(len(labels), dim, generator=generator)
    image_ids = torch.randperm(len(labels), generator=generator) * 7 + 3  # ids unrelated to the row order
    ids = image_ids.numpy()
    forget, retain = np.arange(42), np.arange(42, 82)
    subsets = {"forget": ids[forget], "forget_test": ids[forget[::3]], "frontal": ids[retain[retain % 5 < 3]],
               "profile": ids[retain[retain % 5 >= 3]], "distractors": ids[82:]}
    return embeddings, labels, image_ids, subsets


def _streamed(options, batch=17, seed=0):
    embeddings, labels, image_ids, subsets = _evaluation(seed)
    streaming = StreamingGalleries(BENCHMARKS, subsets, options)
    kept = []
    for start in range(0, len(labels), batch):  # as an evaluation loop hands the batches over
        rows = slice(start, start + batch)
        streaming.add(embeddings[rows], labels[rows], image_ids[rows])
        kept.append(streaming.keep(image_ids[rows]))
    keep = torch.cat(kept)
    table = EmbeddingTable(embeddings[keep], labels[keep], image_ids[keep], subsets)
    return evaluate_benchmarks(BENCHMARKS, table, ks=(1, 5), retrieval=streaming.retrieval), keep, subsets, image_ids


def _exact(seed=0):
    embeddings, labels, image_ids, subsets = _evaluation(seed)
    return evaluate_benchmarks(BENCHMARKS, EmbeddingTable(embeddings, labels, image_ids, subsets), ks=(1, 5))


@pytest.mark.parametrize("seed", [0, 1])
def test_a_deep_flat_search_gives_the_exact_engine_numbers(seed):
    exact = _exact(seed)
    faiss, keep, subsets, image_ids = _streamed(FaissOptions(kind="flat", k=200, device="cpu"), seed=seed)
    for name in ("forget", "forget_extended", "retain", "retain_extended"):
        assert faiss[f"{name}/mAP@200"] == pytest.approx(exact[f"{name}/mAP"], abs=1e-9)  # k covers every item: full AP
        for metric in ("R@1", "R@5", "num_queries", "num_queries_without_relevant", "chance_R@1", "chance_R@5"):
            assert faiss[f"{name}/{metric}"] == pytest.approx(exact[f"{name}/{metric}"], abs=1e-12), metric
        assert f"{name}/mAP" not in faiss and f"{name}/chance_mAP" not in faiss  # never passed off as the full mAP
    assert faiss["forget/CS"] == exact["forget/CS"]  # clusters still come from the table
    # the distractors and the retain gallery only feed indexes: they never enter the table
    streamed_only = np.concatenate([subsets["distractors"], subsets["frontal"]])
    assert torch.equal(~keep, torch.from_numpy(np.isin(image_ids.numpy(), streamed_only)))


def test_a_shallow_search_is_a_lower_bound_with_the_same_recall():
    exact = _exact()
    shallow, *_ = _streamed(FaissOptions(k=5, device="cpu"))
    for name in ("forget", "forget_extended", "retain_extended"):
        assert shallow[f"{name}/R@1"] == exact[f"{name}/R@1"] and shallow[f"{name}/R@5"] == exact[f"{name}/R@5"]
        assert shallow[f"{name}/mAP@5"] < exact[f"{name}/mAP"]


def test_an_ivf_index_names_its_numbers_approximate():
    flat, *_ = _streamed(FaissOptions(k=200, device="cpu"))
    # every list searched (nprobe = nlist): the approximate index finds what the flat one finds
    ivf, *_ = _streamed(FaissOptions(kind="ivf", k=200, nlist=4, nprobe=4, train_rows=60, device="cpu"))
    assert "forget/R@1_ivf" in ivf and "forget/R@1" not in ivf
    for name in ("forget", "retain_extended"):
        assert ivf[f"{name}/R@1_ivf"] == flat[f"{name}/R@1"]
        assert ivf[f"{name}/mAP@200_ivf"] == pytest.approx(flat[f"{name}/mAP@200"], abs=1e-9)


def test_bad_faiss_settings_say_what_is_wrong(tmp_path):
    embeddings, labels, image_ids, subsets = _evaluation()
    with pytest.raises(ValueError, match="kind must be 'flat' or 'ivf'"):
        FaissOptions(kind="hnsw")
    with pytest.raises(ValueError, match="set engine: faiss"):
        RetrievalEvaluation(faiss=FaissOptions())
    with pytest.raises(ValueError, match="engine must be"):
        RetrievalEvaluation(engine="annoy")
    streaming = StreamingGalleries(BENCHMARKS, subsets, FaissOptions(k=3, device="cpu"))
    streaming.add(embeddings, labels, image_ids)
    table = EmbeddingTable(embeddings, labels, image_ids, subsets)
    with pytest.raises(ValueError, match="too shallow for R@5"):
        evaluate_benchmarks(BENCHMARKS, table, ks=(1, 5), retrieval=streaming.retrieval)
    streaming = StreamingGalleries(BENCHMARKS, subsets, FaissOptions(device="cpu"))
    streaming.add(embeddings[:-5], labels[:-5], image_ids[:-5])  # five distractors never embedded
    with pytest.raises(RuntimeError, match=r"\['distractors'\] hold 120 images but the index holds 115: they were not all embedded"):
        evaluate_benchmarks(BENCHMARKS, table, ks=(1,), retrieval=streaming.retrieval)
    with pytest.raises(KeyError, match="unknown"):
        StreamingGalleries(parse_benchmarks({"x": {"queries": "profile", "gallery": ["nowhere"]}}), subsets, FaissOptions())
    exact_csv = tmp_path / "exact.csv"
    exact_csv.write_text("method,seed,benchmark,metric,value\nOriginal,0,forget,mAP,0.5\nOriginal,0,retain,mAP,0.5\n")
    with pytest.raises(ValueError, match="another retrieval engine"):
        RetrievalEvaluation({"forget": {"queries": "forget_test", "gallery": ["forget"]}, "retain": {"queries": "profile", "gallery": ["frontal"]}},
                            start_results=str(exact_csv), engine="faiss")


def _validate(tmp_path, packed_root, *engine_args):
    return cli_main([
        "validate", "--config", str(REPO / "configs/demo_disp.yaml"),
        "--model.init_args.init_weights", "null",
        "--data.root", str(packed_root), "--data.synthetic", "null",
        "--data.num_forget_identities", "8", "--data.batch_size", "16", "--data.eval_retain_identities", "4",
        "--data.eval_batch_size", "13",  # batches cut across subsets: rows go to the table and the indexes
        "--trainer.enable_progress_bar", "false", "--trainer.logger", "false",
        "--trainer.default_root_dir", str(tmp_path),
        "--evaluation.benchmarks",
        '{forget: {queries: forget_test, gallery: [forget], distractors: [distractors], clusters: forget},'
        ' retain: {queries: holdout_profile, gallery: [holdout_frontal], distractors: [distractors], clusters: retain_eval}}',
        *engine_args,
    ])


def test_validate_with_the_faiss_engine_gives_the_exact_numbers(tmp_path, random_packed, caplog):
    exact = RetrievalEvaluation.of(_validate(tmp_path / "exact", random_packed.root).trainer).history[-1][1]
    cli = _validate(tmp_path / "faiss", random_packed.root, "--evaluation.engine", "faiss",
                    "--evaluation.faiss.k", "400", "--evaluation.faiss.device", "cpu")
    evaluation = RetrievalEvaluation.of(cli.trainer)
    (_, faiss), = evaluation.history
    assert evaluation.faiss == FaissOptions(k=400, device="cpu")
    for name in ("forget", "forget_extended", "retain", "retain_extended"):
        assert faiss[f"{name}/mAP@400"] == pytest.approx(exact[f"{name}/mAP"], abs=1e-6)
        assert faiss[f"{name}/R@1"] == exact[f"{name}/R@1"] and faiss[f"{name}/R@10"] == exact[f"{name}/R@10"]
    assert faiss["retain/CS"] == pytest.approx(exact["retain/CS"], abs=1e-7)
    assert "retrieval engine: FAISS flat (exact top-k), k=400, CPU" in caplog.text


def test_the_engine_overlay_composes_with_any_config(tmp_path, monkeypatch, capsys):
    """configs/engines/faiss_flat.yaml switches the engine and keeps the method config's benchmarks."""
    import yaml

    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit):
        cli_main(["fit", "--config", str(REPO / "configs/demo_disp.yaml"), "--config", str(REPO / "configs/engines/faiss_flat.yaml"), "--print_config"])
    evaluation = yaml.safe_load(capsys.readouterr().out)["evaluation"]
    assert evaluation["engine"] == "faiss" and evaluation["faiss"]["kind"] == "flat" and evaluation["faiss"]["k"] == 100
    assert set(evaluation["benchmarks"]) == {"forget", "retain", "heldout_pooled"}
