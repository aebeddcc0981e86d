"""The learner of one policy: V-trace (or GAE) targets, the APPO loss, an optimizer step per minibatch.

Each call of ``train`` consumes one batch of whole trajectory chunks and publishes one new weights
version. Policy lag is measured in those versions.
"""

from __future__ import annotations

import time
from dataclasses import replace

import gymnasium as gym
import numpy as np
import torch

from asyncrl.algo.appo_loss import LossCoefficients, appo_loss, normalize_advantages
from asyncrl.algo.gae import gae
from asyncrl.algo.targets import scale_and_clip_rewards, step_discounts_and_rewards
from asyncrl.algo.vtrace import vtrace
from asyncrl.config.schema import PBT_HYPERPARAMS, AlgoConfig, ModelConfig
from asyncrl.data import Trajectory, Weights, concat_trajectories
from asyncrl.models.actor_critic import ActorCritic, numpy_state_dict


def _tensor(x: np.ndarray, device: torch.device) -> torch.Tensor:
    # Arrays from the object store are read-only; torch needs a writable buffer.
    return torch.as_tensor(x if x.flags.writeable else x.copy(), device=device)


class Learner:
    def __init__(self, policy_id: int, obs_space: gym.spaces.Dict, action_space: gym.Space,
                 model_cfg: ModelConfig, algo_cfg: AlgoConfig, device: str = "cpu", seed: int = 0,
                 precision: str = "fp32", budget_steps: int | None = None):
        """``budget_steps``: the env steps this policy trains on over the run, where ``algo.lr_schedule=linear``
        takes the learning rate to 0 (None: the schedule stays constant)."""
        torch.manual_seed(seed + policy_id)
        self.policy_id = policy_id
        self.cfg = algo_cfg
        self.device = torch.device(device)
        # Channels-last conv weights let oneDNN skip its layout reorders: 1.5x faster conv forward and
        # backward on CPU (measured, benchmarks/RESULTS.md); published weights are plain numpy copies.
        self.model = ActorCritic(obs_space, action_space, model_cfg).to(self.device, memory_format=torch.channels_last)
        self.model.body_dtype = torch.bfloat16 if precision == "bf16" else None
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=algo_cfg.lr, eps=algo_cfg.adam_eps,
                                          betas=tuple(algo_cfg.adam_betas))
        self.budget_steps = budget_steps
        self.version = 0
        self.env_steps = 0  # transitions trained on, dropped ones included
        self._last_train_end: float | None = None
        self._apply_cfg()

    def _apply_cfg(self) -> None:
        c = self.cfg
        self.coeffs = LossCoefficients(c.ppo_clip_ratio, c.ppo_clip_value, c.value_loss_coeff, c.entropy_coeff,
                                       c.kl_coeff)
        self._set_lr()

    def lr_now(self) -> float:
        """``algo.lr`` on the schedule: linear decays it with the share of the budget trained on so far."""
        if self.cfg.lr_schedule == "constant" or not self.budget_steps:
            return self.cfg.lr
        return self.cfg.lr * max(0.0, 1.0 - self.env_steps / self.budget_steps)

    def _set_lr(self) -> None:
        lr = self.lr_now()
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def hyperparameters(self) -> dict[str, float]:
        return {name: float(getattr(self.cfg, name)) for name in PBT_HYPERPARAMS + ("gamma",)}

    def set_hyperparameters(self, values: dict[str, float]) -> None:
        """PBT's explore step (and its exploit: a copied policy takes its source's values)."""
        self.cfg = replace(self.cfg, **values)  # the config's own checks run again
        self._apply_cfg()

    # -- training ---------------------------------------------------------------------------------------

    def train(self, chunks: list[Trajectory]) -> dict[str, float]:
        """One batch of this policy's chunks: returns scalar metrics; ``self.version`` advances by one."""
        start = time.perf_counter()
        self._set_lr()
        # Time between two batches is time the learner waited for data (or for the driver).
        waited = 0.0 if self._last_train_end is None else start - self._last_train_end
        if others := {c.policy_id for c in chunks} - {self.policy_id}:
            raise ValueError(f"learner of policy {self.policy_id} was given chunks of policies {sorted(others)}")
        batch = concat_trajectories(chunks)
        batch.validate()
        data = self._to_tensors(batch)
        lag = self.version - data["policy_versions"]
        mine = torch.ones_like(lag, dtype=torch.bool) if batch.valid is None else _tensor(batch.valid, self.device)
        fresh = lag <= self.cfg.max_policy_lag
        valid = fresh & mine
        # Boolean indexing copies every observation: only a batch with other policies' steps needs it.
        data["obs"] = self.model.preprocess_for_training(data["obs"], None if batch.valid is None else mine)

        # Chunks arrive whole, so a batch may hold several batch_size worth of samples (64 envs of 32 steps are
        # 2048): as many optimizer steps then, so that the updates per sample stay Sample Factory's.
        minibatches = self.cfg.num_minibatches * max(1, batch.num_steps // self.cfg.batch_size)
        if self.model.state_size == 0 and self.cfg.num_epochs * minibatches > 1:
            steps = self._transition_minibatches(data, valid, minibatches)
        else:
            steps = self._column_minibatches(data, valid, batch.num_envs, minibatches)
        metrics: dict[str, list[float]] = {}
        for step in steps:
            for k, v in step.items():
                metrics.setdefault(k, []).append(v)

        self.version += 1
        self.env_steps += batch.num_steps
        out = {k: float(np.mean(v)) for k, v in metrics.items()}
        lag_f = lag[mine].float()
        out |= {"policy_lag/min": float(lag_f.min()), "policy_lag/mean": float(lag_f.mean()),
                "policy_lag/max": float(lag_f.max()), "stats/dropped_samples": float((mine & ~fresh).sum()),
                "stats/batch_size": float(batch.num_steps), "stats/version": float(self.version),
                "stats/lr": self.optimizer.param_groups[0]["lr"]}
        self._last_train_end = time.perf_counter()
        out |= {"time/train_s": self._last_train_end - start, "time/wait_s": waited}
        return out

    def _to_tensors(self, batch: Trajectory) -> dict:
        d = self.device
        data = {name: _tensor(getattr(batch, name), d) for name in (
            "actions", "rewards", "terminated", "truncated", "final_values", "behaviour_logp",
            "behaviour_values", "policy_versions")}
        data["obs"] = {k: _tensor(v, d) for k, v in batch.obs.items()}
        data["rnn_state"] = None if batch.rnn_state is None else _tensor(batch.rnn_state, d)
        done = data["terminated"] | data["truncated"]
        # The core's state is zeroed before the first step of every episode that starts inside the chunk.
        data["resets"] = torch.cat([torch.zeros_like(done[:1]), done], dim=0)
        rewards = scale_and_clip_rewards(data["rewards"], scale=self.cfg.reward_scale, clip=self.cfg.reward_clip)
        # Without bootstrapping a time-out ends the episode as a terminal state would (Sample Factory's default).
        terminated = data["terminated"] if self.cfg.bootstrap_truncated else done
        data["rewards"], data["discounts"] = step_discounts_and_rewards(
            rewards=rewards, terminated=terminated, truncated=data["truncated"],
            final_values=data["final_values"], gamma=self.cfg.gamma)
        return data

    def _column_minibatches(self, data: dict, valid: torch.Tensor, num_envs: int, minibatches: int):
        """Minibatches of whole trajectory columns, whose targets come from the model as it is at each one:
        a recurrent core needs the time axis, and one minibatch of one epoch (VizDoom's default) is then a
        single forward pass."""
        if self.cfg.ppo_clip_anchor == "batch":
            with torch.no_grad():
                data["anchor_logp"] = self._evaluate(data["obs"], data["rnn_state"], data["resets"],
                                                     data["actions"])["logp"]
        for _ in range(self.cfg.num_epochs):
            # One minibatch is the whole batch: no gather copy of its frames.
            splits = torch.randperm(num_envs).chunk(minibatches) if minibatches > 1 else (slice(None),)
            for cols in splits:
                obs = {k: v[:, cols] for k, v in data["obs"].items()}
                state0 = None if data["rnn_state"] is None else data["rnn_state"][cols]
                out = self._evaluate(obs, state0, data["resets"][:, cols], data["actions"][:, cols])
                mask = valid[:, cols]
                targets, advantages = self._targets(data, out, cols, mask)
                yield self._optimizer_step(out, data, cols, mask, targets, advantages)

    def _transition_minibatches(self, data: dict, valid: torch.Tensor, minibatches: int):
        """PPO's minibatches for a feed-forward model: targets and advantages once over the whole batch (the
        model as the batch arrives), then every epoch shuffles single transitions. Minibatches of whole columns
        hold a few envs' consecutive, correlated steps each; on LunarLander they left the policy hovering."""
        with torch.no_grad():
            out = self._evaluate(data["obs"], None, data["resets"], data["actions"])
            if self.cfg.ppo_clip_anchor == "batch":
                data["anchor_logp"] = out["logp"]
            targets, advantages = self._targets(data, out, slice(None), valid)
        steps, envs = valid.shape
        # [T, B] -> [1, T*B]: one "time step" of T*B columns, the shape the model and the loss take.
        flat = {name: data[name].reshape(1, steps * envs, *data[name].shape[2:])
                for name in ("actions", "behaviour_logp", "behaviour_values", "anchor_logp") if name in data}
        flat["obs"] = {k: v[:-1].reshape(1, steps * envs, *v.shape[2:]) for k, v in data["obs"].items()}
        targets, advantages, valid = (x.reshape(1, -1) for x in (targets, advantages, valid))
        no_resets = torch.zeros_like(valid)
        for _ in range(self.cfg.num_epochs):
            for idx in torch.randperm(steps * envs).chunk(minibatches):
                obs = {k: v[:, idx] for k, v in flat["obs"].items()}
                out = self._evaluate(obs, None, no_resets[:, idx], flat["actions"][:, idx])
                yield self._optimizer_step(out, flat, idx, valid[:, idx], targets[:, idx], advantages[:, idx])

    def _evaluate(self, obs: dict, state0: torch.Tensor | None, resets: torch.Tensor,
                  actions: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.model.evaluate(obs, state0, resets, actions, preprocessed=True,
                                   symmetric_kl=self.cfg.exploration_loss == "symmetric_kl")

    @torch.no_grad()
    def _targets(self, data: dict, out: dict, cols: torch.Tensor | slice,
                 mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """V-trace or GAE value targets (reward units) and advantages for ``cols`` of the batch, from the
        model's output ``out`` over them (values of all ``T+1`` rows); the returns' statistics take the targets."""
        cfg = self.cfg
        values = self.model.returns_normalizer.denormalize(out["values"])  # [T+1, B] in reward units
        rewards, discounts = data["rewards"][:, cols], data["discounts"][:, cols]
        if cfg.advantage == "vtrace":
            vt = vtrace(log_rhos=out["logp"] - data["behaviour_logp"][:, cols], discounts=discounts,
                        rewards=rewards, values=values[:-1], bootstrap_value=values[-1], rho_bar=cfg.vtrace_rho,
                        c_bar=cfg.vtrace_c, pg_rho_bar=cfg.vtrace_pg_rho)
            targets, advantages = vt.vs, vt.pg_advantages
        else:
            advantages, targets = gae(rewards=rewards, values=values[:-1], bootstrap_value=values[-1],
                                      discounts=discounts, lam=cfg.gae_lambda)
            if "anchor_logp" in data:
                # The ratio is taken against the anchor, so the step from behaviour to it is weighted here, as
                # V-trace's clipped rho already weights its own advantages.
                rho = torch.exp(data["anchor_logp"][:, cols] - data["behaviour_logp"][:, cols])
                advantages = advantages * rho.clamp(max=cfg.vtrace_pg_rho)
        self.model.returns_normalizer.update(targets[mask].reshape(-1, 1))
        return targets, advantages

    def _optimizer_step(self, out: dict, data: dict, cols: torch.Tensor | slice, mask: torch.Tensor,
                        targets: torch.Tensor, advantages: torch.Tensor) -> dict[str, float]:
        """One optimizer step on a minibatch: ``out`` is the model's output on it, ``data[...][:, cols]`` its
        behaviour, ``targets`` in reward units."""
        cfg = self.cfg
        returns_norm = self.model.returns_normalizer
        with torch.no_grad():
            targets_n = returns_norm.normalize(targets)
            behaviour_values_n = returns_norm.normalize(data["behaviour_values"][:, cols])
            if cfg.normalize_advantages:
                advantages = normalize_advantages(advantages, mask=mask)
        values_n = out["values"][: targets.shape[0]]
        # The ratio's reference: the policy that acted, or the one the batch arrived to (algo.ppo_clip_anchor).
        reference_logp = data.get("anchor_logp", data["behaviour_logp"])[:, cols]
        loss, metrics = appo_loss(logp=out["logp"], behaviour_logp=reference_logp,
                                  entropy=out["entropy"], values=values_n, behaviour_values=behaviour_values_n,
                                  value_targets=targets_n, advantages=advantages, mask=mask, coeffs=self.coeffs,
                                  symmetric_kl=out.get("symmetric_kl"))
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.max_grad_norm > 0:
            grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.max_grad_norm)
        else:
            grad_norm = torch.nn.utils.get_total_norm([p.grad for p in self.model.parameters() if p.grad is not None])
        self.optimizer.step()
        result = {k: float(v) for k, v in metrics.items()}
        result["stats/grad_norm"] = float(grad_norm)
        result["stats/value_target_mean"] = float(targets[mask].mean()) if mask.any() else 0.0
        return result

    # -- publishing and checkpoints ------------------------------------------------------------------------

    def weights(self) -> Weights:
        return Weights(self.policy_id, self.version, numpy_state_dict(self.model))

    def state_dict(self) -> dict:
        return {"policy_id": self.policy_id, "version": self.version, "env_steps": self.env_steps,
                "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "hyperparameters": self.hyperparameters()}

    def load_state_dict(self, state: dict, hyperparameters: bool = False) -> None:
        """``hyperparameters``: also take the saved ones (PBT's); otherwise the configured ones stand, so a
        run resumed with a new ``algo.lr`` uses it. A state with weights only (``train.init_from``) leaves the
        optimizer, the counters and the hyperparameters fresh."""
        self.model.load_state_dict(state["model"])
        if "optimizer" not in state:
            return
        self.optimizer.load_state_dict(state["optimizer"])
        self.version, self.env_steps = int(state["version"]), int(state["env_steps"])
        if hyperparameters and "hyperparameters" in state:
            self.set_hyperparameters(state["hyperparameters"])
        else:
            self._apply_cfg()  # the optimizer state carries the saved lr

    def copy_from(self, source: dict) -> None:
        """PBT's exploit: take another policy's weights, optimizer state and hyperparameters.

        The version jumps past ``max_policy_lag`` so that experience collected by this policy's old weights,
        still on its way, is dropped rather than trained on by weights it does not belong to.
        """
        version = self.version + self.cfg.max_policy_lag + 1
        env_steps = self.env_steps
        self.load_state_dict(source, hyperparameters=True)
        self.version, self.env_steps = version, env_steps
