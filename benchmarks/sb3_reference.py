"""SB3's PPO with rl-baselines3-zoo's LunarLander settings on an env of this machine's gymnasium: does the suite's
zoo reference hold here? Prints the training mean return (last 100 episodes) after every rollout, then a
deterministic evaluation of the final agent over 30 episodes (the zoo's measure).

    pip install --no-deps stable-baselines3    # not a dependency of asyncrl; the rest it needs is installed
    python benchmarks/sb3_reference.py [LunarLander-v3] [1000000]
"""

import sys
import time

import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.evaluation import evaluate_policy


class PrintReturns(BaseCallback):
    def __init__(self):
        super().__init__()
        self.start = time.time()

    def _on_rollout_end(self) -> None:
        episodes = self.model.ep_info_buffer
        if episodes:
            print(f"{self.num_timesteps} steps: {np.mean([e['r'] for e in episodes]):.1f} "
                  f"({time.time() - self.start:.0f} s)", flush=True)

    def _on_step(self) -> bool:
        return True


def main() -> None:
    torch.set_num_threads(1)
    env_id = sys.argv[1] if len(sys.argv) > 1 else "LunarLander-v3"
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
    # The zoo's hyperparams/ppo.yml for LunarLander-v2.
    model = PPO("MlpPolicy", make_vec_env(env_id, n_envs=16, seed=0), n_steps=1024, batch_size=64, gae_lambda=0.98,
                gamma=0.999, n_epochs=4, ent_coef=0.01, seed=0, verbose=0, device="cpu")
    callback = PrintReturns()
    model.learn(steps, callback=callback)
    mean, std = evaluate_policy(model, make_vec_env(env_id, n_envs=1, seed=100), n_eval_episodes=30,
                                deterministic=True)
    print(f"final: deterministic eval {mean:.1f} +- {std:.1f} over 30 episodes; wall {time.time() - callback.start:.0f} s")


if __name__ == "__main__":
    main()
