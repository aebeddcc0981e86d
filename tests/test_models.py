"""The network pieces: encoders, recurrent core, distributions, normalizers and the actor-critic."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from gymnasium import spaces
from hypothesis import given, settings
from hypothesis import strategies as st

from asyncrl.config.schema import ModelConfig
from asyncrl.models.actor_critic import ActorCritic, load_numpy_state_dict, numpy_state_dict
from asyncrl.models.core import Core
from asyncrl.models.distributions import ActionSpec
from asyncrl.models.encoders import ConvEncoder, MlpEncoder, build_encoder
from asyncrl.models.normalize import RunningMeanStd

IMAGE = spaces.Box(0, 255, (3, 72, 128), np.uint8)
SMALL_IMAGE = spaces.Box(0, 255, (3, 36, 36), np.uint8)
VECTOR = spaces.Box(-1.0, 1.0, (5,), np.float32)


# -- encoders --------------------------------------------------------------------------------------------


def test_encoder_per_space():
    cfg = ModelConfig(mlp_layers=[16, 8], conv_fc_size=32)
    enc = build_encoder(spaces.Dict({"obs": VECTOR}), cfg)
    assert isinstance(enc.encoders["obs"], MlpEncoder) and enc.out_size == 8

    enc = build_encoder(spaces.Dict({"obs": SMALL_IMAGE}), cfg)
    assert isinstance(enc.encoders["obs"], ConvEncoder) and enc.out_size == 32

    enc = build_encoder(spaces.Dict({"z": VECTOR, "a": SMALL_IMAGE, "d": spaces.Discrete(4)}), cfg)
    assert enc.keys == ["a", "d", "z"] and enc.out_size == 32 + 8 + 8
    obs = {"a": torch.rand(2, 3, 36, 36), "d": torch.tensor([0, 3]), "z": torch.rand(2, 5)}
    assert enc(obs).shape == (2, 48)

    forced = build_encoder(spaces.Dict({"obs": SMALL_IMAGE}), ModelConfig(encoder="mlp", mlp_layers=[8]))
    assert isinstance(forced.encoders["obs"], MlpEncoder) and forced.out_size == 8
    with pytest.raises(ValueError, match="convnet_simple"):
        build_encoder(spaces.Dict({"obs": VECTOR}), ModelConfig(encoder="convnet_simple"))


def test_convnet_simple_sizes_for_doom_resolution():
    enc = ConvEncoder(IMAGE.shape, 512, "elu")
    assert enc.conv_out_size == 128 * 3 * 6 == 2304
    assert enc.conv(torch.zeros(1, *IMAGE.shape)).shape == (1, 128, 3, 6)
    assert enc(torch.zeros(2, *IMAGE.shape)).shape == (2, 512)


# -- core ------------------------------------------------------------------------------------------------


def _stepwise(core: Core, x, state, resets):
    ys = []
    for t in range(x.shape[0]):
        state = torch.where(resets[t].unsqueeze(-1), torch.zeros_like(state), state)
        y, state = core.step(x[t], state)
        ys.append(y)
    return torch.stack(ys), state


@pytest.mark.parametrize("kind", ["gru", "lstm"])
def test_unroll_equals_stepping_with_resets(kind):
    torch.manual_seed(0)
    core = Core(kind, 6, 8)
    assert core.state_size == (16 if kind == "lstm" else 8)
    t, b = 7, 3
    x, state0 = torch.randn(t, b, 6), torch.randn(b, core.state_size)
    resets = torch.zeros(t, b, dtype=torch.bool)
    resets[0, 1] = resets[3, 0] = resets[3, 2] = resets[5, 1] = True
    y, state = core.unroll(x, state0, resets)
    y_ref, state_ref = _stepwise(core, x, state0, resets)
    torch.testing.assert_close(y, y_ref)
    torch.testing.assert_close(state, state_ref)


@pytest.mark.parametrize("kind", ["gru", "lstm"])
def test_reset_zeroes_the_carried_state(kind):
    torch.manual_seed(0)
    core = Core(kind, 4, 5)
    t, b = 6, 2
    x = torch.randn(t, b, 4)
    resets = torch.zeros(t, b, dtype=torch.bool)
    resets[3] = True
    y1, _ = core.unroll(x, torch.randn(b, core.state_size), resets)
    x2 = x.clone()
    x2[:3] = torch.randn(3, b, 4)  # different history before the reset
    y2, _ = core.unroll(x2, torch.randn(b, core.state_size), resets)
    assert not torch.allclose(y1[:3], y2[:3])
    torch.testing.assert_close(y1[3:], y2[3:])
    # After a reset the output is the same as starting from zeros.
    y3, _ = core.unroll(x[3:], torch.zeros(b, core.state_size), torch.zeros(t - 3, b, dtype=torch.bool))
    torch.testing.assert_close(y1[3:], y3)


def test_no_core_passes_through():
    core = Core("none", 4, 5)
    x = torch.randn(3, 2, 4)
    assert core.state_size == 0 and core.initial_state(2) is None
    y, state = core.unroll(x, None, torch.zeros(3, 2, dtype=torch.bool))
    assert y is x and state is None


# -- distributions ---------------------------------------------------------------------------------------


def test_categorical_and_multidiscrete_match_torch():
    torch.manual_seed(0)
    spec = ActionSpec.from_space(spaces.MultiDiscrete([3, 3, 4]))
    assert (spec.num_params, spec.action_dim, spec.dtype) == (10, 3, np.int64)
    params = torch.randn(4, 5, 10)  # leading [T, B]
    dist = spec.distribution(params)
    actions = dist.sample()
    assert actions.shape == (4, 5, 3) and actions.dtype == torch.int64
    refs = [torch.distributions.Categorical(logits=params[..., s:e]) for s, e in ((0, 3), (3, 6), (6, 10))]
    torch.testing.assert_close(
        dist.log_prob(actions), sum(r.log_prob(actions[..., i]) for i, r in enumerate(refs))
    )
    torch.testing.assert_close(dist.entropy(), sum(r.entropy() for r in refs))
    torch.testing.assert_close(dist.mode(), torch.stack([r.logits.argmax(-1) for r in refs], -1))


def test_gaussian_and_mixed_tuple_match_torch():
    torch.manual_seed(0)
    box = spaces.Box(-1.0, 1.0, (2,), np.float32)
    spec = ActionSpec.from_space(spaces.Tuple((spaces.Discrete(3), box)))
    assert (spec.num_params, spec.action_dim, spec.gaussian_dim, spec.dtype) == (5, 3, 2, np.float32)
    np.testing.assert_array_equal(spec.low, [0, -1, -1])
    np.testing.assert_array_equal(spec.high, [2, 1, 1])
    params, log_std = torch.randn(6, 5), torch.randn(2)
    dist = spec.distribution(params, log_std)
    actions = dist.sample()
    cat = torch.distributions.Categorical(logits=params[:, :3])
    normal = torch.distributions.Independent(torch.distributions.Normal(params[:, 3:], log_std.exp()), 1)
    ref_logp = cat.log_prob(actions[:, 0].long()) + normal.log_prob(actions[:, 1:])
    torch.testing.assert_close(dist.log_prob(actions), ref_logp)
    torch.testing.assert_close(dist.entropy(), cat.entropy() + normal.entropy())
    torch.testing.assert_close(dist.mode()[:, 1:], params[:, 3:])


ROUND_TRIP_SPACES = [
    spaces.Discrete(5, start=2),
    spaces.MultiDiscrete([3, 2, 4]),
    spaces.Box(-2.0, 3.0, (2, 2), np.float32),
    spaces.Tuple((spaces.Discrete(3), spaces.MultiDiscrete([2, 5]), spaces.Box(-1, 1, (3,)))),
    spaces.Dict(
        {"move": spaces.Discrete(3), "turn": spaces.Box(-1, 1, (1,)), "buttons": spaces.MultiBinary(2)}
    ),
]


def _assert_same_action(a, b):
    if isinstance(a, tuple):
        assert isinstance(b, tuple) and len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _assert_same_action(x, y)
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys()
        for k in a:
            _assert_same_action(a[k], b[k])
    else:
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6)
        assert np.asarray(a).shape == np.asarray(b).shape


@pytest.mark.parametrize("space", ROUND_TRIP_SPACES, ids=lambda s: type(s).__name__)
def test_to_env_round_trip(space):
    space.seed(0)
    spec = ActionSpec.from_space(space)
    natives = [space.sample() for _ in range(4)]
    rows = np.stack([spec.from_env(a) for a in natives])
    assert rows.shape == (4, spec.action_dim) and rows.dtype == spec.dtype
    for native, back in zip(natives, spec.to_env_batch(rows), strict=True):
        _assert_same_action(native, back)
        assert space.contains(back)
    if isinstance(space, spaces.Discrete):
        assert isinstance(spec.to_env(rows[0]), int)


def test_to_env_clips_box_actions_to_bounds():
    spec = ActionSpec.from_space(spaces.Box(-1.0, 1.0, (2,), np.float32))
    np.testing.assert_array_equal(spec.to_env(np.array([3.0, -0.5], np.float32)), [1.0, -0.5])


# -- normalizer ------------------------------------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(sizes=st.lists(st.integers(1, 20), min_size=1, max_size=5), seed=st.integers(0, 2**16))
def test_running_mean_std_matches_numpy(sizes, seed):
    rng = np.random.default_rng(seed)
    batches = [rng.normal(3.0, 2.0, size=(n, 2, 3)) for n in sizes]
    rms = RunningMeanStd((2, 3))
    for b in batches:
        rms.update(torch.as_tensor(b, dtype=torch.float32))
    data = np.concatenate(batches).astype(np.float32).astype(np.float64)
    # Batch moments are taken in float32 (the input's precision), so agreement is to float32's ~1e-6 relative
    # error per batch; a wrong merge is off by O(1).
    np.testing.assert_allclose(rms.mean.numpy(), data.mean(0), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(rms.var.numpy(), data.var(0), rtol=1e-5, atol=1e-5)
    assert rms.count.item() == len(data)


def test_normalize_denormalize_and_disabled():
    rms = RunningMeanStd((1,), clip=5.0)
    rms.update(torch.tensor([[1.0], [3.0], [5.0]]))
    x = torch.tensor([[2.0], [4.0]])
    y = rms.normalize(x)
    torch.testing.assert_close(y, (x - 3.0) / np.sqrt(8 / 3 + 1e-5))
    torch.testing.assert_close(rms.denormalize(y), x)
    assert rms.normalize(torch.tensor([[1e6]])).item() == 5.0
    off = RunningMeanStd((1,), enabled=False)
    off.update(torch.tensor([[10.0]]))
    assert off.count.item() == 0 and off.normalize(x) is x and off.denormalize(x) is x


# -- actor-critic ----------------------------------------------------------------------------------------


def _model(core: str, action_space: spaces.Space) -> tuple[ActorCritic, spaces.Dict]:
    obs_space = spaces.Dict({"screen": spaces.Box(0, 255, (3, 36, 36), np.uint8), "vec": VECTOR})
    cfg = ModelConfig(core=core, core_size=16, mlp_layers=[16], conv_fc_size=16)
    return ActorCritic(obs_space, action_space, cfg), obs_space


def _obs(obs_space: spaces.Dict, *lead: int) -> dict[str, torch.Tensor]:
    rng = np.random.default_rng(1)
    return {
        "screen": torch.as_tensor(rng.integers(0, 256, (*lead, 3, 36, 36), dtype=np.uint8)),
        "vec": torch.as_tensor(rng.uniform(-1, 1, (*lead, 5)).astype(np.float32)),
    }


@pytest.mark.parametrize("core", ["none", "gru", "lstm"])
def test_act_and_evaluate_agree(core):
    torch.manual_seed(0)
    action_space = spaces.Tuple((spaces.Discrete(3), spaces.Box(-1, 1, (2,), np.float32)))
    model, obs_space = _model(core, action_space)
    t, b = 5, 3
    obs = _obs(obs_space, t + 1, b)
    model.update_obs_normalizer(obs)
    model.returns_normalizer.update(torch.tensor([[2.0], [6.0], [-1.0]]))
    assert model.obs_preprocessor.normalizers["screen"].count.item() == (t + 1) * b
    resets = torch.zeros(t + 1, b, dtype=torch.bool)
    resets[2, 0] = resets[3, 1] = True  # episodes that start inside the chunk

    state0 = model.initial_state(b)
    if state0 is not None:
        state0 = torch.randn_like(state0)
    state, actions, logps, values = state0, [], [], []
    for step in range(t + 1):
        if state is not None:
            state = torch.where(resets[step].unsqueeze(-1), torch.zeros_like(state), state)
        a, logp, v, state = model.act({k: x[step] for k, x in obs.items()}, state)
        assert a.shape == (b, 3) and a.dtype == torch.float32 and logp.shape == v.shape == (b,)
        actions.append(a), logps.append(logp), values.append(v)

    out = model.evaluate(obs, state0, resets, torch.stack(actions[:t]))
    assert out["logp"].shape == out["entropy"].shape == (t, b) and out["values"].shape == (t + 1, b)
    torch.testing.assert_close(out["logp"], torch.stack(logps[:t]), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(
        model.returns_normalizer.denormalize(out["values"]), torch.stack(values), rtol=1e-5, atol=1e-5
    )
    out["logp"].sum().backward()  # evaluate keeps the graph for the loss
    assert model.action_head.linear.weight.grad is not None


def test_separate_bodies_train_the_critic_without_touching_the_actor():
    """model.share_weights=false: the value loss reaches only the critic's encoder, the policy loss only the
    actor's, and acting and evaluating still agree."""
    torch.manual_seed(0)
    obs_space = spaces.Dict({"vec": VECTOR})
    model = ActorCritic(obs_space, spaces.Box(-1, 1, (2,), np.float32),
                        ModelConfig(mlp_layers=[16], share_weights=False))
    obs = {"vec": torch.as_tensor(np.random.default_rng(1).uniform(-1, 1, (4, 3, 5)).astype(np.float32))}
    a, logp, v, _ = model.act({"vec": obs["vec"][0]}, None)
    out = model.evaluate(obs, None, torch.zeros(4, 3, dtype=torch.bool), a.expand(3, 3, 2))
    torch.testing.assert_close(model.returns_normalizer.denormalize(out["values"][0]), v)
    out["values"].sum().backward()
    actor_grads = [p.grad for p in model.encoder.parameters()]
    assert all(g is None for g in actor_grads) and all(p.grad is not None for p in model.critic_encoder.parameters())
    model.zero_grad()
    out["logp"].sum().backward()
    assert all(p.grad is None or not p.grad.any() for p in model.critic_encoder.parameters())
    assert any(p.grad is not None and p.grad.any() for p in model.encoder.parameters())


