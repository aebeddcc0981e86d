"""The sampler's trajectories: shapes, flags, bootstrap values, RNN state at chunk start, episode stats."""

from functools import partial

import numpy as np

from asyncrl.config.schema import EnvConfig
from asyncrl.data import PolicyOutput
from asyncrl.sampling.sampler import Sampler
from tests.toy_envs import make_counting


class FakeClient:
    """Action = 0; value = 10 * obs (so a bootstrap value is recognisable); state = state + 1."""

    def __init__(self, version: int = 7):
        self.version, self.calls = version, 0

    def submit(self, policy_id, obs, rnn_state):
        self.calls += 1
        x = obs["obs"][:, 0]
        state = None if rnn_state is None else rnn_state + 1.0
        return PolicyOutput(np.zeros((len(x), 1), np.int64), np.full(len(x), -0.5, np.float32),
                            (10 * x).astype(np.float32), state, self.version)

    def result(self, handle):
        return handle


def _sampler(terminate_at, truncate_at, num_envs=4, rollout=8, state_size=0, **kwargs):
    cfg = EnvConfig(name="count", factory="tests.toy_envs:make_counting",
                    kwargs={"terminate_at": terminate_at, "truncate_at": truncate_at})
    return Sampler(partial(make_counting, cfg), num_envs, rollout, FakeClient(), state_size, **kwargs)


def test_chunk_shapes_and_obs_continuity():
    sampler = _sampler(terminate_at=100, truncate_at=1000)
    (first,), meta = sampler.collect()
    first.validate()
    assert first.obs["obs"].shape == (9, 4, 1) and first.actions.shape == (8, 4, 1)
    assert meta.steps_per_policy == {0: 32}
    np.testing.assert_array_equal(first.obs["obs"][:, 0, 0], np.arange(9))
    (second,), _ = sampler.collect()
    # The bootstrap row of one chunk is the first observation of the next.
    np.testing.assert_array_equal(second.obs["obs"][0], first.obs["obs"][8])
    assert (first.policy_versions == 7).all() and (first.behaviour_logp == -0.5).all()
    np.testing.assert_allclose(first.behaviour_values[:, 0], 10 * np.arange(8))


def test_termination_has_no_bootstrap_and_resets_the_env():
    sampler = _sampler(terminate_at=3, truncate_at=1000)
    (traj,), meta = sampler.collect()
    assert traj.terminated[:, 0].tolist() == [False, False, True, False, False, True, False, False]
    assert not traj.truncated.any() and not traj.final_values.any()
    # After a terminal step the next observation is the reset one.
    assert traj.obs["obs"][3, 0, 0] == 0.0
    assert len(meta.episodes) == 2 * 4
    assert all(ep.ret == 3.0 and ep.length == 3 and ep.extra == {"last_action": 0.0} for ep in meta.episodes)


def test_truncation_bootstraps_from_the_final_observation_value():
    sampler = _sampler(terminate_at=1000, truncate_at=5)
    (traj,), _ = sampler.collect()
    assert traj.truncated[4].all() and not traj.terminated.any()
    # The final observation is 5, so the fake critic's value is 50; the next obs row is the reset (0).
    np.testing.assert_allclose(traj.final_values[4], 50.0)
    assert (traj.final_values[np.arange(8) != 4] == 0).all()
    assert (traj.obs["obs"][5, :, 0] == 0).all()


def test_without_bootstrapping_a_truncation_asks_inference_for_no_final_value():
    asked = {}
    for bootstrap in (True, False):
        sampler = _sampler(terminate_at=1000, truncate_at=5, bootstrap_truncated=bootstrap)
        (traj,), _ = sampler.collect()
        asked[bootstrap] = sampler.client.calls
        assert traj.truncated[4].all() and traj.final_values[4].any() == bootstrap
    assert asked[False] < asked[True]


