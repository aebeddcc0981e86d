"""The package map, kept true by parsing every import of ``asyncrl`` (issue #23).

Each package of ``asyncrl`` (or top-level module) sits in a layer and imports only from layers below it, so the
packages form no cycle and the architecture reads bottom-up. Imports under ``if TYPE_CHECKING:`` are annotations,
not dependencies, and are not counted. README's "Architecture" names each package with its one job.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "asyncrl"

LAYERS: list[set[str]] = [
    {"data", "timing", "hardware"},  # the data contracts, timers, what the CPU or GPU does natively
    {"algo", "env_api", "progress"},  # the math; the env contract; what a run has seen
    {"config"},  # typed config groups, loaded by Hydra (reads an env's spaces to pick its family)
    {"models"},  # networks, distributions, normalizers
    {"inference", "learning", "outputs"},  # policy copies; the learner; what a run writes
    {"sampling", "evaluation"},  # vectorized envs cut into trajectories; playing episodes to score a policy
    {"runtime"},  # the runtime contract, the serial runtime and what every runtime shares (no Ray)
    {"pbt"},  # population decisions and the driver that carries them out
    {"ray_runtime"},  # the Ray runtime: actors, wiring, faults, cluster
    {"training"},  # the training run: the loop, its state, summary, best checkpoint
    {"train", "eval", "export", "plot", "__init__"},  # the commands
]
MATH_MAY_IMPORT = {"torch", "numpy", "__future__", "dataclasses", "typing", "math"}


def _layer_of(package: str) -> int:
    for i, layer in enumerate(LAYERS):
        if package in layer:
            return i
    raise AssertionError(f"asyncrl/{package} is in no layer of tests/test_architecture.py: add it where it belongs")


def _imports() -> list[tuple[str, str, str]]:
    """(importing file, its package, imported module) for every import outside ``if TYPE_CHECKING:``."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        package = rel.parts[0] if len(rel.parts) > 1 else rel.stem
        tree = ast.parse(path.read_text())
        type_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
                     and getattr(node.test, "id", None) == "TYPE_CHECKING" for n in ast.walk(node)}
        for node in ast.walk(tree):
            if id(node) in type_only:
                continue
            if isinstance(node, ast.Import):
                found += [(str(rel), package, alias.name) for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.append((str(rel), package, node.module))
    return found


def _package_edges() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = defaultdict(set)
    for _, package, module in _imports():
        parts = module.split(".")
        if parts[0] == "asyncrl" and len(parts) > 1 and parts[1] != package:
            edges[package].add(parts[1])
    return edges


def _upward(edges: dict[str, set[str]]) -> list[str]:
    return [f"asyncrl/{a} imports asyncrl.{b}" for a, targets in sorted(edges.items()) for b in sorted(targets)
            if _layer_of(b) >= _layer_of(a)]


def _cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 on the current path, 2 done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return [*path, node, nxt]
            if nxt not in state and (cycle := visit(nxt, [*path, node])):
                return cycle
        state[node] = 2
        return None

    for package in sorted(edges):
        if package not in state and (cycle := visit(package, [])):
            return cycle
    return None


def test_every_package_imports_only_from_layers_below_it():
    wrong = _upward(_package_edges())
    assert not wrong, "; ".join(wrong)


def test_no_cycle_between_packages():
    cycle = _cycle(_package_edges())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_checks_catch_an_upward_import_and_a_cycle():
    """The checks above could pass by reading nothing: they must see the real edges and fail on bad ones."""
    edges = _package_edges()
    assert "env_api" in edges["config"] and "ray_runtime" in edges["training"]
    assert _upward({"algo": {"training"}, "training": {"algo"}}) == ["asyncrl/algo imports asyncrl.training"]
    assert _cycle({"runtime": {"evaluation"}, "evaluation": {"runtime"}}) == ["evaluation", "runtime", "evaluation"]


def test_the_math_imports_only_torch_and_numpy():
    bad = [f"{f} imports {m}" for f, package, m in _imports()
           if package == "algo" and m.split(".")[0] not in MATH_MAY_IMPORT]
    assert not bad, bad


def test_only_the_ray_runtime_imports_ray():
    bad = [f for f, package, m in _imports() if m.split(".")[0] == "ray" and package != "ray_runtime"]
    assert not bad, bad


def test_only_the_metrics_writer_imports_wandb():
    bad = [f for f, _, m in _imports() if m.split(".")[0] == "wandb" and f != "outputs/metrics_writer.py"]
    assert not bad, bad


def test_asyncrl_never_imports_the_env_integrations():
    bad = [f"{f} imports {m}" for f, _, m in _imports() if m.split(".")[0] in ("asyncrl_envs", "envs", "vizdoom")]
    assert not bad, bad
