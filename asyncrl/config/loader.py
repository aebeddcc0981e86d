"""Compose a ``Config`` from ``conf/`` and command-line overrides, or fail with one clear line.

``conf/`` is the repository's folder in a checkout (an editable install) and ``asyncrl/conf`` in an installed
wheel. A user's project adds configs of its own without touching ours: every directory in
``$ASYNCRL_CONFIG_PATH`` (``os.pathsep``-separated) that holds ``env/``, ``experiment/``, ``family/`` or
``runtime/`` yaml files is on Hydra's search path after ours, and its names are known to ``env=``,
``experiment=``, ``family=`` and ``runtime=`` (and listed in errors) like ours.

``family=auto`` (the default) is decided here: the env is built once to read its spaces
(``asyncrl/config/families.py``), and the config is composed again with that family's defaults, which the env's
config, a recipe and the command line then override.

Hydra's own errors are multi-line and end in a traceback hint; researchers mistype keys all the time, so
every override is checked against the schema first and the message names the key, what was given and
what would be right.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import fields, is_dataclass
from importlib import resources
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from asyncrl.config.families import family_of
from asyncrl.config.schema import Config, ConfigValueError
from asyncrl.config.store import register_configs

USER_CONFIG_PATH = "ASYNCRL_CONFIG_PATH"


def _own_conf_dir() -> Path:
    """asyncrl's configs: ``asyncrl/conf`` where a wheel installed them, else the checkout's ``conf/``."""
    installed = Path(str(resources.files("asyncrl") / "conf"))
    return installed if (installed / "config.yaml").is_file() else Path(__file__).resolve().parents[2] / "conf"


CONF_DIR = _own_conf_dir()
GROUPS = ("env", "family", "runtime", "experiment")
# Keys under these paths are free-form dicts handed to a factory.
FREE_FORM = ("env.kwargs", "population.policy_hyperparameters")
# Sample Factory's names for our keys: people coming from it type these first.
SF_NAMES = {
    "num_policies": "population.size", "with_pbt": "pbt.enabled", "pbt_period_env_steps": "pbt.period",
    "pbt_start_mutation": "pbt.start_after", "pbt_replace_fraction": "pbt.replace_fraction",
    "learning_rate": "algo.lr", "exploration_loss_coeff": "algo.entropy_coeff",
    "num_workers": "runtime.num_samplers", "num_envs_per_worker": "runtime.num_envs",
    "train_for_env_steps": "train.env_steps", "env_frameskip": "env.frameskip", "recurrence": "algo.rollout",
    "use_rnn": "model.core", "rnn_type": "model.core", "rnn_size": "model.core_size",
}


class ConfigError(Exception):
    """A bad experiment definition, explained in one line."""


def user_config_dirs() -> list[Path]:
    """The directories of ``$ASYNCRL_CONFIG_PATH``, in its order."""
    dirs = []
    for entry in os.environ.get(USER_CONFIG_PATH, "").split(os.pathsep):
        if not entry:
            continue
        path = Path(entry).expanduser().resolve()
        if not path.is_dir():
            raise ConfigError(f"{USER_CONFIG_PATH}={entry!r}: no such directory; expected directories "
                              f"(separated by {os.pathsep!r}) holding env/, experiment/ or runtime/ yaml files")
        dirs.append(path)
    return dirs


def group_options(group: str) -> list[str]:
    """The config names of ``group``: ours and those of every directory in ``$ASYNCRL_CONFIG_PATH``."""
    found = {p.stem: p for p in (CONF_DIR / group).glob("*.yaml")}
    for d in user_config_dirs():
        for p in sorted((d / group).glob("*.yaml")):
            if p.stem in found:  # Hydra would take the first silently
                raise ConfigError(f"{group}={p.stem} is defined twice, by {found[p.stem]} and {p} "
                                  f"({USER_CONFIG_PATH}): rename one of them")
            found[p.stem] = p
    return sorted(found)


def schema_keys(cls: type = Config, prefix: str = "") -> list[str]:
    """Every settable dotted key of the schema."""
    keys = []
    for f in fields(cls):
        key = f"{prefix}{f.name}"
        default = f.default_factory() if callable(f.default_factory) else f.default  # type: ignore[misc]
        if is_dataclass(default):
            keys.extend(schema_keys(type(default), key + "."))
        else:
            keys.append(key)
    return keys


def _close(word: str, options: list[str]) -> str:
    leaf = word.rsplit(".", 1)[-1]
    matches = ([SF_NAMES[leaf]] if leaf in SF_NAMES else []) + difflib.get_close_matches(word, options, n=3, cutoff=0.5)
    matches = list(dict.fromkeys(matches))[:3]
    return ", ".join(matches) if matches else ", ".join(options[:8])


# conf/env files that hold a family of ids (reached through an id) rather than one env.
ID_CONFIGS = ("gym", "atari")


def _gym_ids() -> list[str]:
    import gymnasium

    return sorted(gymnasium.envs.registry.keys())


def _resolve_env(name: str) -> list[str]:
    """env=NAME: a file in conf/env, else an ALE id through conf/env/atari.yaml (its preprocessing and family),
    else any registered Gymnasium id through conf/env/gym.yaml."""
    if name in group_options("env"):
        return [f"env={name}"]
    if name.startswith("ALE/"):
        # The name stays the id without its namespace: it names the run's directory.
        return ["env=atari", f"env.name={name.removeprefix('ALE/')}", f"env.id={name}"]
    if name in _gym_ids():
        return ["env=gym", f"env.name={name}", f"env.id={name}"]
    names = [n for n in group_options("env") if n not in ID_CONFIGS]
    raise ConfigError(
        f"env={name!r} is unknown: expected one of {', '.join(names)} or a registered Gymnasium id "
        f"(or env/{name}.yaml in a directory of {USER_CONFIG_PATH}); closest: {_close(name, names + _gym_ids())}"
    )


def _parse(overrides: list[str]) -> list:
    """Parse one override at a time, so an error names the argument that is wrong, not the whole line."""
    parser = OverridesParser.create()
    parsed = []
    for text in overrides:
        try:
            parsed.append(parser.parse_override(text))
        except Exception as e:  # Hydra's grammar errors: 'cartpole', '--resume', 'algo.lr=[1,'
            reason = (str(e).splitlines() or [type(e).__name__])[0]
            raise ConfigError(f"cannot parse argument {text!r} ({reason}): expected key=value, "
                              f"e.g. env=cartpole or algo.lr=0.0003") from e
    return parsed


def _rewrite(overrides: list[str]) -> list[str]:
    """Check each override's key against the schema and turn our shorthands into Hydra overrides."""
    parsed = _parse(overrides)
    keys = schema_keys()
    out: list[str] = []
    for text, ov in zip(overrides, parsed, strict=True):
        key = ov.key_or_group
        if key == "env":
            out += _resolve_env(str(ov.value()))
        elif key == "experiment":
            name = str(ov.value())
            # A recipe file applies its deltas; any other name just names the run.
            out += ([f"+experiment={name}"] if name in group_options("experiment") else []) + [f"name={name}"]
        elif key in ("runtime", "family") and ov.value() not in group_options(key):
            raise ConfigError(f"{key}={ov.value()!r} is unknown: expected one of "
                              f"{', '.join(group_options(key))}")
        elif any(key.startswith(p + ".") for p in FREE_FORM):
            out.append("++" + text.lstrip("+"))  # free-form dicts take new keys
        elif key in GROUPS or key in keys:
            out.append(text)
        else:
            raise ConfigError(f"unknown config key {key!r} (given {text!r}); closest valid keys: "
                              f"{_close(key, keys)}")
    return out


