"""Populations in the sampler and the runtimes: slots mapped to policies, masks, per-policy output, PBT."""

import json
from functools import partial
from types import SimpleNamespace

import gymnasium as gym
import numpy as np
import pytest
import torch

from asyncrl.config.loader import load_config
from asyncrl.data import PolicyOutput
from asyncrl.learning.learner import Learner
from asyncrl.models.actor_critic import ActorCritic
from asyncrl.outputs.checkpoint import CheckpointManager
from asyncrl.sampling.policy_mapping import OPPONENT_ID_BASE, PolicyMapping
from asyncrl.sampling.sampler import Sampler
from asyncrl.training.trainer import train
from asyncrl_envs.pettingzoo_env import PettingZooAdapter
from tests.toy_envs import CardDuel, card_duel_payoff, make_counting

QUIET = ["logging.wandb=disabled", "logging.tensorboard=false"]


class PolicyEchoClient:
    """Action = 1; value = the policy id (so each slot's value says who played it); records requests."""

    def __init__(self):
        self.requests = []

    def submit(self, policy_id, obs, rnn_state):
        n = len(next(iter(obs.values())))
        self.requests.append((policy_id, n))
        return PolicyOutput(np.ones((n, 1), np.int64), np.zeros(n, np.float32), np.full(n, policy_id, np.float32),
                            None if rnn_state is None else rnn_state, 100 + policy_id)

    def result(self, handle):
        return handle


class EarlyExitDuel(CardDuel):
    """CardDuel in which p1 leaves after ``exit_at`` rounds while p0 plays on (PettingZoo removes it)."""

    def __init__(self, rounds=6, exit_at=2):
        super().__init__(rounds)
        self.exit_at = exit_at

    def step(self, actions):
        live = list(self.agents)
        obs, rewards, terms, truncs, infos = super().step({a: actions.get(a, 0) for a in self.possible_agents})
        if self._t == self.exit_at:
            terms["p1"] = True
        keep = [a for a in live if not terms.get(a) and a in live] if self._t < self.rounds else []
        rewards = {a: r for a, r in rewards.items() if a in live}
        self.agents = keep
        return ({a: o for a, o in obs.items() if a in live}, rewards, {a: t for a, t in terms.items() if a in live},
                {a: t for a, t in truncs.items() if a in live}, {a: i for a, i in infos.items() if a in live})


def _duel_sampler(client, population=2, num_envs=4, rollout=10, env_cls=CardDuel, **kw):
    return Sampler(lambda i: PettingZooAdapter(env_cls()), num_envs, rollout, client, 0, population_size=population,
                   **kw)


def test_each_slot_is_played_by_its_mapped_policy_and_each_policy_gets_its_steps():
    client = PolicyEchoClient()
    sampler = _duel_sampler(client, population=2, num_envs=4, rollout=25)
    trajectories, meta = sampler.collect()
    assert sampler.num_slots == 8 and {t.policy_id for t in trajectories} <= {0, 1}
    total = 0
    for traj in trajectories:
        traj.validate()
        mine = np.ones(traj.rewards.shape, bool) if traj.valid is None else traj.valid
        # The fake critic returns the policy id: every valid step was played by this trajectory's policy.
        assert (traj.behaviour_values[mine] == traj.policy_id).all()
        assert (traj.policy_versions[mine] == 100 + traj.policy_id).all()
        assert meta.steps_per_policy[traj.policy_id] == mine.sum()
        total += mine.sum()
    assert total == 8 * 25  # every slot-step belongs to exactly one policy
    # 10-round episodes, 25 steps: every env ended 2 episodes, each a redraw of its slots.
    assert len(meta.episodes) == 2 * 8 and all(e.length == 10 for e in meta.episodes)
    assert all(e.policy_id in (0, 1) for e in meta.episodes)


def test_an_agent_that_leaves_early_waits_in_masked_terminal_steps():
    client = PolicyEchoClient()
    sampler = _duel_sampler(client, population=1, num_envs=1, rollout=6,
                            env_cls=partial(EarlyExitDuel, rounds=6, exit_at=2))
    (traj,), meta = sampler.collect()
    # Slot 1 (p1) plays 2 steps, then waits 4 steps while p0 finishes its 6 rounds.
    assert traj.valid[:, 1].tolist() == [True, True, False, False, False, False]
    assert traj.terminated[:, 1].tolist() == [False, True, True, True, True, True]
    assert traj.valid[:, 0].all() and traj.terminated[:, 0].tolist() == [False] * 5 + [True]
    assert sorted(e.length for e in meta.episodes) == [2, 6]
    assert meta.steps_per_policy == {0: 8}


