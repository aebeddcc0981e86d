"""Play a multi-agent env with one model (or a random player) per agent slot, for evaluation."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from asyncrl.env_api.multi_agent import ACTIVE, MultiAgentEnv
from asyncrl.evaluation.episodes import numeric_stats
from asyncrl.models.actor_critic import ActorCritic

AgentFrameHook = Callable[[int, dict], None]  # called with (agent, observation dict) for every observation


def play_match(env: MultiAgentEnv, players: list[ActorCritic | None], seed: int, greedy: bool = False,
               max_steps: int = 100_000, on_obs: AgentFrameHook | None = None) -> list[dict[str, float]]:
    """One episode; ``players[i]`` acts for agent ``i`` (None: uniformly random actions). Returns, per agent,
    its return, its length in steps and the numeric ``episode_stats`` of its last step. ``on_obs`` sees each
    agent's observations while it plays (its last one included)."""
    if len(players) != env.num_agents:
        raise ValueError(f"{len(players)} players for an env of {env.num_agents} agents")
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)  # sampled actions repeat with the seed
    env.action_space.seed(int(rng.integers(2**31)))
    obs, _ = env.reset(seed=seed)
    states = [None if p is None else p.initial_state(1) for p in players]
    results: list[dict[str, float] | None] = [None] * env.num_agents
    returns, lengths = np.zeros(env.num_agents), np.zeros(env.num_agents, dtype=np.int64)
    as_dict = [o if isinstance(o, dict) else {"obs": o} for o in obs]
    for _ in range(max_steps):
        if on_obs is not None:
            for i, o in enumerate(as_dict):
                if results[i] is None:
                    on_obs(i, o)
        actions = []
        for i, player in enumerate(players):
            if player is None:
                actions.append(env.action_space.sample())
                continue
            batch = {k: torch.as_tensor(np.asarray(v)[None]) for k, v in as_dict[i].items()}
            with torch.inference_mode():
                a, _, _, states[i] = player.act(batch, states[i], deterministic=greedy)
            actions.append(player.action_spec.to_env(a[0].numpy()))
        obs, rewards, terminated, truncated, infos = env.step(actions)
        as_dict = [o if isinstance(o, dict) else {"obs": o} for o in obs]
        for i in range(env.num_agents):
            if results[i] is not None or not infos[i].get(ACTIVE, True):
                continue
            returns[i] += rewards[i]
            lengths[i] += 1
            if terminated[i] or truncated[i]:
                if on_obs is not None:
                    on_obs(i, as_dict[i])
                results[i] = {"return": float(returns[i]), "length": float(lengths[i]), **numeric_stats(infos[i])}
        if all(r is not None for r in results):
            return results
    raise RuntimeError(f"the episode did not end within {max_steps} steps")
