"""One training run, from the run directory to the summary: the loop around a runtime.

The runtime (serial or Ray) moves data; this module decides when to stop, what to log, when to
checkpoint, and makes sure that however the run ends, a final checkpoint and ``summary.json`` exist.
"""

from __future__ import annotations

import logging
import signal
import time
from dataclasses import asdict
from pathlib import Path

from asyncrl.config.families import describe_spaces
from asyncrl.config.loader import ConfigError
from asyncrl.config.schema import Config
from asyncrl.env_api.factory import EnvFactoryError
from asyncrl.hardware import PrecisionError
from asyncrl.outputs.checkpoint import CheckpointError, CheckpointManager, initial_weights
from asyncrl.outputs.console import progress_line
from asyncrl.outputs.metrics_writer import MetricsWriter
from asyncrl.outputs.run_dir import prepare_run_dir, write_config
from asyncrl.pbt.driver import PopulationDriver
from asyncrl.runtime.builders import policy_ids
from asyncrl.runtime.checks import PopulationError
from asyncrl.runtime.contract import Events, Runtime
from asyncrl.runtime.machine import DeviceError
from asyncrl.runtime.stall import RunStalled
from asyncrl.timing import TimeBreakdown
from asyncrl.training.best_checkpoint import BestCheckpoint
from asyncrl.training.run_state import RunState
from asyncrl.training.summary import LagStats, write_summary

log = logging.getLogger("asyncrl")
# A periodic checkpoint that failed (a learner down at that moment) is tried again this soon, so that a kill of
# the driver meanwhile loses at most about one checkpoint period.
CHECKPOINT_RETRY_S = 5.0
USER_ERRORS = (EnvFactoryError, CheckpointError, DeviceError, PopulationError, ConfigError, PrecisionError)