def test_single_agent_envs_are_dealt_to_policies_once():
    cfg = SimpleNamespace(kwargs={"terminate_at": 3, "truncate_at": 100})
    client = PolicyEchoClient()
    sampler = Sampler(partial(make_counting, cfg), 6, 4, client, 0, sampler_index=1, population_size=4)
    # This sampler's envs are global envs 6..11: policies 2, 3, 0, 1, 2, 3.
    assert sampler.mapping.policy_of.tolist() == [2, 3, 0, 1, 2, 3]
    trajectories, meta = sampler.collect()
    by_policy = {t.policy_id: t for t in trajectories}
    assert sorted(by_policy) == [0, 1, 2, 3]
    assert all(t.valid is None for t in trajectories)  # whole columns, no mask
    assert by_policy[2].num_envs == 2 and by_policy[0].num_envs == 1
    assert meta.steps_per_policy == {0: 4, 1: 4, 2: 8, 3: 8}


def test_draws_per_sampler_line_up_across_its_envs_and_stay_uniform():
    """draw_per=sampler: every env's n-th episode gets the sampler's n-th draw, whichever env ends first; over
    many draws each seat still sees every policy about equally. Per env (the default) the envs differ."""
    mapping = PolicyMapping(num_envs=3, num_agents=2, population_size=4, seed=3, draw_per="sampler")
    seen = []
    for _ in range(400):
        for env in (2, 0, 1):  # not in slot order: the draw follows the episode number, not who asks first
            mapping.episode_ended(env)
        rows = mapping.policy_of.reshape(3, 2)
        assert (rows == rows[0]).all(), rows
        seen.append(rows[0].copy())
    assert len(mapping._shared) == 1  # draws every env is past are dropped
    counts = np.bincount(np.concatenate(seen), minlength=4) / (2 * len(seen))
    assert np.all(np.abs(counts - 0.25) < 0.05), counts
    mapping.episode_ended(0)  # env 0 runs ahead: env 1 gets the same draw when it gets there
    ahead = mapping.policy_of[0:2].copy()
    mapping.episode_ended(1)
    assert (mapping.policy_of[2:4] == ahead).all()

    per_env = PolicyMapping(num_envs=3, num_agents=2, population_size=4, seed=3)
    differ = 0
    for _ in range(50):
        for env in range(3):
            per_env.episode_ended(env)
        differ += not (per_env.policy_of.reshape(3, 2) == per_env.policy_of[:2]).all()
    assert differ > 40
    with pytest.raises(ValueError, match="draw_per"):
        PolicyMapping(num_envs=3, num_agents=2, population_size=4, draw_per="match")

    # A snapshot that leaves the pool is replaced in the shared draws too, by one stand-in for all their envs.
    pooled = PolicyMapping(num_envs=3, num_agents=2, population_size=2, opponent_rate=1.0, seed=4,
                           draw_per="sampler")
    pooled.set_opponents([OPPONENT_ID_BASE, OPPONENT_ID_BASE + 1, OPPONENT_ID_BASE + 2])
    for _ in range(20):
        pooled.episode_ended(0)  # env 0 runs ahead: the draws it made wait in the shared store for envs 1, 2
    dropped = int(pooled.policy_of[1])
    pooled.set_opponents([p for p in pooled.opponents if p != dropped])
    for env in (1, 2):
        for _ in range(20):
            pooled.episode_ended(env)
        assert dropped not in pooled.policy_of
    assert (pooled.policy_of.reshape(3, 2) == pooled.policy_of[:2]).all()