def test_init_gains_scale_the_hidden_layers_and_the_policy_head():
    """PPO's init (sqrt(2) hidden, 0.01 on the policy's last layer): the first action means start near 0."""
    obs_space = spaces.Dict({"vec": VECTOR})
    action = spaces.Box(-1, 1, (2,), np.float32)
    torch.manual_seed(0)
    default = ActorCritic(obs_space, action, ModelConfig(mlp_layers=[16]))
    torch.manual_seed(0)
    ppo = ActorCritic(obs_space, action, ModelConfig(mlp_layers=[16], init_gain=2 ** 0.5, policy_head_gain=0.01))
    # Orthogonal rows (or columns) have norm = gain: the singular values are all the gain.
    for model, hidden, head in ((default, 1.0, 1.0), (ppo, 2 ** 0.5, 0.01)):
        first = next(m for m in model.encoder.modules() if isinstance(m, torch.nn.Linear))
        assert torch.linalg.svdvals(first.weight).max().item() == pytest.approx(hidden, rel=1e-4)
        assert torch.linalg.svdvals(model.action_head.linear.weight).max().item() == pytest.approx(head, rel=1e-4)
        assert torch.linalg.svdvals(model.critic.weight).max().item() == pytest.approx(1.0, rel=1e-4)


@pytest.mark.parametrize("core", ["gru", "lstm"])
def test_separate_recurrent_bodies_carry_both_states_and_keep_their_gradients_apart(core):
    """share_weights=false with a core: the critic has a core of its own, its state rides after the actor's,
    stepping one at a time gives what the unroll gives, and the value loss never reaches the actor's core."""
    torch.manual_seed(0)
    obs_space = spaces.Dict({"vec": VECTOR})
    model = ActorCritic(obs_space, spaces.Discrete(3), ModelConfig(mlp_layers=[16], core=core, core_size=8,
                                                                    share_weights=False))
    assert model.state_size == 2 * model.core.state_size
    obs = {"vec": torch.as_tensor(np.random.default_rng(2).uniform(-1, 1, (5, 2, 5)).astype(np.float32))}
    resets = torch.zeros(5, 2, dtype=torch.bool)
    resets[2, 1] = True
    state, values, actions = model.initial_state(2), [], []
    for t in range(5):
        if resets[t].any():
            state = torch.where(resets[t].unsqueeze(-1), torch.zeros_like(state), state)
        a, _, v, state = model.act({"vec": obs["vec"][t]}, state)
        values.append(v)
        actions.append(a)
    out = model.evaluate(obs, model.initial_state(2), resets, torch.stack(actions[:-1]))
    torch.testing.assert_close(model.returns_normalizer.denormalize(out["values"]), torch.stack(values),
                               rtol=1e-5, atol=1e-5)
    out["values"].sum().backward()
    assert all(p.grad is None for p in model.core.parameters())
    assert all(p.grad is not None for p in model.critic_core.parameters())


