"""The package's floor plan (docs/architecture.md), checked: imports between its folders only go down the
layers (function-level imports included), at most three loose modules at the top, no module over 400 lines,
and ``benchmarks/`` uses public names only."""

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "faceunlearn"
#: lowest first; a folder (or loose module) may import only from strictly lower layers
LAYERS = [
    {"io"},
    {"schedule", "losses", "metrics"},
    {"models"},
    {"data", "figures", "export"},
    {"prepare", "methods"},
    {"callbacks"},
    {"cli"},
    {"audit", "disjoint"},
    {"experiments", "demo", "gallery"},
    {"workflow"},
    {"commands"},
    {"__main__"},
]
LOOSE_ALLOWED = 3  # besides __init__, __main__ and cli
MAX_LINES = 400


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(_package_of(path).parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path) -> list[str]:
    """Every faceunlearn module ``path`` imports, at any depth of the file (function-level imports too)."""
    name, found = _module_name(path), []
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found += [f"{module}.{alias.name}" for alias in node.names] if module == "faceunlearn" else [module]
    return [module for module in found if module == "faceunlearn" or module.startswith("faceunlearn.")]


def _package_of(path: Path) -> Path:
    """The ``faceunlearn`` folder ``path`` lies in (the repository's, or a copy's)."""
    return next(parent for parent in path.parents if parent.name == "faceunlearn")


def _edges(package: Path = PACKAGE) -> dict[tuple[str, str], list[str]]:
    edges: dict[tuple[str, str], list[str]] = {}
    for path in package.rglob("*.py"):
        source = _unit(_module_name(path))
        for module in _imports(path):
            target = _unit(module)
            if target != source and target != "__init__":
                edges.setdefault((source, target), []).append(str(path.relative_to(package.parent)))
    return edges


def _layer(unit: str) -> int:
    for index, layer in enumerate(LAYERS):
        if unit in layer:
            return index
    raise AssertionError(f"{unit} is in no layer of tests/test_architecture.py: place it (and docs/architecture.md)")


def test_imports_only_go_down_the_layers():
    upward = [f"{source} -> {target} ({', '.join(sorted(set(files)))})" for (source, target), files in sorted(_edges().items())
              if _layer(target) >= _layer(source)]
    assert upward == [], "imports against the layers (docs/architecture.md):\n" + "\n".join(upward)


def test_the_checker_sees_function_level_and_relative_imports(tmp_path):
    # the test above can fail: a function-level upward import and a relative one are both found (in a copy of
    # the package: the source tree is never written, another test may be reading it)
    import shutil

    package = tmp_path / "faceunlearn"
    shutil.copytree(PACKAGE, package, ignore=shutil.ignore_patterns("__pycache__"))
    module = package / "metrics" / "_probe_for_the_test.py"
    module.write_text("def f():\n    from faceunlearn.experiments import sweep\n    from ..audit import run\n")
    assert {"faceunlearn.experiments", "faceunlearn.audit"} <= {m.rsplit(".", 1)[0] if m.count(".") > 1 else m
                                                               for m in _imports(module)} | set(_imports(module))
    assert ("metrics", "experiments") in _edges(package) and ("metrics", "audit") in _edges(package)
    assert ("metrics", "experiments") not in _edges()


def test_few_loose_modules_and_none_too_long():
    loose = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem not in ("__init__", "__main__", "cli"))
    assert len(loose) <= LOOSE_ALLOWED, f"loose modules at the package top: {loose}"
    long = {str(p.relative_to(REPO)): n for p in PACKAGE.rglob("*.py") if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}, f"modules over {MAX_LINES} lines: {long}"


def test_benchmarks_use_public_names_only():
    private = []
    for path in (REPO / "benchmarks").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("faceunlearn"):
                private += [f"{path.name}: {node.module}.{alias.name}" for alias in node.names if alias.name.startswith("_")]
    assert private == []
