"""A real install (issue 21): the wheel alone trains, from a directory that is not the repository.

The wheel is built from a copy of the sources and unpacked with ``pip install --no-deps --target`` into a
fresh directory, which goes first on ``PYTHONPATH`` of this venv's python; its dependencies (torch, Ray,
Hydra, ...) come from the venv, but every asyncrl file comes from the wheel, and the test checks that. Runs
start in a temporary directory, so neither the repository's ``conf/`` nor its ``envs/`` can be picked up.
"""

import json
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
SOURCES = ("pyproject.toml", "README.md", "asyncrl", "conf", "envs")
QUIET = ["logging.wandb=disabled", "logging.tensorboard=false"]
# CartPole in a few seconds: the point is that the run starts, trains and ends, not what it learns.
SMALL = ["runtime.num_envs=4", "algo.rollout=16", "algo.batch_size=64", "train.env_steps=2000"]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel, built from a copy of the sources (a build in the repository would leave build/ behind)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in SOURCES:
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(path, src / name)
    out = tmp / "dist"
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(out), str(src)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "deprecat" not in (proc.stdout + proc.stderr).lower(), proc.stdout + proc.stderr
    (whl,) = out.glob("asyncrl-*.whl")
    return whl


@pytest.fixture(scope="module")
def site(wheel, tmp_path_factory) -> Path:
    """The wheel installed, alone, into a directory of its own."""
    site = tmp_path_factory.mktemp("site")
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q", "--target",
                           str(site), str(wheel)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return site


def _python(site: Path, args: list[str], cwd: Path, config_path: Path | None = None, timeout: int = 180):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "ASYNCRL_CONFIG_PATH")}
    env.update(PYTHONPATH=str(site), WANDB_MODE="offline", OMP_NUM_THREADS="1")
    if config_path is not None:
        env["ASYNCRL_CONFIG_PATH"] = str(config_path)
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def _summary(run_dir: Path, proc) -> dict:
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed", summary
    return summary


def test_the_wheel_ships_the_configs_and_no_top_level_envs(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    tops = {n.split("/")[0] for n in names}
    assert tops == {"asyncrl", "asyncrl_envs", wheel.name.split("-py3")[0] + ".dist-info"}, tops
    assert not any(n.startswith(("envs/", "conf/")) for n in names)
    # Every config, and every source file (the package list in pyproject.toml is explicit), is in it.
    configs = {f"asyncrl/conf/{p.relative_to(REPO / 'conf')}" for p in (REPO / "conf").rglob("*.yaml")}
    assert {"asyncrl/conf/config.yaml", "asyncrl/conf/env/cartpole.yaml", "asyncrl/conf/runtime/ray.yaml"} <= configs
    assert configs <= names, configs - names
    sources = {f"asyncrl/{p.relative_to(REPO / 'asyncrl')}" for p in (REPO / "asyncrl").rglob("*.py")}
    sources |= {f"asyncrl_envs/{p.relative_to(REPO / 'envs')}" for p in (REPO / "envs").rglob("*.py")}
    assert sources <= names, sources - names
    top_level = zipfile.ZipFile(wheel).read(wheel.name.split("-py3")[0] + ".dist-info/top_level.txt").decode()
    assert set(top_level.split()) == {"asyncrl", "asyncrl_envs"}, top_level


def test_the_installed_wheel_imports_from_itself(site, tmp_path):
    code = textwrap.dedent(f"""
        import importlib.util, sys
        import asyncrl, asyncrl_envs.vizdoom
        from asyncrl.config.loader import CONF_DIR, group_options
        site = {str(site)!r}
        for path in (asyncrl.__file__, asyncrl_envs.vizdoom.__file__, str(CONF_DIR)):
            assert path.startswith(site), path
        assert importlib.util.find_spec("envs") is None
        assert "cartpole" in group_options("env") and "doom_basic" in group_options("env")
    """)
    proc = _python(site, ["-c", code], cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_cartpole_trains_from_another_directory(site, tmp_path):
    run_dir = tmp_path / "run"
    proc = _python(site, ["-m", "asyncrl.train", "env=cartpole", "runtime=serial", *SMALL, *QUIET,
                          f"run_dir={run_dir}"], cwd=tmp_path)
    assert _summary(run_dir, proc)["env_steps"] >= 2000
    assert "asyncrl_envs.gymnasium_env:make_env" in (run_dir / "config.yaml").read_text()


def test_a_users_own_env_and_recipe_train(site, tmp_path):
    """A project of the user's: its env and experiment configs, and its env factory, none of them in ours."""
    project = tmp_path / "project"
    (project / "conf" / "env").mkdir(parents=True)
    (project / "conf" / "experiment").mkdir()
    (project / "conf" / "env" / "my_pole.yaml").write_text(textwrap.dedent("""\
        # @package _global_
        env:
          name: my_pole
          factory: my_envs:make_env
          id: CartPole-v1
        model:
          mlp_layers: [32]
    """))
    (project / "conf" / "experiment" / "my_quick.yaml").write_text(textwrap.dedent(f"""\
        # @package _global_
        runtime:
          num_envs: 4
        algo:
          rollout: 16
          batch_size: 64
        train:
          env_steps: {2000}
    """))
    (project / "my_envs.py").write_text(textwrap.dedent("""\
        import pathlib

        import gymnasium as gym


        def make_env(cfg, env_index):
            # Proof that this factory built the envs (the driver and the Ray sampler import it from the cwd).
            (pathlib.Path(__file__).parent / f"built_{env_index}").touch()
            return gym.make(cfg.id)
    """))
    run_dir = tmp_path / "run"
    proc = _python(site, ["-m", "asyncrl.train", "env=my_pole", "experiment=my_quick", "runtime=ray",
                          "runtime.num_samplers=1", *QUIET, f"run_dir={run_dir}"], cwd=project,
                   config_path=project / "conf")
    assert _summary(run_dir, proc)["env_steps"] >= 2000
    assert list(project.glob("built_*")), proc.stderr
    written = (run_dir / "config.yaml").read_text()
    assert "factory: my_envs:make_env" in written and "- 32" in written, written

    # Without the directory on the path the name is unknown, and the line says where it would come from.
    proc = _python(site, ["-m", "asyncrl.train", "env=my_pole", *QUIET], cwd=project)
    assert proc.returncode == 2 and "ASYNCRL_CONFIG_PATH" in proc.stderr, proc.stderr