def test_initial_state_and_deterministic_act():
    model, obs_space = _model("none", spaces.Discrete(4))
    assert model.initial_state(3) is None and model.state_size == 0
    obs = _obs(obs_space, 3)
    a1, _, _, state = model.act(obs, None, deterministic=True)
    a2, _, _, _ = model.act(obs, None, deterministic=True)
    assert state is None and a1.dtype == torch.int64 and torch.equal(a1, a2)
    gru, _ = _model("gru", spaces.Discrete(4))
    assert gru.initial_state(3).shape == (3, 16) and not gru.initial_state(3).any()


def test_numpy_state_dict_round_trip():
    torch.manual_seed(0)
    model, obs_space = _model("lstm", spaces.Box(-1, 1, (2,), np.float32))
    obs = _obs(obs_space, 4)
    model.update_obs_normalizer(obs)
    model.returns_normalizer.update(torch.tensor([[1.0], [4.0]]))
    state = numpy_state_dict(model)
    assert all(isinstance(v, np.ndarray) for v in state.values())
    for v in state.values():
        v.setflags(write=False)  # as read zero-copy from Ray's object store
    with torch.no_grad():
        model.critic.weight.add_(1.0)  # the published copy must not follow later training
    assert not np.allclose(state["critic.weight"], model.critic.weight.detach().numpy())

    torch.manual_seed(1)
    other, _ = _model("lstm", spaces.Box(-1, 1, (2,), np.float32))
    load_numpy_state_dict(other, state)
    load_numpy_state_dict(model, state)
    for k, v in other.state_dict().items():
        torch.testing.assert_close(v, model.state_dict()[k])
    a, logp, v1, _ = model.act(obs, None, deterministic=True)
    a2, logp2, v2, _ = other.act(obs, None, deterministic=True)
    torch.testing.assert_close((a, logp, v1), (a2, logp2, v2))


