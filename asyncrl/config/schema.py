"""Typed config schemas, one dataclass per concern. Each component receives only its own slice.

The YAML files in ``conf/`` mirror these classes; ``asyncrl.config.store`` registers them in Hydra's
ConfigStore so that composition type-checks every value. ``__post_init__`` checks ranges, so a config
that exists is a valid one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING


class ConfigValueError(ValueError):
    """A value out of range. ``key`` is the dotted path, ``hint`` what would be right."""

    def __init__(self, key: str, given: Any, hint: str):
        self.key, self.given, self.hint = key, given, hint
        super().__init__(f"{key}={given!r} is invalid: {hint}")


def _check(ok: bool, key: str, given: Any, hint: str) -> None:
    if not ok:
        raise ConfigValueError(key, given, hint)


def _choice(key: str, given: str, options: tuple[str, ...]) -> None:
    _check(given in options, key, given, f"expected one of {', '.join(options)}")


@dataclass
class EnvConfig:
    """Which environment and how to build it."""

    name: str = MISSING  # the name the user typed (env=NAME); also the default experiment name
    factory: str = "asyncrl_envs.gymnasium_env:make_env"  # "module:function" that builds one env
    id: str = ""  # passed to the factory: a Gymnasium id, a VizDoom scenario, ...
    kwargs: dict[str, Any] = field(default_factory=dict)  # extra keyword arguments for the factory
    frameskip: int = 1  # frames per agent step: frames = env steps x frameskip; Doom factories also step the engine by it

    def __post_init__(self) -> None:
        _check(":" in self.factory, "env.factory", self.factory, "expected 'module:function'")
        _check(self.frameskip >= 1, "env.frameskip", self.frameskip, "expected an integer >= 1")


@dataclass
class ModelConfig:
    """The actor-critic network. The encoder is chosen from the observation space when ``auto``."""

    encoder: str = "auto"  # auto | mlp | convnet_simple
    mlp_layers: list[int] = field(default_factory=lambda: [64, 64])  # hidden sizes for vector inputs
    conv_fc_size: int = 512  # convnet_simple: width of the fully connected layer after the convs
    core: str = "none"  # none | gru | lstm
    core_size: int = 512  # hidden size of the recurrent core
    nonlinearity: str = "elu"  # elu | relu | tanh
    normalize_obs: bool = True  # running mean/std per element, clipped to +-obs_clip
    obs_clip: float = 5.0
    normalize_returns: bool = True  # the value head predicts normalized returns
    # false: the value head gets an encoder (and core) of its own (PPO's separate actor and critic MLPs, as
    # cleanRL's continuous-control PPO has them). true: one body for both heads (Sample Factory's default).
    share_weights: bool = True
    # Orthogonal init (Sample Factory's "orthogonal", zero biases): the gain of the hidden layers, and of the
    # policy head's last layer. PPO's continuous-control recipe uses sqrt(2) and 0.01 (actions start near the
    # mean of the distribution, so early exploration is the learned std's alone); Sample Factory 1.0 and 1.0.
    init_gain: float = 1.0
    policy_head_gain: float = 1.0

    def __post_init__(self) -> None:
        _choice("model.encoder", self.encoder, ("auto", "mlp", "convnet_simple"))
        _choice("model.core", self.core, ("none", "gru", "lstm"))
        _choice("model.nonlinearity", self.nonlinearity, ("elu", "relu", "tanh"))
        _check(all(int(n) > 0 for n in self.mlp_layers), "model.mlp_layers", list(self.mlp_layers),
               "expected positive layer sizes")
        _check(self.core_size > 0, "model.core_size", self.core_size, "expected an integer > 0")
        _check(self.conv_fc_size > 0, "model.conv_fc_size", self.conv_fc_size, "expected an integer > 0")
        _check(self.obs_clip > 0, "model.obs_clip", self.obs_clip, "expected a number > 0")
        _check(self.init_gain > 0, "model.init_gain", self.init_gain, "expected a number > 0")
        _check(self.policy_head_gain > 0, "model.policy_head_gain", self.policy_head_gain, "expected a number > 0")


@dataclass
class AlgoConfig:
    """APPO with V-trace (or GAE).

    Defaults are Sample Factory's generic ones (its cfg.py) except four, each an option here: advantages
    (V-trace here, GAE(0.95) there: ``advantage=gae``), time limits (bootstrapped here, terminal there:
    ``bootstrap_truncated=false``), the value loss (half the squared error here, the squared error there:
    ``value_loss_coeff=1.0`` is its 0.5) and ``max_policy_lag`` (100 here, 1000 there). Its Doom overrides are
    the value clip 0.2 (``conf/env/doom_*.yaml``) and ``exploration_loss=symmetric_kl`` with 0.001, which the
    Doom configs do not take yet (their A/B is issue #24's).
    """

    gamma: float = 0.99
    lr: float = 1e-4
    adam_eps: float = 1e-6
    adam_betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    rollout: int = 32  # steps per trajectory chunk (and BPTT length)
    # Transitions per optimizer step (x num_minibatches per learner call); whole chunks are taken until it is
    # reached, and a call given k times as many takes k times as many steps.
    batch_size: int = 1024
    num_epochs: int = 1  # passes over each batch
    # Minibatches per epoch. A feed-forward model's are shuffled single transitions, its targets computed once
    # per batch (PPO's); with a recurrent core they are whole env columns (sequences stay whole, at most one
    # minibatch per env) and each takes its targets from the model as it is then.
    num_minibatches: int = 1
    advantage: str = "vtrace"  # vtrace | gae
    vtrace_rho: float = 1.0  # rho-bar: clip of importance weights in the value targets
    vtrace_c: float = 1.0  # c-bar: clip of the trace-cutting coefficients
    vtrace_pg_rho: float = 1.0  # clip of importance weights in the policy-gradient advantages (GAE's too, anchored)
    gae_lambda: float = 0.95
    normalize_advantages: bool = True
    ppo_clip_ratio: float = 0.1  # ratio clipped to [1/(1+c), 1+c], as Sample Factory does
    # The policy the PPO ratio is taken against, and so the centre of its clip. behaviour: the one that acted
    # (Sample Factory's). batch: the learner's as the batch arrives (RLlib APPO's target policy): a batch trained
    # several updates after it was collected keeps its whole clip range instead of arriving half clipped; the
    # gap from behaviour to that policy is then an importance weight clipped at vtrace_pg_rho. Measured on the
    # Gymnasium suite (experiments/gym_suite): Acrobot gains, LunarLander and MuJoCo lose (the clip on behaviour
    # is their brake), so no family takes it by default.
    ppo_clip_anchor: str = "behaviour"
    ppo_clip_value: float = 1.0  # value clip around the behaviour value; 0 turns it off
    value_loss_coeff: float = 0.5
    # entropy: a bonus on the policy's entropy; symmetric_kl: a penalty on its symmetric KL to the uniform policy,
    # summed over the action components (Sample Factory's exploration_loss for Doom; discrete actions only).
    exploration_loss: str = "entropy"
    entropy_coeff: float = 0.003  # the exploration term's weight (Sample Factory's exploration_loss_coeff)
    kl_coeff: float = 0.0  # penalty on the sample estimate of KL(behaviour || current)
    max_grad_norm: float = 4.0  # 0 turns clipping off
    # constant | linear: linear takes lr down to 0 over the policy's share of train.env_steps (cleanRL's and
    # Stable-Baselines3's anneal); PBT perturbs the starting value.
    lr_schedule: str = "constant"
    reward_scale: float = 1.0
    reward_clip: float = 1000.0
    max_policy_lag: int = 100  # samples whose lag (learner version - behaviour version) exceeds this are dropped
    # true: an episode cut by a time limit bootstraps from the value of its last observation; false: the cut is
    # treated as terminal, as Sample Factory does (value_bootstrap=False): the objective is then the return
    # within the time limit, which is what a score over a fixed horizon (defend_the_center) measures.
    bootstrap_truncated: bool = True

    def __post_init__(self) -> None:
        _check(0.0 <= self.gamma <= 1.0, "algo.gamma", self.gamma, "expected a number in [0, 1]")
        _check(self.lr > 0, "algo.lr", self.lr, "expected a number > 0")
        _check(self.rollout >= 1, "algo.rollout", self.rollout, "expected an integer >= 1")
        _check(self.batch_size >= self.rollout and self.batch_size % self.rollout == 0, "algo.batch_size",
               self.batch_size, f"expected a positive multiple of algo.rollout={self.rollout}")
        _check(self.num_epochs >= 1, "algo.num_epochs", self.num_epochs, "expected an integer >= 1")
        _check(self.num_minibatches >= 1, "algo.num_minibatches", self.num_minibatches,
               "expected an integer >= 1")
        _choice("algo.advantage", self.advantage, ("vtrace", "gae"))
        _choice("algo.exploration_loss", self.exploration_loss, ("entropy", "symmetric_kl"))
        _choice("algo.ppo_clip_anchor", self.ppo_clip_anchor, ("behaviour", "batch"))
        _choice("algo.lr_schedule", self.lr_schedule, ("constant", "linear"))
        for name in ("vtrace_rho", "vtrace_c", "vtrace_pg_rho", "ppo_clip_ratio", "reward_scale", "reward_clip"):
            _check(getattr(self, name) > 0, f"algo.{name}", getattr(self, name), "expected a number > 0")
        for name in ("ppo_clip_value", "value_loss_coeff", "entropy_coeff", "kl_coeff", "max_grad_norm"):
            _check(getattr(self, name) >= 0, f"algo.{name}", getattr(self, name), "expected a number >= 0")
        _check(0.0 <= self.gae_lambda <= 1.0, "algo.gae_lambda", self.gae_lambda, "expected a number in [0, 1]")
        _check(self.max_policy_lag >= 0, "algo.max_policy_lag", self.max_policy_lag, "expected an integer >= 0")
        _check(len(self.adam_betas) == 2 and all(0 <= b < 1 for b in self.adam_betas), "algo.adam_betas",
               list(self.adam_betas), "expected two numbers in [0, 1)")


@dataclass
class RuntimeConfig:
    """Where and how the components run."""

    kind: str = "ray"  # ray | serial (everything in one process, for debugging and fast tests)
    # auto | local (a policy copy inside each sampler) | remote (one batched actor per node). auto: remote where the
    # learner runs on a GPU (inference batched there), local on CPUs (2x faster than remote on doom_basic here).
    inference: str = "auto"
    # None: one per free CPU slot of every node (on this machine: one per core, less the learner's when pinned)
    num_samplers: int | None = None
    num_envs: int = 8  # envs per sampler
    env_groups: int | None = None  # 1 or 2 groups of a sampler's envs; None: 2 with remote inference, else 1
    device: str = "auto"  # auto | cpu | cuda: where the learner and remote inference run
    pin_cores: bool = False  # pin sampler i (and the simulator processes it starts) to core i mod cores
    # auto | fp32 | bf16: bf16 runs encoder and core (learner and inference) in bfloat16, heads in float32. auto:
    # bf16 where the learner's device does it natively (a CPU with AVX512_BF16 or AMX, a GPU), else fp32.
    precision: str = "auto"
    sampler_threads: int = 1  # torch threads per sampler
    learner_threads: int = 1  # torch threads of the learner
    inference_threads: int = 1  # torch threads of the remote inference actor
    max_batches_ahead: int = 2  # trajectories buffered beyond what the learner is training on, in batches
    # A sampler, learner or inference actor with work in flight and no result for this long (5x until its
    # first result after a start) is reported by name and restarted; 0 turns the check off.
    hang_timeout_s: float = 120.0
    address: str | None = None  # Ray cluster address; None starts an embedded local Ray
    num_cpus: int | None = None  # CPUs for the embedded Ray (None: the machine's)

    def __post_init__(self) -> None:
        _choice("runtime.kind", self.kind, ("ray", "serial"))
        _choice("runtime.inference", self.inference, ("auto", "local", "remote"))
        _choice("runtime.device", self.device, ("auto", "cpu", "cuda"))
        _choice("runtime.precision", self.precision, ("auto", "fp32", "bf16"))
        _check(self.num_samplers is None or self.num_samplers >= 1, "runtime.num_samplers", self.num_samplers,
               "expected an integer >= 1, or null for one per free CPU")
        _check(self.num_envs >= 1, "runtime.num_envs", self.num_envs, "expected an integer >= 1")
        _check(self.env_groups in (None, 1, 2), "runtime.env_groups", self.env_groups, "expected 1, 2 or null")
        _check(self.num_cpus is None or self.num_cpus >= 1, "runtime.num_cpus", self.num_cpus,
               "expected an integer >= 1 (CPUs the embedded Ray may use), or null for the machine's")
        _check(self.hang_timeout_s >= 0, "runtime.hang_timeout_s", self.hang_timeout_s, "expected a number >= 0 "
               "(seconds; 0 turns hang detection off)")
        for name in ("sampler_threads", "learner_threads", "inference_threads", "max_batches_ahead"):
            _check(getattr(self, name) >= 1, f"runtime.{name}", getattr(self, name), "expected an integer >= 1")


@dataclass
class TrainConfig:
    """The budget and the checkpoints."""

    env_steps: int = 1_000_000  # budget in agent steps (frames = env_steps * env.frameskip)
    max_wall_s: float = 0.0  # stop after this many seconds as well; 0 means no limit
    checkpoint_every_s: float = 120.0
    keep_checkpoints: int = 3
    target_return: float | None = None  # stop early once every policy's mean return reaches this ...
    target_window: int = 20  # ... over its last this many episodes
    stop_at_target: bool = True  # false: note when the target is reached, then train on to the budget's end
    # A run directory or checkpoint file whose weights (model and observation normalizer, not the optimizer or
    # the counters) a fresh run's policies start from: policy p takes the source's policy p where it has one,
    # else the source's first policy (a single policy seeds a population). A run that resumes ignores it.
    init_from: str | None = None

    def __post_init__(self) -> None:
        _check(self.env_steps >= 1, "train.env_steps", self.env_steps, "expected an integer >= 1")
        _check(self.max_wall_s >= 0, "train.max_wall_s", self.max_wall_s, "expected a number >= 0")
        _check(self.checkpoint_every_s > 0, "train.checkpoint_every_s", self.checkpoint_every_s,
               "expected a number > 0")
        _check(self.keep_checkpoints >= 1, "train.keep_checkpoints", self.keep_checkpoints,
               "expected an integer >= 1")
        _check(self.target_window >= 1, "train.target_window", self.target_window, "expected an integer >= 1")


@dataclass
class EvalConfig:
    """Evaluation during training: the latest weights of one policy play whole episodes on an env of their
    own (the same seeds every time, so evaluations compare), and the best of them is kept as a checkpoint."""

    period: int = 0  # env steps (all policies) between evaluations; 0 turns in-training evaluation off
    episodes: int = 10  # episodes per evaluation, seeds seed + 10**6 + i
    greedy: bool = True  # the distribution's mode; false samples actions
    max_steps: int = 100_000  # an episode longer than this is cut
    metric: str = "return"  # what checkpoints/best.pt is kept by: the mean return, or an episode stat the env reports
    policy: int = 0  # the population member evaluated

    def __post_init__(self) -> None:
        _check(self.period >= 0, "eval.period", self.period, "expected env steps >= 0 (0 turns evaluation off)")
        _check(self.episodes >= 1, "eval.episodes", self.episodes, "expected an integer >= 1")
        _check(self.max_steps >= 1, "eval.max_steps", self.max_steps, "expected an integer >= 1")
        _check(self.policy >= 0, "eval.policy", self.policy, "expected a policy id >= 0")


@dataclass
class LoggingConfig:
    """Console, TensorBoard and wandb."""

    console_every_s: float = 5.0
    tensorboard: bool = True
    wandb: str = "offline"  # offline | online | disabled
    wandb_project: str = "asyncrl"
    stats_window: int = 100  # episodes averaged for the reported mean return

    def __post_init__(self) -> None:
        _choice("logging.wandb", self.wandb, ("offline", "online", "disabled"))
        _check(self.console_every_s > 0, "logging.console_every_s", self.console_every_s, "expected a number > 0")
        _check(self.stats_window >= 1, "logging.stats_window", self.stats_window, "expected an integer >= 1")


# The hyperparameters PBT may perturb (Sample Factory's set; gamma only with pbt.optimize_gamma).
PBT_HYPERPARAMS = ("lr", "entropy_coeff", "value_loss_coeff", "ppo_clip_ratio", "ppo_clip_value", "max_grad_norm")


@dataclass
class PopulationConfig:
    """Several policies trained side by side, sharing the samplers.

    In a single-agent env each env is played by one policy for the whole run (env ``i`` by policy
    ``i % size``). In a multi-agent env each agent slot is mapped to a policy, and the mapping of an env is
    drawn again (uniformly, with repetition) after every ``resample_every`` of its episodes, so policies meet
    each other; ``mix_in_one_env=false`` lets one policy play every slot of an env. ``draw_per=sampler``: the
    envs of a sampler share each draw (the n-th episode of every env of the sampler gets the sampler's n-th
    draw), so a policy plays the same seat in all of them and one forward serves all its slots; the draws stay
    uniform, only their spread across a sampler's envs at one time narrows (Sample Factory draws per env).
    """

    size: int = 1
    resample_every: int = 1  # episodes of an env between redraws of its agent -> policy mapping
    mix_in_one_env: bool = True
    draw_per: str = "env"  # env | sampler: who shares one draw of the slot -> policy mapping
    # Opponent pool (multi-agent only): frozen past snapshots of the population play some agent slots.
    opponent_pool_size: int = 0  # snapshots kept; 0 turns the pool off
    snapshot_every: int = 200_000  # env steps of a policy between its snapshots
    opponent_rate: float = 0.2  # chance that a non-first slot of an episode is played by a snapshot
    # Starting hyperparameters of single policies, e.g. {"3": {"lr": 1e-7}}; the others start from algo.*.
    policy_hyperparameters: dict[str, dict[str, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check(self.size >= 1, "population.size", self.size, "expected an integer >= 1")
        _check(self.resample_every >= 1, "population.resample_every", self.resample_every,
               "expected an integer >= 1")
        _choice("population.draw_per", self.draw_per, ("env", "sampler"))
        _check(self.opponent_pool_size >= 0, "population.opponent_pool_size", self.opponent_pool_size,
               "expected an integer >= 0")
        _check(self.snapshot_every >= 1, "population.snapshot_every", self.snapshot_every,
               "expected an integer >= 1")
        _check(0.0 <= self.opponent_rate <= 1.0, "population.opponent_rate", self.opponent_rate,
               "expected a number in [0, 1]")
        for pid, values in self.policy_hyperparameters.items():
            key = f"population.policy_hyperparameters.{pid}"
            _check(str(pid).isdigit() and int(pid) < self.size, key, dict(values),
                   f"expected a policy id in 0..{self.size - 1}")
            unknown = sorted(set(values) - set(PBT_HYPERPARAMS + ("gamma",)))
            _check(not unknown, key, dict(values),
                   f"unknown hyperparameter {unknown[0] if unknown else ''}; expected some of "
                   f"{', '.join(PBT_HYPERPARAMS + ('gamma',))}")


@dataclass
class PbtConfig:
    """Population-based training (Sample Factory's algorithm; defaults are its, in agent steps not frames)."""

    enabled: bool = False
    period: int = 1_250_000  # env steps of a policy between its PBT updates
    start_after: int = 5_000_000  # env steps of a policy before its first update
    replace_fraction: float = 0.3  # the bottom (and top) ceil(fraction * size) policies
    mutation_rate: float = 0.15  # chance that each hyperparameter is perturbed
    perturb_min: float = 1.1  # a perturbed value is multiplied or divided by U(min, max)
    perturb_max: float = 1.5
    replace_gap: float = 0.1  # copy only if the top policy is better by this fraction ...
    replace_gap_absolute: float = 1e-6  # ... and by this much
    optimize_gamma: bool = False
    perturb_shaping: bool = True  # also perturb the env's reward-shaping coefficients when it has any
    objective: str = "true_objective"  # an episode stat; episode return where the env does not report it
    seed: int = 0

    def __post_init__(self) -> None:
        _check(self.period >= 1, "pbt.period", self.period, "expected an integer >= 1")
        _check(self.start_after >= 0, "pbt.start_after", self.start_after, "expected an integer >= 0")
        _check(0.0 < self.replace_fraction <= 0.5, "pbt.replace_fraction", self.replace_fraction,
               "expected a number in (0, 0.5]")
        _check(0.0 <= self.mutation_rate <= 1.0, "pbt.mutation_rate", self.mutation_rate,
               "expected a number in [0, 1]")
        _check(1.0 <= self.perturb_min <= self.perturb_max, "pbt.perturb_min", self.perturb_min,
               f"expected 1 <= pbt.perturb_min <= pbt.perturb_max={self.perturb_max}")
        _check(self.replace_gap >= 0 and self.replace_gap_absolute >= 0, "pbt.replace_gap", self.replace_gap,
               "expected numbers >= 0")


@dataclass
class Config:
    """A whole experiment."""

    env: EnvConfig = field(default_factory=EnvConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    algo: AlgoConfig = field(default_factory=AlgoConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    population: PopulationConfig = field(default_factory=PopulationConfig)
    pbt: PbtConfig = field(default_factory=PbtConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    # Whose defaults the env gets (conf/family/*.yaml): auto | image | vector_discrete | vector_continuous |
    # atari. auto: read from the env's spaces when the config is loaded (asyncrl/config/families.py); ALE ids
    # take atari; the env's config, a recipe and the command line override the family's values.
    family: str = "auto"
    name: str = ""  # the run's name (set by experiment=NAME); empty means the env's name
    run_dir: str = ""  # empty means runs/<name>
    restart_behavior: str = "resume"  # resume | overwrite
    seed: int = 0

    def __post_init__(self) -> None:
        _choice("restart_behavior", self.restart_behavior, ("resume", "overwrite"))
        _check(not self.pbt.enabled or self.population.size >= 2, "pbt.enabled", self.pbt.enabled,
               "PBT needs a population: set population.size >= 2")
        _check(self.eval.policy < self.population.size, "eval.policy", self.eval.policy,
               f"expected a policy id in 0..{self.population.size - 1} (population.size={self.population.size})")