def make_runtime(cfg: Config, learner_states: dict | None, restore) -> Runtime:
    if cfg.runtime.kind == "serial":
        from asyncrl.runtime.serial import SerialRuntime

        return SerialRuntime(cfg, learner_states)
    from asyncrl.ray_runtime.runtime import RayRuntime  # the only path that imports ray

    return RayRuntime(cfg, learner_states, restore=restore)


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
        self.checkpoint = self.ckpts.load_latest() if cfg.restart_behavior == "resume" else None
        if self.checkpoint is not None:
            self.state = RunState.from_checkpoint(self.checkpoint["counters"])
            log.info("resuming from %s at %d env steps", self.checkpoint["path"], self.state.env_steps)
        else:
            self.state = RunState(next_eval=cfg.eval.period)
        self.progress = self.state.progress(policy_ids(cfg), cfg.logging.stats_window)
        self.wall_base = self.state.wall_s  # wall time of earlier sessions of this run
        self.session_start_steps = self.state.env_steps
        self.lag = LagStats()
        self.best = BestCheckpoint(cfg.eval, cfg.env.frameskip, self.ckpts)
        # Where each component's time went: over the whole session, and since the last console line.
        self.times, self.recent_times = TimeBreakdown(), TimeBreakdown()
        self.first_data: tuple[float, int] | None = None  # (time, env steps) of the first collected chunk
        self.runtime: Runtime | None = None
        self.initial_learners: dict | None = None  # the weights train.init_from gave a fresh run
        self.population: PopulationDriver | None = None
        self.writer: MetricsWriter | None = None

    def run(self) -> dict:
        cfg, start = self.cfg, time.monotonic()
        status = "failed"
        previous_sigterm = signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
        try:
            if self.state.env_steps >= cfg.train.env_steps:
                log.info("run %s already reached train.env_steps=%d; raise it to train further",
                         self.run_dir, cfg.train.env_steps)
                status = "completed"
                return self._finish(status, start, checkpoint=False)
            self._start()
            status = self._loop(start)
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
            summary = self._finish(status, start, checkpoint=self.runtime is not None)
        return summary

    def _start(self) -> None:
        cfg = self.cfg
        self.writer = MetricsWriter(self.run_dir, cfg.logging, cfg.name, asdict(cfg))
        learners = self.checkpoint and self.checkpoint["learners"]
        if not learners and cfg.train.init_from:
            learners = self.initial_learners = initial_weights(cfg.train.init_from, policy_ids(cfg))
            log.info("policies %s start from the weights of %s", sorted(learners), cfg.train.init_from)
        self.runtime = runtime = make_runtime(cfg, learners, restore=self._latest_learner_states)
        write_config(self.run_dir, cfg)  # the runtime started: the checkpoint (if any) fits this config
        log.info("decided for this machine: %s", runtime.hardware)
        spaces = runtime.spaces
        log.info("defaults of the %s family (conf/family/%s.yaml; %s), under the env's config, the recipe and "
                 "the command line", cfg.family, cfg.family, describe_spaces(spaces.obs, spaces.action))
        self.population = PopulationDriver(cfg, runtime, self.progress, self.run_dir, self.writer.write,
                                           self.checkpoint and self.checkpoint.get("population"))
        # Ray samplers run their local policy copy on the CPU; the serial runtime shares the learner's device.
        resolved = runtime.cfg.runtime  # auto resolved for this machine
        on_cpu = cfg.runtime.kind == "ray" and resolved.inference == "local"
        inference = f"{resolved.inference} on {'cpu' if on_cpu else runtime.device}"
        extras = (f" | population {cfg.population.size}{' with PBT' if cfg.pbt.enabled else ''}"
                  if cfg.population.size > 1 else "")
        dashboard = getattr(runtime, "dashboard_url", None)  # a cluster's; the embedded Ray runs none
        extras += f" | ray dashboard {dashboard}" if dashboard else ""
        log.info("run dir %s | tensorboard --logdir %s | wandb %s | runtime %s, %s | learner on %s, inference "
                 "%s%s", self.run_dir, self.run_dir / "tensorboard", cfg.logging.wandb, cfg.runtime.kind,
                 runtime.layout(), runtime.device, inference, extras)

    def _loop(self, start: float) -> str:
        cfg, state = self.cfg, self.state
        last_console = last_ckpt = time.monotonic()
        progress_at, progress_steps = last_console, self.progress.env_steps  # when the steps last advanced
        while True:
            self._take(self.runtime.poll())
            steps = self.progress.env_steps
            if cfg.eval.period and steps >= state.next_eval and self.runtime.start_evaluation(steps):
                state.next_eval = steps + cfg.eval.period
            now = time.monotonic()
            if steps != progress_steps:
                progress_at, progress_steps = now, steps
            if now - last_console >= cfg.logging.console_every_s:
                last_console = now
                self._console(now, start, now - progress_at)
            if (steps >= cfg.train.env_steps or self._target_reached()
                    or (cfg.train.max_wall_s and now - start >= cfg.train.max_wall_s)):
                for result, weights in self.runtime.finish_evaluation(cfg.runtime.hang_timeout_s or 120.0):
                    self.best.record(result, weights, state, self.writer)
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
                self._write_summary("running", start)

    def _take(self, events: Events) -> None:
        """One poll's results into the run's progress, metrics and population decisions."""
        for result, weights in events.evaluated:
            self.best.record(result, weights, self.state, self.writer)
        for meta in events.collected:
            self.progress.record(meta.steps_per_policy, meta.episodes)
            self._add_times("samplers", meta.timing)
            for note in meta.env_restarts:
                self.state.env_restarts += 1
                log.warning("sampler %d, %s; its episode was dropped", meta.sampler_index, note)
        if self.first_data is None and events.collected:
            self.first_data = (time.monotonic(), self.progress.env_steps)  # start-up ends with the first chunk
        frames = self.progress.env_steps * self.cfg.env.frameskip
        for pid, metrics in events.trained:
            self._add_times("learner", {"train": metrics.pop("time/train_s", 0.0),
                                        "wait": metrics.pop("time/wait_s", 0.0)})
            self.lag.add(metrics)
            self.state.train_steps += 1
            self.state.dropped_samples += int(metrics["stats/dropped_samples"])
            self.writer.write(metrics if pid == 0 else {f"policy{pid}/{k}": v for k, v in metrics.items()}, frames)
            self.population.after_training(pid, frames)

    def _console(self, now: float, start: float, quiet_s: float) -> None:
        """The console line, and the same figures as metrics."""
        cfg, steps = self.cfg, self.progress.env_steps
        fps = self._fps_after_startup(now)
        metrics = {"perf/fps": fps, "perf/env_steps": steps, **self.recent_times.metrics()}
        self.recent_times = TimeBreakdown()
        for pid, stats in self.progress.stats.items():
            metrics |= {k if pid == 0 else f"policy{pid}/{k}": v for k, v in stats.summary().items()}
        self.writer.write(metrics, steps * cfg.env.frameskip)
        line = progress_line(steps, cfg.train.env_steps, cfg.env.frameskip, fps, self.progress.mean_return(),
                             self.lag.as_tuple(), now - start, cfg.train.max_wall_s)
        if self.first_data is not None and quiet_s >= cfg.logging.console_every_s:
            line += f" | no env step for {quiet_s:.0f} s"  # never the same line for minutes
        log.info(line)

    def _add_times(self, component: str, seconds: dict[str, float]) -> None:
        self.times.add(component, seconds)
        self.recent_times.add(component, seconds)

    def _fps_after_startup(self, now: float) -> float:
        if self.first_data is None or now <= self.first_data[0]:
            return 0.0
        t0, steps0 = self.first_data
        return (self.progress.env_steps - steps0) * self.cfg.env.frameskip / (now - t0)

    def _target_reached(self) -> bool:
        """Whether to stop for the target: every policy's mean return over its last ``target_window`` episodes
        has reached it (noted once, in ``target_reached_at``) and ``train.stop_at_target`` is on."""
        target, state = self.cfg.train.target_return, self.state
        if target is not None and state.target_reached_at is None:
            window = self.cfg.train.target_window
            means = [s.mean_return(last=window) if len(s.returns) >= window else None
                     for s in self.progress.stats.values()]
            if all(m is not None and m >= target for m in means):
                state.target_reached_at = self.progress.env_steps
                log.info("target return %.2f reached at %d env steps (mean of last %d episodes: %s)%s", target,
                         state.target_reached_at, window, ", ".join(f"{m:.2f}" for m in means),
                         "" if self.cfg.train.stop_at_target else "; training on to the budget")
        return self.cfg.train.stop_at_target and state.target_reached_at is not None

    def _sync_state(self, start: float) -> None:
        self.state.take(self.progress)
        self.state.wall_s = self.wall_base + (time.monotonic() - start)

    def _latest_learner_states(self) -> dict | None:
        try:
            checkpoint = self.ckpts.load_latest()
        except CheckpointError as e:  # every checkpoint unreadable: a dead learner restarts from scratch
            log.error("%s", e)
            return None
        # Before the run's first checkpoint a learner restarts where the run started (train.init_from or scratch).
        return self.initial_learners if checkpoint is None else checkpoint["learners"]

    def _checkpoint(self, start: float) -> None:
        self._sync_state(start)
        self.state.saves += 1
        population = self.population.state_dict() if self.population is not None else None
        path = self.ckpts.save(self.state.to_checkpoint(), self.runtime.learner_states(), population)
        log.info("checkpoint %s", path)

    def _write_summary(self, status: str, start: float) -> dict:
        self._sync_state(start)
        return write_summary(
            self.run_dir / "summary.json", status=status, cfg=self.cfg, state=self.state, progress=self.progress,
            session_steps=self.state.env_steps - self.session_start_steps, session_s=time.monotonic() - start,
            fps_after_startup=self._fps_after_startup(time.monotonic()), lag=self.lag, times=self.times,
            last_eval=self.best.last, population=self.population.summary() if self.population else {},
            run_dir=self.run_dir)

    def _finish(self, status: str, start: float, checkpoint: bool) -> dict:
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
            summary = self._write_summary(status, start)
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