def load_config(overrides: list[str]) -> Config:
    """Compose conf/config.yaml with ``overrides`` and return the validated, typed ``Config``."""
    try:
        hydra_overrides = _rewrite(overrides)
    except Exception as e:  # the override grammar itself (e.g. 'key=' with a bad quote)
        if isinstance(e, ConfigError):
            raise
        raise ConfigError(f"cannot parse overrides {' '.join(overrides)!r}: {str(e).splitlines()[0]}") from e
    hydra_overrides += _searchpath_override()
    cfg = _compose(hydra_overrides)
    if cfg.family == "auto":
        family = _family_from_spaces(cfg)
        cfg = _compose([o for o in hydra_overrides if not o.startswith("family=")] + [f"family={family}"])
    assert isinstance(cfg, Config)
    if not cfg.name:
        cfg.name = cfg.env.name
    if not cfg.run_dir:
        _check_run_name(cfg.name)
    return cfg


def _compose(hydra_overrides: list[str]) -> Config:
    register_configs()
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            composed = compose(config_name="config", overrides=hydra_overrides)
        cfg = OmegaConf.to_object(composed)
    except ConfigValueError as e:
        raise ConfigError(f"{e.key}={e.given!r} is out of range: {e.hint}") from e
    except OmegaConfBaseException as e:
        raise ConfigError(_omegaconf_message(e)) from e
    except Exception as e:  # Hydra's composition errors wrap the OmegaConf cause
        cause = e.__cause__
        if isinstance(cause, ConfigValueError):
            raise ConfigError(f"{cause.key}={cause.given!r} is out of range: {cause.hint}") from e
        if isinstance(cause, OmegaConfBaseException):
            raise ConfigError(_omegaconf_message(cause)) from e
        raise ConfigError(" ".join(str(e).split())) from e
    finally:
        GlobalHydra.instance().clear()
    assert isinstance(cfg, Config)
    return cfg


def _family_from_spaces(cfg: Config) -> str:
    """The family of ``cfg.env``, from the spaces of one env built for it (and closed again)."""
    from asyncrl.env_api.factory import EnvFactoryError, probe_spaces

    try:
        spaces = probe_spaces(cfg.env)
    except EnvFactoryError as e:
        raise ConfigError(str(e)) from e
    return family_of(spaces.obs, spaces.action)


def _searchpath_override() -> list[str]:
    """``$ASYNCRL_CONFIG_PATH``'s directories on Hydra's search path, after ours (so ours stay the primary)."""
    dirs = user_config_dirs()
    if not dirs:
        return []
    quoted = ["'file://" + str(d).replace("\\", "\\\\").replace("'", "\\'") + "'" for d in dirs]
    return [f"hydra.searchpath=[{','.join(quoted)}]"]


def _check_run_name(name: str) -> None:
    """The run directory is runs/NAME, and restart_behavior=overwrite deletes it: '..' would point it elsewhere."""
    if name.startswith("/") or any(part in (".", "..") for part in name.replace("\\", "/").split("/")):
        raise ConfigError(f"experiment={name!r} is not a run name: expected a name such as my_run that stays "
                          f"inside runs/ (no '.', '..' or leading '/'); use run_dir=PATH for a directory elsewhere")


def _omegaconf_message(e: OmegaConfBaseException) -> str:
    key = getattr(e, "full_key", None) or "config"
    msg = getattr(e, "msg", None) or str(e)
    first = msg.splitlines()[0]
    if "Missing mandatory value" in first:
        return f"{key} is required but not set: add {key}=VALUE"
    return f"{key}: {first}"


def config_to_yaml(cfg: Config) -> str:
    return OmegaConf.to_yaml(OmegaConf.structured(cfg))
