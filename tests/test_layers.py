"""The layering rules, checked on the source: who may import ray, wandb, and envs."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "asyncrl"


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def _modules_importing(top: str) -> set[str]:
    return {str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py") if top in _imports(p)}


def test_only_the_runtime_layer_imports_ray():
    assert {m for m in _modules_importing("ray") if not m.startswith("runtime/")} == set()


def test_only_the_metrics_writer_imports_wandb():
    assert _modules_importing("wandb") <= {"run/metrics_writer.py"}


def test_asyncrl_never_imports_envs():
    # asyncrl_envs is the repository's envs/ as installed; envs is its folder name (and a PyPI package's).
    assert _modules_importing("asyncrl_envs") | _modules_importing("envs") == set()


def test_the_math_imports_only_torch_and_numpy():
    for path in (PACKAGE / "algo").glob("*.py"):
        assert _imports(path) <= {"torch", "numpy", "__future__", "typing", "dataclasses", "collections"}, path
