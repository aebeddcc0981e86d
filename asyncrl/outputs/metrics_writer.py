"""TensorBoard and wandb. The only module that imports wandb (and only when it is enabled)."""

from __future__ import annotations

import logging
import os
import uuid
from pathlib import Path

from asyncrl.config.schema import LoggingConfig

log = logging.getLogger(__name__)


class MetricsWriter:
    def __init__(self, run_dir: Path, cfg: LoggingConfig, run_name: str, config: dict):
        self.tb = None
        self.wandb_run = None
        if cfg.tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(log_dir=str(run_dir / "tensorboard"))
        if cfg.wandb != "disabled":
            self.wandb_run = self._start_wandb(run_dir, cfg, run_name, config)

    @staticmethod
    def _start_wandb(run_dir: Path, cfg: LoggingConfig, run_name: str, config: dict):
        import wandb

        # One wandb id per run directory, so a resumed run appends to the same wandb run.
        id_file = run_dir / "wandb_id"
        run_id = id_file.read_text().strip() if id_file.exists() else uuid.uuid4().hex[:12]
        id_file.write_text(run_id)
        os.environ.setdefault("WANDB_SILENT", "true")
        return wandb.init(project=cfg.wandb_project, name=run_name, id=run_id, resume="allow", mode=cfg.wandb,
                          dir=str(run_dir), config=config, settings=wandb.Settings(console="off"))

    def write(self, metrics: dict[str, float], step: int) -> None:
        if self.tb is not None:
            for key, value in metrics.items():
                self.tb.add_scalar(key, value, step)
        if self.wandb_run is not None:
            self.wandb_run.log(metrics, step=step)

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()
        if self.wandb_run is not None:
            try:
                self.wandb_run.finish()
            except Exception as e:  # never let a logging backend turn a finished run into a failed one
                log.warning("wandb finish failed: %s", e)
