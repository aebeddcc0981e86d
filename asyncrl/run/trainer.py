"""One training run, from the run directory to the summary: the loop around a runtime.

The runtime (serial or Ray) moves data; this module decides when to stop, what to log, when to
checkpoint, and makes sure that however the run ends, a final checkpoint and ``summary.json`` exist.
"""

from __future__ import annotations

import logging
import signal
import time
from collections import deque
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from asyncrl.config.families import describe_spaces
from asyncrl.config.loader import ConfigError
from asyncrl.config.schema import Config
from asyncrl.hardware import PrecisionError
from asyncrl.pbt.driver import PopulationDriver
from asyncrl.run.checkpoint import CheckpointError, CheckpointManager
from asyncrl.run.console import progress_line
from asyncrl.run.metrics_writer import MetricsWriter
from asyncrl.run.run_dir import prepare_run_dir, write_config, write_json
from asyncrl.runtime.components import DeviceError, PopulationError, policy_ids
from asyncrl.runtime.coordinator import Coordinator
from asyncrl.runtime.stall import RunStalled
from asyncrl.sampling.env_factory import EnvFactoryError
from asyncrl.timing import TimeBreakdown

log = logging.getLogger("asyncrl")
# A periodic checkpoint that failed (a learner down at that moment) is tried again this soon, so that a kill of
# the driver meanwhile loses at most about one checkpoint period.
CHECKPOINT_RETRY_S = 5.0
USER_ERRORS = (EnvFactoryError, CheckpointError, DeviceError, PopulationError, ConfigError, PrecisionError)


def _make_runtime(cfg: Config, coordinator: Coordinator, learner_states: dict | None, restore):
    if cfg.runtime.kind == "serial":
        from asyncrl.runtime.serial import SerialRuntime

        return SerialRuntime(cfg, coordinator, learner_states)
    from asyncrl.runtime.ray_runtime import RayRuntime  # the only path that imports ray

    return RayRuntime(cfg, coordinator, learner_states, restore=restore)


class _LagStats:
    def __init__(self) -> None:
        self.min, self.max, self.total, self.count = float("inf"), float("-inf"), 0.0, 0

    def add(self, m: dict[str, float]) -> None:
        self.min = min(self.min, m["policy_lag/min"])
        self.max = max(self.max, m["policy_lag/max"])
        self.total += m["policy_lag/mean"]
        self.count += 1

    def as_tuple(self) -> tuple[float, float, float] | None:
        return (self.min, self.total / self.count, self.max) if self.count else None


def _sigterm_as_interrupt(signum, frame):  # noqa: ARG001
    raise KeyboardInterrupt(f"signal {signum}")


def _setup_file_log(run_dir: Path) -> logging.Handler:
    handler = logging.FileHandler(run_dir / "train.log", mode="a")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    # The run's log records progress even when the caller's logging is quieter (tests, notebooks).
    if logging.getLogger("asyncrl").getEffectiveLevel() > logging.INFO:
        logging.getLogger("asyncrl").setLevel(logging.INFO)
    return handler