def test_preprocess_for_training_equals_the_raw_path_and_updates_from_masked_rows_only():
    torch.manual_seed(0)
    model, obs_space = _model("gru", spaces.Discrete(3))
    t, b = 4, 3
    obs = _obs(obs_space, t + 1, b)
    mask = torch.zeros(t, b, dtype=torch.bool)
    mask[:, 0] = True  # only column 0's first t rows update the statistics
    reference, _ = _model("gru", spaces.Discrete(3))
    reference.load_state_dict(model.state_dict())
    reference.update_obs_normalizer({k: v[:-1][mask] for k, v in obs.items()})

    pre = model.preprocess_for_training(obs, mask)
    assert model.obs_preprocessor.normalizers["screen"].count.item() == t
    for name, buf in model.obs_preprocessor.state_dict().items():
        torch.testing.assert_close(buf, reference.obs_preprocessor.state_dict()[name], rtol=1e-5, atol=1e-6)
    resets, actions = torch.zeros(t + 1, b, dtype=torch.bool), torch.zeros(t, b, 1, dtype=torch.int64)
    fast = model.evaluate(pre, None, resets, actions, preprocessed=True)
    slow = reference.evaluate(obs, None, resets, actions)
    for k in ("logp", "entropy", "values"):
        torch.testing.assert_close(fast[k], slow[k], rtol=1e-4, atol=1e-4)
    assert obs["screen"].dtype == torch.uint8  # the caller's tensors are untouched


