"""Export: the standalone policy gives the original model's greedy actions, and runs without asyncrl."""

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from asyncrl.export import main
from tests.tool_helpers import make_run, one_line_exit_2

CASES = {
    "mlp": ["env=CartPole-v1"],
    "gru": ["env=CartPole-v1", "model.core=gru", "model.core_size=16", "model.mlp_layers=[16]"],
    "lstm_box_actions": ["env=Pendulum-v1", "model.core=lstm", "model.core_size=8", "model.mlp_layers=[16]"],
}


def _expected(model, steps=6, batch=3, seed=1):
    """Observations for ``steps`` steps of ``batch`` envs, and the original model's greedy outputs, the
    recurrent state carried from step to step."""
    g = torch.Generator().manual_seed(seed)
    shapes = model.obs_preprocessor.shapes
    obs = [{k: torch.randn(batch, *shape, generator=g) * 3.0 for k, shape in shapes.items()} for _ in range(steps)]
    state = model.initial_state(batch)
    out = []
    for o in obs:
        actions, _, values, state = model.act(o, state, deterministic=True)
        out.append({"action": actions, "value": values, "state": state})
    return {"obs": obs, "out": out, "initial_state": model.initial_state(batch)}


# Runs in a fresh interpreter that cannot import asyncrl: the policy file must be all it needs.
STANDALONE_CHECK = textwrap.dedent("""
    import sys
    sys.modules["asyncrl"] = None  # any import of asyncrl now fails
    import torch
    policy = torch.jit.load(sys.argv[1])
    data = torch.load(sys.argv[2])
    state = data["initial_state"]
    for obs, want in zip(data["obs"], data["out"]):
        if state is None:
            action, value = policy(obs)
        else:
            action, value, state = policy(obs, state)
            assert torch.allclose(state, want["state"], atol=1e-5), "state differs"
        if action.is_floating_point():  # Gaussian means: the traced graph may round differently
            assert torch.allclose(action, want["action"], atol=1e-5), (action, want["action"])
        else:  # discrete choices: exactly the same
            assert torch.equal(action, want["action"]), (action, want["action"])
        assert torch.allclose(value, want["value"], atol=1e-4), (value, want["value"])
    assert "asyncrl" not in {m.split(".")[0] for m, mod in sys.modules.items() if mod is not None}
    print("standalone ok")
""")


@pytest.mark.parametrize("case", sorted(CASES))
def test_torchscript_policy_matches_the_model_without_asyncrl(case, tmp_path):
    model = make_run(tmp_path / "run", CASES[case])
    assert main([f"run={tmp_path / 'run'}"]) == 0
    policy_file = tmp_path / "run" / "policy.pt"
    data = _expected(model)
    if model.state_size == 0:
        data["initial_state"] = None
    assert len({tuple(o["action"].flatten().tolist()) for o in data["out"]}) > 1  # the actions vary
    torch.save(data, tmp_path / "data.pt")
    result = subprocess.run([sys.executable, "-c", STANDALONE_CHECK, str(policy_file), str(tmp_path / "data.pt")],
                            capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "standalone ok" in result.stdout


# torch 2.13 calls TorchScript deprecated in favour of torch.export; the README's loading code is what users run.
@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")
def test_torchscript_policy_carries_its_metadata(tmp_path):
    make_run(tmp_path / "run", CASES["gru"])
    assert main([f"run={tmp_path / 'run' / 'checkpoints' / 'ckpt_00000000000123_000001.pt'}",
                 f"out={tmp_path / 'out' / 'p.pt'}"]) == 0
    extra = {"asyncrl_policy.json": ""}
    policy = torch.jit.load(str(tmp_path / "out" / "p.pt"), _extra_files=extra)
    meta = json.loads(extra["asyncrl_policy.json"])
    assert meta["state_size"] == 16 == int(policy.state_size)
    assert meta["inputs"] == {"obs": {"shape": [4], "dtype": "float32"}}
    assert meta["action_space"] == "Discrete(2)" and meta["env_steps"] == 123
    # Any batch size: traced at 2, run at 5.
    action, value, state = policy({"obs": torch.zeros(5, 4)}, torch.zeros(5, 16))
    assert action.shape == (5, 1) and value.shape == (5,) and state.shape == (5, 16)


def test_onnx_policy_matches_the_model(tmp_path):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    model = make_run(tmp_path / "run", CASES["gru"])
    assert main([f"run={tmp_path / 'run'}", "format=onnx"]) == 0
    session = ort.InferenceSession(str(tmp_path / "run" / "policy.onnx"))
    assert [i.name for i in session.get_inputs()] == ["obs", "rnn_state"]
    data = _expected(model, steps=4, batch=5)
    state = data["initial_state"].numpy()
    for obs, want in zip(data["obs"], data["out"], strict=True):
        action, value, state = session.run(None, {"obs": obs["obs"].numpy(), "rnn_state": state})
        np.testing.assert_array_equal(action, want["action"].numpy())
        np.testing.assert_allclose(value, want["value"].numpy(), atol=1e-4)
        np.testing.assert_allclose(state, want["state"].numpy(), atol=1e-5)


def test_onnx_without_the_package_says_how_to_get_it(tmp_path, capsys, monkeypatch):
    make_run(tmp_path / "run", CASES["mlp"])
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now fails, as when it is not installed
    assert "pip install onnx" in one_line_exit_2(capsys, main, [f"run={tmp_path / 'run'}", "format=onnx"])


@pytest.mark.parametrize("argv, says", [
    (["format=tf"], "format='tf' is invalid: expected format=torchscript or format=onnx"),
    (["fromat=onnx"], "did you mean format?"),
    (["policy=x"], "policy='x' is not an integer"),
    ([], "run is required"),
])
def test_bad_arguments_give_one_line(argv, says, capsys, tmp_path):
    run = [f"run={tmp_path}"] if argv else []
    assert says in one_line_exit_2(capsys, main, run + argv)
