"""The actor-critic: obs preprocessing → encoder → core → policy head and value head.

The heads share the body (Sample Factory's default), or, with ``model.share_weights=false``, the value head has
a body of its own: an encoder and, with a recurrent core, a core of its own (PPO's separate actor and critic
networks; Sample Factory's ``actor_critic_share_weights=False``). The recurrent state is then the actor's
core state followed by the critic's, one ``[N, S]`` tensor as always.

The value head predicts *normalized* returns; ``returns_normalizer`` maps them back to reward units
(identity when ``normalize_returns`` is off). ``act`` returns values in reward units, ``evaluate`` the
raw (normalized) head output, so the learner denormalizes once, with the same statistics.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from gymnasium import spaces
from torch import nn

from asyncrl.models.core import Core
from asyncrl.models.distributions import ActionDistribution, ActionHead, ActionSpec
from asyncrl.models.encoders import build_encoder
from asyncrl.models.normalize import ObsPreprocessor, RunningMeanStd

if TYPE_CHECKING:  # the models only read attributes of their config slice
    from asyncrl.config.schema import ModelConfig

RETURNS_CLIP = 5.0  # Sample Factory's default clip, which its returns normalizer uses too


class ActorCritic(nn.Module):
    def __init__(self, obs_space: spaces.Dict, action_space: spaces.Space, cfg: ModelConfig):
        super().__init__()
        if not isinstance(obs_space, spaces.Dict):
            raise ValueError(f"ActorCritic expects a Dict observation space, got {obs_space}")
        self.obs_space = obs_space
        self.action_spec = ActionSpec.from_space(action_space)
        self.obs_preprocessor = ObsPreprocessor(obs_space, enabled=cfg.normalize_obs, clip=cfg.obs_clip)
        self.encoder = build_encoder(obs_space, cfg)
        self.core = Core(cfg.core, self.encoder.out_size, cfg.core_size)
        self.action_head = ActionHead(self.action_spec, self.core.out_size)
        # The value head's own body, or None where it reads the actor's features.
        self.critic_encoder = None if cfg.share_weights else build_encoder(obs_space, cfg)
        self.critic_core = None if cfg.share_weights else Core(cfg.core, self.critic_encoder.out_size, cfg.core_size)
        critic_in = (self.core if self.critic_core is None else self.critic_core).out_size
        self.critic = nn.Linear(critic_in, 1)
        self.returns_normalizer = RunningMeanStd((1,), clip=RETURNS_CLIP, enabled=cfg.normalize_returns)
        # Where set (bfloat16), the encoder and core run under autocast; the heads always run in float32,
        # since log-probabilities in bfloat16 (3 significant digits) would blur the PPO ratio.
        self.body_dtype: torch.dtype | None = None
        self._init_weights(cfg.init_gain, cfg.policy_head_gain)

    def _init_weights(self, gain: float, policy_head_gain: float) -> None:
        # Orthogonal init with zero biases on Linear and Conv2d only (Sample Factory's, gain 1.0 there); the
        # GRU/LSTM keep torch's init; the value head's last layer gain 1.0.
        for m in self.modules():
            if isinstance(m, nn.Linear | nn.Conv2d):
                nn.init.orthogonal_(m.weight, gain=gain)
                nn.init.zeros_(m.bias)
        # Drawn again only where the gain differs, so that the defaults draw the same weights as always.
        if policy_head_gain != gain:
            nn.init.orthogonal_(self.action_head.linear.weight, gain=policy_head_gain)
        if gain != 1.0:
            nn.init.orthogonal_(self.critic.weight, gain=1.0)

    @property
    def state_size(self) -> int:
        return self.core.state_size + (0 if self.critic_core is None else self.critic_core.state_size)

    def initial_state(self, n: int, device: torch.device | str | None = None) -> torch.Tensor | None:
        """Zeros ``[n, S]``, or None without a core (the data contract's ``rnn_state=None``)."""
        return None if self.state_size == 0 else torch.zeros(n, self.state_size, device=device)

    def body_modules(self) -> list[nn.Module]:
        """What runs in ``body_dtype``: the encoders and cores (the heads stay float32)."""
        return [m for m in (self.encoder, self.core, self.critic_encoder, self.critic_core) if m is not None]

    def _run_core(self, core: Core, x: torch.Tensor, state: torch.Tensor | None,
                  resets: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
        return core.step(x, state) if resets is None else core.unroll(x, state, resets)

    def _encode(self, obs: dict[str, torch.Tensor], lead: int,
                preprocessed: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Observations with ``lead`` leading dims -> the actor's features ``[*lead_shape, H]`` and the critic's
        own (None where it shares the actor's), encoded as one batch. ``preprocessed``: ``obs`` is already
        ``preprocess_for_training``'s output."""
        lead_shape = next(iter(obs.values())).shape[:lead]
        flat = {k: obs[k].reshape(-1, *space.shape) for k, space in self.obs_space.spaces.items()}
        x_in = flat if preprocessed else self.obs_preprocessor(flat)
        x = self.encoder(x_in).reshape(*lead_shape, -1)
        v = None if self.critic_encoder is None else self.critic_encoder(x_in).reshape(*lead_shape, -1)
        return x, v

    def _body(self, obs: dict[str, torch.Tensor], state: torch.Tensor | None, resets: torch.Tensor | None = None,
              preprocessed: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Encoders and core: one step (``resets`` None, obs ``[N, ...]``) or an unroll (obs ``[T+1, B, ...]``).
        Returns the policy head's features, the value head's, and the core's state, float32 whatever
        ``body_dtype`` is."""
        device = next(iter(obs.values())).device
        with torch.autocast(device.type, dtype=self.body_dtype or torch.bfloat16, enabled=self.body_dtype is not None):
            x, v = self._encode(obs, 1 if resets is None else 2, preprocessed)
            # The state is the actor's core state, then the critic's where it has a recurrent core of its own.
            actor_state, critic_state = state, None
            if state is not None and self.critic_core is not None:
                actor_state, critic_state = state.split([self.core.state_size, self.critic_core.state_size], dim=-1)
            y, actor_state = self._run_core(self.core, x, actor_state, resets)
            if self.critic_core is not None:
                v, critic_state = self._run_core(self.critic_core, v, critic_state, resets)
            state = actor_state if critic_state is None else torch.cat([actor_state, critic_state], dim=-1)
        y = y.float()
        return y, y if v is None else v.float(), None if state is None else state.float()

    @torch.no_grad()
    def act(
        self, obs: dict[str, torch.Tensor], state: torch.Tensor | None, deterministic: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """One step for ``N`` observations -> ``(actions [N, A], logp [N], values [N] in reward units,
        new_state [N, S] or None)``. ``state`` None means zeros (or no core)."""
        y, v, new_state = self._body(obs, state)
        dist = self.action_head(y)
        actions = dist.mode() if deterministic else dist.sample()
        values = self.returns_normalizer.denormalize(self.critic(v).squeeze(-1))
        return actions, dist.log_prob(actions), values, new_state

    def evaluate(
        self,
        obs: dict[str, torch.Tensor],
        state0: torch.Tensor | None,
        resets: torch.Tensor,
        actions: torch.Tensor,
        preprocessed: bool = False,
        symmetric_kl: bool = False,
    ) -> dict[str, torch.Tensor]:
        """A time-major batch for the loss.

        obs ``[T+1, B, ...]`` (raw, or ``preprocess_for_training``'s output when ``preprocessed``), state0
        ``[B, S]`` or None, resets ``[T+1, B]`` bool (True zeroes the core's state before that step), actions
        ``[T, B, A]``. Returns ``logp [T, B]``, ``entropy [T, B]`` and ``values [T+1, B]`` (normalized: the raw
        head output); with ``symmetric_kl``, also ``symmetric_kl [T, B]``, the policy's symmetric KL to the
        uniform one. Obs of ``T`` rows (no bootstrap row) give ``values [T, B]``: a feed-forward model's
        minibatch of single transitions.
        """
        y, v, _ = self._body(obs, state0, resets, preprocessed)
        dist: ActionDistribution = self.action_head(y[: actions.shape[0]])
        out = {
            "logp": dist.log_prob(actions),
            "entropy": dist.entropy(),
            "values": self.critic(v).squeeze(-1),
        }
        if symmetric_kl:
            out["symmetric_kl"] = dist.symmetric_kl_to_uniform()
        return out

    def update_obs_normalizer(self, obs: dict[str, torch.Tensor]) -> None:
        """Update the running statistics from observations with any leading dims ``[..., *shape]``."""
        self.obs_preprocessor.update(obs)

    @torch.no_grad()
    def preprocess_for_training(self, obs: dict[str, torch.Tensor], update_mask: torch.Tensor | None) -> dict:
        """The learner's batch ``[T+1, B, ...]``: converted to float once, the running statistics updated
        from the first ``T`` rows (only where ``update_mask [T, B]`` holds, when given), then normalized in
        place with the updated statistics, ready for ``evaluate(..., preprocessed=True)``. One conversion
        per batch instead of one per minibatch and epoch, and no float64 copy of the frames."""
        floats = self.obs_preprocessor.to_float(obs)
        rows = {k: v[:-1] if update_mask is None else v[:-1][update_mask] for k, v in floats.items()}
        self.obs_preprocessor.update(rows, floats=True)
        return self.obs_preprocessor.normalize_(floats)


def numpy_state_dict(module: nn.Module) -> dict[str, np.ndarray]:
    """Parameters and buffers as numpy copies (safe to publish while training goes on)."""
    return {k: v.detach().cpu().numpy().copy() for k, v in module.state_dict().items()}


def load_numpy_state_dict(module: nn.Module, state: dict[str, np.ndarray]) -> None:
    """Load from numpy arrays; read-only arrays (Ray's zero-copy reads) are fine."""
    module.load_state_dict({k: torch.from_numpy(np.array(v, copy=True)) for k, v in state.items()})