def test_bfloat16_body_keeps_heads_in_float32_and_stays_close():
    torch.manual_seed(0)
    model, obs_space = _model("lstm", spaces.Discrete(4))
    obs = _obs(obs_space, 6)
    model.update_obs_normalizer(obs)
    _, logp32, v32, s32 = model.act(obs, None, deterministic=True)
    model.body_dtype = torch.bfloat16
    a16, logp16, v16, s16 = model.act(obs, None, deterministic=True)
    assert logp16.dtype == v16.dtype == s16.dtype == torch.float32
    # bfloat16 keeps ~3 significant digits in the body; the heads turn that into small differences.
    torch.testing.assert_close(logp16, logp32, atol=0.05, rtol=0.05)
    torch.testing.assert_close(v16, v32, atol=0.05, rtol=0.05)
    out = model.evaluate({k: v[None].expand(2, *v.shape) for k, v in obs.items()}, None,
                         torch.zeros(2, 6, dtype=torch.bool), a16[None])
    assert out["logp"].dtype == torch.float32
    out["logp"].sum().backward()
    assert model.encoder.encoders["screen"].conv[0].weight.grad is not None


def test_policy_runner_in_bfloat16_keeps_body_weights_in_bfloat16_across_versions():
    from asyncrl.data import Weights
    from asyncrl.inference.policy_runner import PolicyRunner

    model, obs_space = _model("gru", spaces.Discrete(4))
    runner = PolicyRunner(obs_space, spaces.Discrete(4), ModelConfig(core="gru", core_size=16, mlp_layers=[16],
                                                                      conv_fc_size=16), precision="bf16")
    runner.set_weights(Weights(0, 1, numpy_state_dict(model)))
    net = runner.models[0]
    assert net.core.rnn.weight_hh_l0.dtype == torch.bfloat16 and net.critic.weight.dtype == torch.float32
    torch.testing.assert_close(net.critic.weight, model.critic.weight)
    out = runner.infer(0, {k: v.numpy() for k, v in _obs(obs_space, 3).items()}, np.zeros((3, 16), np.float32))
    assert out.actions.shape == (3, 1) and out.rnn_state.dtype == np.float32 and out.version == 1