def test_opponent_snapshots_play_slots_but_are_never_trained():
    mapping = PolicyMapping(num_envs=200, num_agents=2, population_size=2, opponent_rate=0.5, seed=1)
    mapping.set_opponents([OPPONENT_ID_BASE, OPPONENT_ID_BASE + 1])
    for env in range(200):
        mapping.episode_ended(env)
    first, second = mapping.policy_of[0::2], mapping.policy_of[1::2]
    assert (first < OPPONENT_ID_BASE).all()  # slot 0 always trains somebody
    share = (second >= OPPONENT_ID_BASE).mean()
    assert 0.35 < share < 0.65
    mapping.set_opponents([OPPONENT_ID_BASE + 1])  # snapshot 1000 left the pool: its slots are redrawn
    assert OPPONENT_ID_BASE not in mapping.policy_of

    client = PolicyEchoClient()
    sampler = _duel_sampler(client, population=1, num_envs=8, rollout=20, opponent_rate=1.0)
    sampler.set_opponents([OPPONENT_ID_BASE])
    trajectories, meta = sampler.collect()
    assert {t.policy_id for t in trajectories} == {0}
    assert any(pid == OPPONENT_ID_BASE for pid, _ in client.requests)
    assert all(e.policy_id == 0 for e in meta.episodes)


def test_serial_population_writes_per_policy_checkpoints_and_summary(tmp_path):
    cfg = load_config(["runtime=serial", "population.size=2", "runtime.num_samplers=1", "runtime.num_envs=4",
                       "algo.batch_size=256", "train.env_steps=3000", f"run_dir={tmp_path}",
                       "++population.policy_hyperparameters.1.lr=0.01", *QUIET])
    summary = train(cfg)
    assert summary["status"] == "completed"
    assert set(summary["policies"]) == {"0", "1"}
    assert all(p["episodes"] > 0 and p["env_steps"] >= 1000 for p in summary["policies"].values())
    state = CheckpointManager(tmp_path / "checkpoints", 3).load_latest()
    assert set(state["learners"]) == {0, 1}
    assert state["learners"][1]["hyperparameters"]["lr"] == pytest.approx(0.01)
    assert state["learners"][0]["hyperparameters"]["lr"] == pytest.approx(cfg.algo.lr)


def test_population_larger_than_the_envs_of_a_single_agent_env_is_refused(tmp_path):
    from asyncrl.runtime.checks import PopulationError

    cfg = load_config(["runtime=serial", "population.size=4", "runtime.num_samplers=1", "runtime.num_envs=2",
                       f"run_dir={tmp_path}", *QUIET])
    with pytest.raises(PopulationError, match="population.size=4"):
        train(cfg)


def test_pbt_log_and_resume_keep_the_population(tmp_path):
    args = ["runtime=serial", "population.size=3", "pbt.enabled=true", "pbt.period=1000", "pbt.start_after=1000",
            "pbt.mutation_rate=1.0", "runtime.num_samplers=1", "runtime.num_envs=6", "algo.rollout=32",
            "algo.batch_size=192", f"run_dir={tmp_path}", *QUIET]
    train(load_config([*args, "train.env_steps=8000"]))
    log = [json.loads(line) for line in (tmp_path / "pbt_log.jsonl").read_text().splitlines()]
    assert len(log) >= 3 and {d["policy"] for d in log} == {0, 1, 2}
    assert {d["role"] for d in log} <= {"best", "middle", "worst"}
    saved = CheckpointManager(tmp_path / "checkpoints", 3).load_latest()
    members = saved["population"]["pbt"]["members"]
    for pid in range(3):  # the learners hold the hyperparameters PBT gave them
        assert saved["learners"][pid]["hyperparameters"]["lr"] == pytest.approx(members[pid]["hyperparameters"]["lr"])
    summary = train(load_config([*args, "train.env_steps=12000"]))
    assert summary["env_steps"] >= 12000
    resumed = [json.loads(line) for line in (tmp_path / "pbt_log.jsonl").read_text().splitlines()]
    assert len(resumed) > len(log) and resumed[:len(log)] == log  # appended, not rewritten
    # The resumed decider knows when each policy was last updated: its next update waits a whole period.
    for pid in range(3):
        first_new = next(d for d in resumed[len(log):] if d["policy"] == pid)
        assert first_new["env_steps"] >= members[pid]["last_update"] + 1000


def _duel_spaces():
    return gym.spaces.Dict({"obs": gym.spaces.Box(0.0, 1.0, (6,), np.float32)}), gym.spaces.Discrete(2)


