"""Config composition and the one-line errors for bad input."""

import subprocess
import sys
from pathlib import Path

import pytest

from asyncrl.config.loader import CONF_DIR, ID_CONFIGS, ConfigError, group_options, load_config
from asyncrl.config.schema import Config


def test_defaults_compose_to_a_typed_config():
    cfg = load_config([])
    assert isinstance(cfg, Config)
    assert cfg.env.id == "CartPole-v1" and cfg.name == "cartpole"
    assert cfg.runtime.kind == "ray"


# gym.yaml and atari.yaml are reached through an id (next tests), never by their own names.
@pytest.mark.parametrize("env", [e for e in group_options("env") if e not in ID_CONFIGS])
def test_every_env_config_composes(env):
    cfg = load_config([f"env={env}"])
    assert cfg.env.name == env


def test_any_gymnasium_id_is_an_env():
    cfg = load_config(["env=Acrobot-v1"])
    assert cfg.env.id == "Acrobot-v1" and cfg.name == "Acrobot-v1"


def test_a_checkout_reads_its_own_conf_folder():
    # An editable install (make setup) composes from the repository's conf/, so edits there count at once.
    assert Path(__file__).resolve().parents[1] / "conf" == CONF_DIR


def test_a_users_config_directory_adds_names(tmp_path, monkeypatch):
    # my_envs is not importable here: the env names its family, so no env is built to read its spaces.
    env_body = "defaults:\n  - override /family: vector_discrete\nenv:\n  name: my_pole\n  factory: my_envs:make\n  id: x\n"
    for group, name, body in [("env", "my_pole", env_body),
                              ("experiment", "my_recipe", "algo:\n  lr: 0.123\n"),
                              ("runtime", "my_runtime", "kind: serial\nnum_envs: 3\n")]:
        (tmp_path / group).mkdir()
        (tmp_path / group / f"{name}.yaml").write_text(f"# @package _global_\n{body}" if group != "runtime" else body)
    monkeypatch.setenv("ASYNCRL_CONFIG_PATH", f"{tmp_path / 'missing_is_not_ok'}")
    with pytest.raises(ConfigError, match="ASYNCRL_CONFIG_PATH=.*no such directory"):
        load_config(["env=cartpole"])
    monkeypatch.setenv("ASYNCRL_CONFIG_PATH", str(tmp_path))
    cfg = load_config(["env=my_pole", "experiment=my_recipe", "runtime=my_runtime"])
    assert (cfg.env.factory, cfg.algo.lr, cfg.name, cfg.runtime.num_envs) == ("my_envs:make", 0.123, "my_recipe", 3)
    assert load_config(["env=cartpole"]).env.factory == "asyncrl_envs.gymnasium_env:make_env"  # ours still there
    with pytest.raises(ConfigError, match="my_pole"):  # the error lists the user's names with ours
        load_config(["env=my_polo"])
    (tmp_path / "env" / "cartpole.yaml").write_text("# @package _global_\nenv:\n  name: cartpole\n")
    with pytest.raises(ConfigError, match="env=cartpole is defined twice"):
        load_config(["env=cartpole"])


@pytest.mark.parametrize("env, family", [("cartpole", "vector_discrete"), ("Acrobot-v1", "vector_discrete"),
                                         ("Pendulum-v1", "vector_continuous"), ("doom_basic", "image")])
def test_the_family_is_read_from_the_envs_spaces(env, family):
    assert load_config([f"env={env}"]).family == family


def test_family_defaults_yield_to_the_env_the_recipe_and_the_command_line():
    pendulum = load_config(["env=Pendulum-v1"])
    assert (pendulum.algo.lr, pendulum.model.encoder, pendulum.model.nonlinearity) == (3e-4, "mlp", "tanh")
    assert load_config(["env=Pendulum-v1", "algo.lr=0.1"]).algo.lr == 0.1
    doom = load_config(["env=doom_basic"])  # the image family's lr, the env's own core and value clip
    assert (doom.algo.lr, doom.model.core, doom.algo.ppo_clip_value) == (1e-4, "gru", 0.2)
    forced = load_config(["env=Pendulum-v1", "family=image"])  # no probe: the given family's defaults
    assert (forced.family, forced.algo.lr, forced.model.encoder) == ("image", 1e-4, "auto")


def test_a_factory_that_cannot_be_imported_is_one_line_when_the_family_is_read():
    with pytest.raises(ConfigError, match="env.factory='no_such_module:make' cannot be imported"):
        load_config(["env=Acrobot-v1", "env.factory=no_such_module:make"])


def test_experiment_names_the_run_and_overrides_apply():
    cfg = load_config(["experiment=my_run", "runtime=serial", "train.env_steps=123", "algo.lr=0.01"])
    assert cfg.name == "my_run" and cfg.runtime.kind == "serial"
    assert cfg.train.env_steps == 123 and cfg.algo.lr == 0.01


def test_free_form_factory_kwargs_are_accepted():
    assert load_config(["env.kwargs.max_episode_steps=50"]).env.kwargs == {"max_episode_steps": 50}


@pytest.mark.parametrize("override, must_mention", [
    ("train.env_stpes=5", ["train.env_stpes", "train.env_steps"]),
    ("algo.learning_rate=0.1", ["algo.learning_rate", "algo.lr"]),
    ("train.env_steps=abc", ["train.env_steps", "abc", "Integer"]),
    ("env=CartPol", ["CartPol", "CartPole-v1"]),
    ("algo.batch_size=33", ["algo.batch_size", "33", "multiple"]),
    ("runtime.num_envs=0", ["runtime.num_envs", ">= 1"]),
    ("model.core=grux", ["model.core", "gru", "lstm"]),
    ("runtime=cluster", ["runtime", "serial"]),
    ("family=robotics", ["family='robotics'", "vector_continuous", "atari"]),
    ("algo.lr_schedule=cosine", ["algo.lr_schedule", "linear"]),
    ("restart_behavior=keep", ["restart_behavior", "resume", "overwrite"]),
    ("algo.gamma=1.5", ["algo.gamma", "[0, 1]"]),
])
def test_bad_input_is_one_clear_line(override, must_mention):
    with pytest.raises(ConfigError) as err:
        load_config([override])
    message = str(err.value)
    assert "\n" not in message
    for word in must_mention:
        assert word in message


def test_cli_bad_key_exits_2_with_one_line_and_no_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "asyncrl.train", "train.env_stpes=5"], capture_output=True,
                          text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert "train.env_steps" in lines[0] and "Traceback" not in proc.stderr


def test_family_of_reads_frames_then_continuous_actions():
    import numpy as np
    from gymnasium import spaces

    from asyncrl.config.families import describe_spaces, family_of

    frame = spaces.Box(0, 255, (3, 72, 128), np.uint8)
    vector = spaces.Box(-1, 1, (4,), np.float32)
    assert family_of(spaces.Dict({"obs": frame, "health": vector}), spaces.Box(-1, 1, (2,))) == "image"
    assert family_of(spaces.Dict({"obs": vector}), spaces.Tuple([spaces.Discrete(3), spaces.Box(-1, 1, (1,))])) \
        == "vector_continuous"
    assert family_of(spaces.Dict({"obs": vector}), spaces.MultiDiscrete([3, 2])) == "vector_discrete"
    assert describe_spaces(spaces.Dict({"obs": vector}), spaces.Discrete(2)) == \
        "observations obs=Box(4,) float32, actions Discrete(2)"