def test_rnn_state_is_recorded_at_chunk_start_and_reset_at_episode_start():
    sampler = _sampler(terminate_at=10, truncate_at=1000, state_size=2)
    (first,), _ = sampler.collect()
    np.testing.assert_array_equal(first.rnn_state, np.zeros((4, 2)))
    (second,), _ = sampler.collect()
    # The fake core adds 1 per step: 8 steps into the episode at the second chunk's start.
    np.testing.assert_array_equal(second.rnn_state, np.full((4, 2), 8.0))
    (third,), _ = sampler.collect()
    # Episodes of 10 steps ended at step 10 (second chunk, t=1); 6 steps of the new episode since.
    np.testing.assert_array_equal(third.rnn_state, np.full((4, 2), 6.0))


def test_two_groups_cover_all_envs():
    sampler = _sampler(terminate_at=100, truncate_at=1000, num_envs=5)
    assert [len(g.envs) for g in sampler.groups] == [3, 2]
    (traj,), _ = sampler.collect()
    assert traj.num_envs == 5


def test_one_group_steps_every_env_as_one_batch():
    cfg = EnvConfig(name="count", factory="tests.toy_envs:make_counting", kwargs={"terminate_at": 3, "truncate_at": 1000})
    client = FakeClient()
    sampler = Sampler(partial(make_counting, cfg), 5, 8, client, 0, num_groups=1)
    assert [len(g.envs) for g in sampler.groups] == [5]
    (traj,), meta = sampler.collect()
    assert traj.num_envs == 5 and meta.steps_per_policy == {0: 40}
    assert traj.terminated[:, 0].tolist() == [False, False, True, False, False, True, False, False]
    assert client.calls == 1 + 8  # the first request at start, then one per step for all five envs


def test_collect_reports_where_its_time_went():
    sampler = _sampler(terminate_at=3, truncate_at=1000)
    _, meta = sampler.collect()
    assert set(meta.timing) >= {"env", "inference", "other"} and "idle" not in meta.timing
    assert all(s >= 0 for s in meta.timing.values())
    _, meta = sampler.collect()
    assert meta.timing["idle"] >= 0  # from the end of the first collect to the start of the second


class _BackgroundCounting:
    """A one-agent env that steps in the background (``step_async``/``step_wait``) and logs its calls."""

    num_agents = 1

    def __init__(self, name: str, log: list):
        import gymnasium as gym

        self.name, self.log, self.t, self._action = name, log, 0, None
        self.observation_space = gym.spaces.Box(-1e6, 1e6, shape=(1,), dtype=np.float32)
        self.action_space = gym.spaces.Discrete(2)

    def reset(self, seed=None):  # noqa: ARG002
        self.t = 0
        return [np.zeros(1, dtype=np.float32)], [{}]

    def step_async(self, actions):
        self.log.append(("start", self.name))
        self._action = int(actions[0])

    def step_wait(self):
        self.log.append(("wait", self.name))
        self.t += 1
        return [np.full(1, self.t, dtype=np.float32)], [float(self._action)], [False], [False], [{}]

    def step(self, actions):
        self.step_async(actions)
        return self.step_wait()

    def close(self):
        pass


def test_env_group_starts_every_background_env_before_it_reads_any():
    """Envs with step_async (VizDoom matches) all start their step first, so their simulators overlap; each
    still gets its own action and returns its own result."""
    from asyncrl.sampling.env_group import EnvGroup

    log: list = []
    group = EnvGroup(lambda i: _BackgroundCounting(f"env{i}", log), [0, 1, 2], [0, 1, 2])
    group.reset()
    res = group.step(np.array([1, 0, 1]))
    assert log == [("start", "env0"), ("start", "env1"), ("start", "env2"),
                   ("wait", "env0"), ("wait", "env1"), ("wait", "env2")]
    assert res.rewards.tolist() == [1.0, 0.0, 1.0]
    assert res.obs["obs"][:, 0].tolist() == [1.0, 1.0, 1.0]