class TrainingRun:
    def __init__(self, cfg: Config):
        self.cfg = cfg
        self.run_dir = prepare_run_dir(cfg)
        self.file_log = _setup_file_log(self.run_dir)
        self.ckpts = CheckpointManager(self.run_dir / "checkpoints", cfg.train.keep_checkpoints)
        self.state = self.ckpts.load_latest() if cfg.restart_behavior == "resume" else None
        self.counters = {"env_steps": 0, "episodes": 0, "wall_s": 0.0, "saves": 0, "train_steps": 0,
                         "dropped_samples": 0, "recent_returns": {}, "policy_steps": {}, "recent_extras": {},
                         "next_eval": cfg.eval.period, "best_eval": None}
        if self.state is not None:
            self.counters |= self.state["counters"]
            log.info("resuming from %s at %d env steps", self.state["path"], self.counters["env_steps"])
        self.wall_base = float(self.counters["wall_s"])  # wall time of earlier sessions of this run
        self.coordinator = Coordinator(cfg.algo.batch_size, policy_ids(cfg), stats_window=cfg.logging.stats_window,
                                       env_steps=self.counters["env_steps"], episodes=self.counters["episodes"],
                                       policy_steps={int(k): v for k, v in self.counters["policy_steps"].items()})
        for pid, returns in self.counters["recent_returns"].items():
            if int(pid) in self.coordinator.stats:
                self.coordinator.stats[int(pid)].returns.extend(returns)
        for pid, extras in self.counters["recent_extras"].items():
            if int(pid) in self.coordinator.stats:
                stats = self.coordinator.stats[int(pid)]
                for name, values in extras.items():
                    stats.extras.setdefault(name, deque(maxlen=stats.window)).extend(values)
        self.lag = _LagStats()
        self.last_eval: dict | None = None
        self.warned_eval_metric = False  # an eval.metric the env does not report is said once
        # Where each component's time went: over the whole session, and since the last console line.
        self.times, self.recent_times = TimeBreakdown(), TimeBreakdown()
        self.first_data: tuple[float, int] | None = None  # (time, env steps) of the first collected chunk
        self.runtime = None
        self.population: PopulationDriver | None = None
        self.writer: MetricsWriter | None = None

    def run(self) -> dict:
        cfg, start = self.cfg, time.monotonic()
        start_steps = self.counters["env_steps"]
        status = "failed"
        previous_sigterm = signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
        try:
            if start_steps >= cfg.train.env_steps:
                log.info("run %s already reached train.env_steps=%d; raise it to train further",
                         self.run_dir, cfg.train.env_steps)
                status = "completed"
                return self._finish(status, start, start_steps, checkpoint=False)
            self.writer = MetricsWriter(self.run_dir, cfg.logging, cfg.name, asdict(cfg))
            self.runtime = _make_runtime(cfg, self.coordinator, self.state and self.state["learners"],
                                         restore=self._latest_learner_states)
            write_config(self.run_dir, cfg)  # the runtime started: the checkpoint (if any) fits this config
            log.info("decided for this machine: %s", self.runtime.hardware)
            spaces = self.runtime.spaces
            log.info("defaults of the %s family (conf/family/%s.yaml; %s), under the env's config, the recipe and "
                     "the command line", cfg.family, cfg.family, describe_spaces(spaces.obs, spaces.action))
            self.population = PopulationDriver(cfg, self.runtime, self.coordinator, self.run_dir, self.writer.write,
                                               self.state and self.state.get("population"))
            # Ray samplers run their local policy copy on the CPU; the serial runtime shares the learner's device.
            resolved = self.runtime.cfg.runtime  # auto resolved for this machine
            on_cpu = cfg.runtime.kind == "ray" and resolved.inference == "local"
            inference = f"{resolved.inference} on {'cpu' if on_cpu else self.runtime.device}"
            extras = (f" | population {cfg.population.size}{' with PBT' if cfg.pbt.enabled else ''}"
                      if cfg.population.size > 1 else "")
            dashboard = getattr(self.runtime, "dashboard_url", None)  # a cluster's; the embedded Ray runs none
            extras += f" | ray dashboard {dashboard}" if dashboard else ""
            log.info("run dir %s | tensorboard --logdir %s | wandb %s | runtime %s, %s | learner on %s, inference "
                     "%s%s", self.run_dir, self.run_dir / "tensorboard", cfg.logging.wandb, cfg.runtime.kind,
                     self.runtime.layout(), self.runtime.device, inference, extras)
            status = self._loop(start, start_steps)
        except KeyboardInterrupt:
            status = "interrupted"
            log.warning("interrupted: writing a final checkpoint")
        except RunStalled as e:  # named, not a traceback: what was stuck is in the message
            status = "failed"
            log.error("the run stalled: %s; writing a final checkpoint", e)
        except USER_ERRORS:  # bad input found while starting: the CLI prints it as one line
            raise
        except BaseException:
            log.exception("the run failed")
            raise
        finally:
            signal.signal(signal.SIGTERM, previous_sigterm)
            summary = self._finish(status, start, start_steps, checkpoint=self.runtime is not None)
        return summary

    def _loop(self, start: float, start_steps: int) -> str:
        cfg = self.cfg
        last_console = last_ckpt = time.monotonic()
        progress_at, progress_steps = last_console, self.coordinator.env_steps  # when the steps last advanced
        while True:
            events = self.runtime.poll()
            steps = self.coordinator.env_steps
            frames = steps * cfg.env.frameskip
            for result, weights in events.evaluated:
                self._on_evaluation(result, weights)
            if cfg.eval.period and steps >= self.counters["next_eval"] and self.runtime.start_evaluation(steps):
                self.counters["next_eval"] = steps + cfg.eval.period
            for meta in events.collected:
                self._add_times("samplers", meta.timing)
                for note in meta.env_restarts:
                    self.counters["env_restarts"] = self.counters.get("env_restarts", 0) + 1
                    log.warning("sampler %d, %s; its episode was dropped", meta.sampler_index, note)
            for pid, metrics in events.trained:
                self._add_times("learner", {"train": metrics.pop("time/train_s", 0.0),
                                            "wait": metrics.pop("time/wait_s", 0.0)})
                self.lag.add(metrics)
                self.counters["train_steps"] += 1
                self.counters["dropped_samples"] += int(metrics["stats/dropped_samples"])
                self.writer.write(metrics if pid == 0 else {f"policy{pid}/{k}": v for k, v in metrics.items()},
                                  frames)
                self.population.after_training(pid, frames)
            now = time.monotonic()
            if steps != progress_steps:
                progress_at, progress_steps = now, steps
            if self.first_data is None and events.collected:
                self.first_data = (now, steps)  # startup (actors, engines) ends with the first chunk
            fps = self._fps_after_startup(now)
            if now - last_console >= cfg.logging.console_every_s:
                last_console = now
                metrics = {"perf/fps": fps, "perf/env_steps": steps, **self.recent_times.metrics()}
                self.recent_times = TimeBreakdown()
                for pid, stats in self.coordinator.stats.items():
                    metrics |= {k if pid == 0 else f"policy{pid}/{k}": v for k, v in stats.summary().items()}
                self.writer.write(metrics, frames)
                line = progress_line(steps, cfg.train.env_steps, cfg.env.frameskip, fps, self._mean_return(),
                                     self.lag.as_tuple(), now - start, cfg.train.max_wall_s)
                if self.first_data is not None and now - progress_at >= cfg.logging.console_every_s:
                    line += f" | no env step for {now - progress_at:.0f} s"  # never the same line for minutes
                log.info(line)
            if (steps >= cfg.train.env_steps or self._target_reached()
                    or (cfg.train.max_wall_s and now - start >= cfg.train.max_wall_s)):
                for result, weights in self.runtime.finish_evaluation(cfg.runtime.hang_timeout_s or 120.0):
                    self._on_evaluation(result, weights)
                return "completed"
            if now - last_ckpt >= cfg.train.checkpoint_every_s:
                last_ckpt = now
                try:
                    self._checkpoint(start)
                except Exception as e:  # e.g. the learner died this instant: retried as soon as it is back
                    retry_s = min(CHECKPOINT_RETRY_S, cfg.train.checkpoint_every_s)
                    last_ckpt = now - cfg.train.checkpoint_every_s + retry_s
                    log.warning("periodic checkpoint skipped (%s); retrying in %g s", str(e).splitlines()[0][:200],
                                retry_s)
                self._write_summary("running", start, start_steps)

    def _on_evaluation(self, result: dict, weights) -> None:
        """Log an evaluation; keep its weights as ``checkpoints/best.pt`` when it beats every earlier one."""
        cfg = self.cfg.eval
        self.last_eval = result
        frames = result["env_steps"] * self.cfg.env.frameskip
        self.writer.write({f"eval/{k}": float(v) for k, v in result.items()
                           if k not in ("policy", "version", "env_steps")}, frames)
        value = result.get("return_mean" if cfg.metric == "return" else cfg.metric)
        if value is None:
            if not self.warned_eval_metric:
                log.warning("eval.metric=%s is not among this env's evaluation results (%s); keeping best.pt by "
                            "the return", cfg.metric, ", ".join(sorted(result)))
                self.warned_eval_metric = True
            value = result["return_mean"]
        best = self.counters["best_eval"]
        improved = best is None or value > best["value"]
        log.info("evaluation at %s frames (policy %d, version %d): return %.3f +- %.3f over %d episodes%s",
                 f"{frames:,}", result["policy"], result["version"], result["return_mean"], result["return_std"],
                 result["episodes"], " | new best, saved checkpoints/best.pt" if improved else "")
        if improved:
            w = weights()
            model = {k: torch.from_numpy(np.array(v, copy=True)) for k, v in w.state.items()}
            learner = {"policy_id": w.policy_id, "version": w.version, "env_steps": result["env_steps"], "model": model}
            self.counters["best_eval"] = {"value": float(value), "metric": cfg.metric, **result}
            counters = {**self.counters, "env_steps": result["env_steps"]}
            self.ckpts.save_best(counters, {w.policy_id: learner}, result)

    def _add_times(self, component: str, seconds: dict[str, float]) -> None:
        self.times.add(component, seconds)
        self.recent_times.add(component, seconds)

    def _fps_after_startup(self, now: float) -> float:
        if self.first_data is None or now <= self.first_data[0]:
            return 0.0
        t0, steps0 = self.first_data
        return (self.coordinator.env_steps - steps0) * self.cfg.env.frameskip / (now - t0)

    def _mean_return(self) -> float | None:
        """The population's mean of its policies' recent mean returns (policy 0's alone without one)."""
        means = [m for s in self.coordinator.stats.values() if (m := s.mean_return()) is not None]
        return float(np.mean(means)) if means else None

    def _target_reached(self) -> bool:
        """Whether to stop for the target: every policy's mean return over its last ``target_window`` episodes
        has reached it (noted once, in ``target_reached_at``) and ``train.stop_at_target`` is on."""
        target = self.cfg.train.target_return
        if target is not None and "target_reached_at" not in self.counters:
            window = self.cfg.train.target_window
            means = [s.mean_return(last=window) if len(s.returns) >= window else None
                     for s in self.coordinator.stats.values()]
            if all(m is not None and m >= target for m in means):
                self.counters["target_reached_at"] = self.coordinator.env_steps
                log.info("target return %.2f reached at %d env steps (mean of last %d episodes: %s)%s", target,
                         self.coordinator.env_steps, window, ", ".join(f"{m:.2f}" for m in means),
                         "" if self.cfg.train.stop_at_target else "; training on to the budget")
        return self.cfg.train.stop_at_target and "target_reached_at" in self.counters

    def _sync_counters(self, start: float) -> None:
        c = self.counters
        c["wall_s"] = self.wall_base + (time.monotonic() - start)
        c["env_steps"], c["episodes"] = self.coordinator.env_steps, self.coordinator.episodes
        c["recent_returns"] = {pid: list(s.returns) for pid, s in self.coordinator.stats.items()}
        c["recent_extras"] = {pid: {k: list(v) for k, v in s.extras.items()} for pid, s in self.coordinator.stats.items()}
        c["policy_steps"] = dict(self.coordinator.policy_steps)

    def _latest_learner_states(self) -> dict | None:
        try:
            state = self.ckpts.load_latest()
        except CheckpointError as e:  # every checkpoint unreadable: a dead learner restarts from scratch
            log.error("%s", e)
            return None
        return None if state is None else state["learners"]

    def _checkpoint(self, start: float) -> None:
        self._sync_counters(start)
        self.counters["saves"] += 1
        population = self.population.state_dict() if self.population is not None else None
        path = self.ckpts.save(dict(self.counters), self.runtime.learner_states(), population)
        log.info("checkpoint %s", path)

    def _write_summary(self, status: str, start: float, start_steps: int) -> dict:
        self._sync_counters(start)
        elapsed = time.monotonic() - start
        c, cfg = self.counters, self.cfg
        lag = self.lag.as_tuple()
        summary = {
            "status": status,
            "env_steps": c["env_steps"],
            "frames": c["env_steps"] * cfg.env.frameskip,
            "wall_s": round(c["wall_s"], 3),
            # fps counts this session's wall time from start-up on; fps_after_startup from the first chunk.
            "fps": round((c["env_steps"] - start_steps) * cfg.env.frameskip / max(elapsed, 1e-9), 1),
            "fps_after_startup": round(self._fps_after_startup(time.monotonic()), 1),
            "episodes": c["episodes"],
            "train_steps": c["train_steps"],
            "dropped_samples": c["dropped_samples"],
            "policies": {str(pid): self._policy_summary(pid) for pid in self.coordinator.stats},
            "target_reached_at_env_steps": c.get("target_reached_at"),
            "policy_lag": None if lag is None else {"min": lag[0], "mean": lag[1], "max": lag[2]},
            "time_breakdown": self.times.fractions(),
            "eval": None if not self.cfg.eval.period else {"last": self.last_eval, "best": c.get("best_eval")},
            "run_dir": str(self.run_dir),
        }
        write_json(self.run_dir / "summary.json", summary)
        return summary

    def _policy_summary(self, pid: int) -> dict:
        s = self.coordinator.stats[pid]
        out = {"return_mean_last100": None if not s.returns else float(np.mean(list(s.returns)[-100:])),
               "episodes": s.episodes, "env_steps": self.coordinator.policy_steps[pid]}
        out |= {f"{k}_mean": float(np.mean(v)) for k, v in s.extras.items() if v}
        if self.population is not None:
            out |= self.population.summary().get(pid, {})
        return out

    def _finish(self, status: str, start: float, start_steps: int, checkpoint: bool) -> dict:
        if checkpoint:
            try:
                for component, seconds in self.runtime.component_times().items():
                    self.times.add(component, seconds)
            except Exception as e:  # a dead inference actor: its share is unknown, nothing else is lost
                log.warning("timing of the runtime's components unavailable: %s", str(e).splitlines()[0][:200])
        try:
            if checkpoint:
                try:
                    self._checkpoint(start)
                except Exception as e:  # a dead runtime cannot give its state; the last checkpoint stands
                    log.error("final checkpoint failed: %s", e)
                    status = "failed" if status == "completed" else status
            summary = self._write_summary(status, start, start_steps)
            if self.times.seconds:
                log.info("where the time went (this session): %s", self.times.line())
            return summary
        finally:
            if self.runtime is not None:
                self.runtime.shutdown()
            if self.writer is not None:
                self.writer.close()
            log.info("run %s: %s", status, self.run_dir)
            logging.getLogger().removeHandler(self.file_log)
            self.file_log.close()


def train(cfg: Config) -> dict:
    """Train until the budget is spent; returns the summary (also written to ``summary.json``)."""
    return TrainingRun(cfg).run()
