"""Register the typed schemas in Hydra's ConfigStore, so that YAML in conf/ is checked against them."""

from __future__ import annotations

from hydra.core.config_store import ConfigStore

from asyncrl.config.schema import Config

_registered = False


def register_configs() -> None:
    global _registered
    if _registered:
        return
    ConfigStore.instance().store(name="base_config", node=Config)
    _registered = True