def test_a_policy_runner_refuses_to_act_before_its_weights_arrive():
    """A (re)started copy has random weights until the driver's arrive: acting with them would feed the learner
    a random policy's experience, so it says what is missing instead."""
    from asyncrl.data import Weights
    from asyncrl.inference.policy_runner import MissingWeights, PolicyRunner

    model, obs_space = _model("gru", spaces.Discrete(4))
    runner = PolicyRunner(obs_space, spaces.Discrete(4), ModelConfig(core="gru", core_size=16, mlp_layers=[16],
                                                                      conv_fc_size=16), policy_ids=(0, 1))
    obs = {k: v.numpy() for k, v in _obs(obs_space, 2).items()}
    assert runner.missing() == [0, 1]
    with pytest.raises(MissingWeights, match="policy 0"):
        runner.infer(0, obs, np.zeros((2, 16), np.float32))
    runner.set_weights(Weights(0, 0, numpy_state_dict(model)))
    assert runner.missing() == [1]
    assert runner.infer(0, obs, np.zeros((2, 16), np.float32)).version == 0


def test_symmetric_kl_to_uniform_is_zero_at_uniform_and_matches_the_formula():
    spec = ActionSpec.from_space(spaces.Tuple((spaces.Discrete(3), spaces.MultiDiscrete([4, 4]))))
    assert spec.distribution(torch.zeros(2, spec.num_params)).symmetric_kl_to_uniform().abs().max() < 1e-6
    params = torch.randn(5, spec.num_params, generator=torch.Generator().manual_seed(0))
    expected = torch.zeros(5)
    for lo, n in ((0, 3), (3, 4), (7, 4)):  # each categorical: 0.5 * (KL(p||u) + KL(u||p))
        p = params[:, lo:lo + n].softmax(-1)
        u = torch.full_like(p, 1.0 / n)
        expected += 0.5 * ((p * (p / u).log()).sum(-1) + (u * (u / p).log()).sum(-1))
    torch.testing.assert_close(spec.distribution(params).symmetric_kl_to_uniform(), expected)
    gaussian = ActionSpec.from_space(spaces.Box(-1, 1, (2,), np.float32))
    with pytest.raises(ValueError, match="symmetric_kl needs discrete actions"):
        gaussian.distribution(torch.zeros(1, gaussian.num_params), torch.zeros(2)).symmetric_kl_to_uniform()
