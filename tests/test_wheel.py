"""The package as a user gets it: a wheel, installed into a fresh environment, run from a folder outside the repository
with the configs it ships (slow tier)."""
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

from tests.test_workflow import write_photo_folders

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _run(command: list[str], cwd: Path) -> str:
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin", "HOME": str(cwd)})
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_a_wheel_installs_and_unlearns_outside_the_repository(tmp_path):
    source = tmp_path / "source"  # the build writes build/ and egg-info: never into the working tree under test
    top_level_outputs = {".venv", ".git", "build", "lightning_logs", "checkpoints", "data", ".pytest_cache"}
    shutil.copytree(REPO, source, symlinks=True, ignore=lambda folder, names: [
        name for name in names if name == "__pycache__" or name.endswith(".egg-info")
        or (Path(folder) == REPO and name in top_level_outputs)])
    _run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation", "-q", "-w",
          str(tmp_path / "wheels")], tmp_path)
    wheel = next((tmp_path / "wheels").glob("faceunlearn-*.whl"))
    # a fresh environment; its dependencies come from this one (no network here), the package only from the wheel
    venv.create(tmp_path / "env", with_pip=False)
    python = tmp_path / "env/bin/python"
    env_site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp_path).strip())
    (env_site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")  # not a site dir: no editable
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q", str(wheel)],
         tmp_path)

    work = tmp_path / "elsewhere"
    work.mkdir()
    where = _run([str(python), "-c", "import faceunlearn, importlib.resources as r; print(faceunlearn.__file__); "
                  "print(r.files('faceunlearn.configs').joinpath('own_disp.yaml').is_file())"], work).split()
    assert where[0].startswith(str(env_site)) and where[1] == "True"  # the installed copy, configs inside
    assert "--forget NAME" in _run([str(tmp_path / "env/bin/faceunlearn"), "unlearn", "--help"], work)
    printed = _run([str(tmp_path / "env/bin/faceunlearn"), "fit", "--config", "demo_disp", "--print_config"], work)
    assert "Dispersion" in printed  # --config takes a shipped config's name

    model = write_photo_folders(work)
    _run([str(tmp_path / "env/bin/faceunlearn"), "unlearn", "--model", str(model), "--people", "photos/people",
          "--forget", "alice", "bob", "--heldout", "photos/heldout", "--aligned", "--no-audit", "--no-progress",
          "--disjoint-threshold", "0.99", "--out", "unlearned"], work)  # (the tiny random recognizer finds all alike)
    assert (work / "unlearned/model.onnx").stat().st_size > 10_000
    assert "**Forgotten:** 2 people" in (work / "unlearned/report.md").read_text()
