"""Starting Ray, or joining a running cluster: one line on bad input, and the trainer's SIGTERM handler kept."""

from __future__ import annotations

import logging
import os
import signal
import threading

import ray

from asyncrl.config.schema import Config

ADDRESS_TIMEOUT_S = 3.0  # a Ray head answers a TCP connect at once; a dead address must not hang the start


def _check_address_answers(address: str) -> None:
    """TCP-connect to a ``[ray://]host:port`` address: ray.init retries a dead one for a minute or more."""
    import socket

    from asyncrl.config.loader import ConfigError

    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return  # 'auto', 'local' or a malformed address: ray.init judges those itself, at once
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=ADDRESS_TIMEOUT_S).close()
    except OSError as e:
        reason = (f"no reply in {ADDRESS_TIMEOUT_S:g} s" if isinstance(e, TimeoutError)
                  else e.strerror or str(e) or type(e).__name__)
        raise ConfigError(f"runtime.address={address!r} does not answer ({reason}): expected the host:port of a "
                          f"running Ray head (printed by 'ray start --head'), or no runtime.address for an "
                          f"embedded local Ray") from e


def start_ray(cfg: Config, num_actors: int) -> tuple[bool, str | None]:
    """Join ``runtime.address`` or start an embedded local Ray (without a dashboard: it costs a core's share
    on a small machine). Returns whether we connected (and so disconnect at the end), and the dashboard's
    URL when the cluster has one."""
    if ray.is_initialized():
        return False, None
    # ray.init replaces the caller's SIGTERM handler with one that calls sys.exit (and Ray's C++ core adds
    # one that prints a stack): the trainer's, which turns SIGTERM into a stop with a final checkpoint and
    # status 'interrupted', is put back.
    sigterm = signal.getsignal(signal.SIGTERM)
    try:
        if cfg.runtime.address:
            from asyncrl.config.loader import ConfigError

            _check_address_answers(cfg.runtime.address)
            try:
                context = ray.init(address=cfg.runtime.address, logging_level=logging.WARNING)
            except (ValueError, ConnectionError) as e:  # a malformed address, or 'auto' with no cluster running
                raise ConfigError(f"runtime.address={cfg.runtime.address!r} cannot be joined "
                                  f"({(str(e).splitlines() or [type(e).__name__])[0]}): expected host:port of a "
                                  f"running Ray head, or no runtime.address for an embedded local Ray") from e
            url = getattr(context, "dashboard_url", None)
            return True, (url if not url or "://" in url else f"http://{url}")
        # The embedded Ray is this run's alone, reached by no other machine: Ray 2.60 turns token authentication on
        # for it and warns about that on every start, a warning a user can do nothing about. Off unless the user
        # set a mode (RAY_AUTH_MODE=token keeps it on); the workers inherit it.
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        # Every actor asks for one logical CPU; the threads they use are set per actor, so logical CPUs may
        # exceed the physical ones on a small machine.
        num_cpus = cfg.runtime.num_cpus or max(os.cpu_count() or 1, num_actors)
        ray.init(num_cpus=num_cpus, include_dashboard=False, logging_level=logging.WARNING,
                 configure_logging=True, log_to_driver=True)
        return True, None
    finally:
        if sigterm is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, sigterm)
