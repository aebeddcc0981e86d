"""Play a multi-agent env with one model (or a random player) per agent slot, for evaluation."""

from __future__ import annotations

import numpy as np
import torch

from asyncrl.evaluation.episodes import numeric_stats
from asyncrl.models.actor_critic import ActorCritic
from asyncrl.sampling.multi_agent import ACTIVE, MultiAgentEnv


def play_match(env: MultiAgentEnv, players: list[ActorCritic | None], seed: int, greedy: bool = False,
               max_steps: int = 100_000) -> list[dict[str, float]]:
    """One episode; ``players[i]`` acts for agent ``i`` (None: uniformly random actions). Returns, per agent,
    its return and the numeric ``episode_stats`` of its last step."""
    if len(players) != env.num_agents:
        raise ValueError(f"{len(players)} players for an env of {env.num_agents} agents")
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)  # sampled actions repeat with the seed
    env.action_space.seed(int(rng.integers(2**31)))
    obs, _ = env.reset(seed=seed)
    states = [None if p is None else p.initial_state(1) for p in players]
    results: list[dict[str, float] | None] = [None] * env.num_agents
    returns = np.zeros(env.num_agents)
    for _ in range(max_steps):
        actions = []
        for i, player in enumerate(players):
            if player is None:
                actions.append(env.action_space.sample())
                continue
            o = obs[i] if isinstance(obs[i], dict) else {"obs": obs[i]}
            batch = {k: torch.as_tensor(np.asarray(v)[None]) for k, v in o.items()}
            with torch.inference_mode():
                a, _, _, states[i] = player.act(batch, states[i], deterministic=greedy)
            actions.append(player.action_spec.to_env(a[0].numpy()))
        obs, rewards, terminated, truncated, infos = env.step(actions)
        for i in range(env.num_agents):
            if results[i] is not None or not infos[i].get(ACTIVE, True):
                continue
            returns[i] += rewards[i]
            if terminated[i] or truncated[i]:
                results[i] = {"return": float(returns[i]), **numeric_stats(infos[i])}
        if all(r is not None for r in results):
            return results
    raise RuntimeError(f"the episode did not end within {max_steps} steps")