def _score_vs_random(learner_state: dict, cfg, rounds: int = 3000, seed: int = 0, always_bet: bool = False) -> float:
    """Mean reward per round of a policy (greedy, as player 0) against a uniformly random player 1, or against
    the scripted player that always bets (``always_bet``)."""
    model = ActorCritic(*_duel_spaces(), cfg.model)
    model.load_state_dict(learner_state["model"])
    rng = np.random.default_rng(seed)
    cards = rng.integers(0, 5, size=(rounds, 2))
    obs = np.zeros((rounds, 6), np.float32)
    obs[np.arange(rounds), cards[:, 0]] = 1.0
    obs[:, 5] = rng.integers(0, 10, size=rounds) / 10
    with torch.inference_mode():
        actions = model.act({"obs": torch.as_tensor(obs)}, None, deterministic=True)[0].numpy().reshape(-1)
    opponent = np.ones(rounds, np.int64) if always_bet else rng.integers(0, 2, size=rounds)
    return float(np.mean([card_duel_payoff(c0, c1, a, b) for (c0, c1), a, b in zip(cards, actions, opponent,
                                                                                      strict=True)]))


@pytest.mark.ray
@pytest.mark.slow
def test_self_play_with_pbt_on_ray_teaches_both_policies_to_beat_random_and_scripted_players(tmp_path):
    args = ["runtime=ray", "env=gym", "env.name=card_duel", "env.factory=asyncrl_envs.pettingzoo_env:make_env",
            "env.id=tests.toy_envs:card_duel_parallel_env", "population.size=2", "pbt.enabled=true",
            "pbt.period=5000", "pbt.start_after=5000", "pbt.replace_gap=0.5", "pbt.replace_gap_absolute=0.35",
            "runtime.num_samplers=2", "runtime.num_envs=4", "algo.rollout=10", "algo.batch_size=400",
            "algo.lr=1e-3", "algo.entropy_coeff=0.01", "model.mlp_layers=[32,32]", "train.env_steps=100000",
            f"run_dir={tmp_path}", *QUIET]
    cfg = load_config(args)
    summary = train(cfg)
    assert summary["status"] == "completed"
    # In a zero-sum game the return objective swings with who beat whom lately: SF's duel gaps keep PBT from
    # copying on every swing, and the budget lets both policies settle near the game's equilibrium (fold a 0,
    # bet the rest: 0.46 a round against random play).
    for pid in ("0", "1"):  # both policies played (each other, in both seats) and trained
        assert summary["policies"][pid]["env_steps"] > 25000 and summary["policies"][pid]["episodes"] > 100
    log = [json.loads(line) for line in (tmp_path / "pbt_log.jsonl").read_text().splitlines()]
    assert {d["policy"] for d in log} == {0, 1}
    saved = CheckpointManager(tmp_path / "checkpoints", 3).load_latest()
    untrained = _score_vs_random(Learner(0, *_duel_spaces(), cfg.model, cfg.algo).state_dict(), cfg)
    for pid in (0, 1):
        score = _score_vs_random(saved["learners"][pid], cfg)
        print(f"policy {pid}: {score:.3f} a round against random play (untrained: {untrained:.3f})")
        # Random play scores 0 a round, the best reply to it 0.5 and the strategies self-play settles on
        # 0.36-0.46 (folding a 0, sometimes a 1); an untrained net is near 0.
        assert score > 0.25 and score > untrained + 0.3, (pid, score, untrained)
        # The scripted player always bets: betting everything only draws with it (0), random play loses 0.5 a
        # round, and beating it takes what self-play found: folding the 0 (0.12 a round; folding the 1 too, 0.08).
        scripted, untrained_scripted = (_score_vs_random(state, cfg, always_bet=True)
                                        for state in (saved["learners"][pid], Learner(0, *_duel_spaces(), cfg.model,
                                                                                      cfg.algo).state_dict()))
        print(f"policy {pid}: {scripted:.3f} a round against the always-betting player "
              f"(untrained: {untrained_scripted:.3f})")
        assert scripted > 0.04 and scripted > untrained_scripted, (pid, scripted, untrained_scripted)


def test_play_match_reports_each_agent_of_a_zero_sum_game():
    from asyncrl.evaluation.matches import play_match

    env = PettingZooAdapter(CardDuel(rounds=10))
    model = ActorCritic(*_duel_spaces(), load_config(["model.mlp_layers=[8]"]).model)
    results = [play_match(env, [model, None], seed=s) for s in range(5)]
    for p0, p1 in results:
        assert p0["return"] == -p1["return"]  # zero-sum, every round counted for both
    assert len({r[0]["return"] for r in results}) > 1  # seeds differ
    assert play_match(env, [model, None], seed=3) == results[3]  # and repeat
