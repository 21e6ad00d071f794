"""``--config NAME`` finds a config shipped in the package; a path that exists always wins."""
from pathlib import Path

from faceunlearn.io.shipped import configs_folder, resolve_config_arguments, shipped_config

REPO = Path(__file__).resolve().parents[1]


def test_names_resolve_to_shipped_configs_and_paths_win(tmp_path, monkeypatch):
    assert configs_folder() == REPO / "configs"  # in the repository the package's configs are the top-level folder
    assert shipped_config("demo_disp") == shipped_config("demo_disp.yaml") == REPO / "configs/demo_disp.yaml"
    assert shipped_config("protocols/own_data") == REPO / "configs/protocols/own_data.yaml"
    assert shipped_config("no_such_config") is None and shipped_config("protocols") is None  # a folder is no config
    words = ["sweep", "--configs", "demo_disp", "demo_ga.yaml", "--seeds", "0", "--finetune-config=demo_finetune",
             "--out", "demo_disp"]
    assert resolve_config_arguments(words) == [
        "sweep", "--configs", str(REPO / "configs/demo_disp.yaml"), str(REPO / "configs/demo_ga.yaml"), "--seeds", "0",
        f"--finetune-config={REPO / 'configs/demo_finetune.yaml'}", "--out", "demo_disp"]  # only config options change
    monkeypatch.chdir(tmp_path)
    (tmp_path / "demo_disp").write_text("model: mine\n")  # the user's own file of that name is what they meant
    assert resolve_config_arguments(["fit", "--config", "demo_disp", "--config", "demo_ga"]) == [
        "fit", "--config", "demo_disp", "--config", str(REPO / "configs/demo_ga.yaml")]
