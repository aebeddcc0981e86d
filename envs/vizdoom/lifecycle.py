"""Engine processes: cleanup when their owner dies, core pinning, and headless start-up details.

How vizdoom runs its engine (measured with vizdoom 1.3.2): ``DoomGame.init()`` forks and execs the
``vizdoom`` binary from a native helper thread of the calling process, so the engine is a child of the
Python process (same process group), talking to it through ``/dev/shm/ViZDoom{SM,MQCtr,MQDoom}<id>``. If
the Python process is SIGKILLed the engine is re-parented to init and keeps running (sometimes spinning a
core), and its shared-memory files stay behind (~10 MB each).

Why a watchdog and not PR_SET_PDEATHSIG: the parent-death signal can only be set in the child between fork
and exec, which vizdoom does not let us hook; and it fires when the *thread* that forked exits, which
here is vizdoom's helper thread, not the process. Instead, the first engine a process starts also starts
one small watchdog process per owner process. The watchdog blocks reading a pipe whose only write end the
owner holds (close-on-exec, so engines do not inherit it); the pipe reaches EOF when the owner dies, however
it dies, and the watchdog then SIGKILLs every ``vizdoom`` process whose environment carries the owner's
token and removes their shared-memory files. The token is an environment variable set before any engine
starts, so even an engine caught mid-``init()`` is found. The watchdog runs in its own session (a Ctrl-C
or a kill of the owner's process group does not reach it) and exits once it has cleaned up.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
import weakref
from pathlib import Path

log = logging.getLogger(__name__)

TOKEN_VAR = "ASYNCRL_VIZDOOM_OWNER"

_WATCHDOG = r"""
import os, signal, sys
for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
    signal.signal(s, signal.SIG_IGN)
marker = sys.argv[1].encode()
while os.read(0, 4096):
    pass
for d in os.listdir("/proc"):
    if not d.isdigit():
        continue
    try:
        with open(f"/proc/{d}/environ", "rb") as f:
            if marker not in f.read().split(b"\0"):
                continue
        with open(f"/proc/{d}/cmdline", "rb") as f:
            args = f.read().split(b"\0")
    except OSError:
        continue
    if os.path.basename(args[0]) != b"vizdoom":
        continue
    try:
        os.kill(int(d), signal.SIGKILL)
    except OSError:
        pass
    if b"+viz_instance_id" in args[:-1]:
        iid = args[args.index(b"+viz_instance_id") + 1].decode()
        for kind in ("SM", "MQCtr", "MQDoom"):
            try:
                os.unlink(f"/dev/shm/ViZDoom{kind}{iid}")
            except OSError:
                pass
"""

_lock = threading.Lock()
_owner: tuple[int, subprocess.Popen, int] | None = None  # (owner pid, watchdog, pipe write fd)


def ensure_watchdog() -> None:
    """Start this process's engine watchdog if it has none (idempotent, thread-safe, fork-aware)."""
    global _owner
    with _lock:
        if _owner is not None and _owner[0] == os.getpid():
            return
        token = f"{os.getpid()}-{secrets.token_hex(8)}"
        read_fd, write_fd = os.pipe()  # both close-on-exec: no engine or other child inherits the write end
        try:
            proc = subprocess.Popen([sys.executable, "-I", "-S", "-c", _WATCHDOG, f"{TOKEN_VAR}={token}"],
                                    stdin=read_fd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                    start_new_session=True)
        except BaseException:
            os.close(write_fd)
            raise
        finally:
            os.close(read_fd)
        os.environ[TOKEN_VAR] = token  # inherited by every engine started from now on
        _owner = (os.getpid(), proc, write_fd)


def _forget_parent_watchdog() -> None:
    """In a forked child: drop the parent's pipe end, so the parent's watchdog fires when the parent dies."""
    global _owner, _lock
    _lock = threading.Lock()  # another thread may have held it at the fork
    if _owner is not None:
        with contextlib.suppress(OSError):
            os.close(_owner[2])
        _owner = None


os.register_at_fork(after_in_child=_forget_parent_watchdog)


def watchdog_pid() -> int | None:
    """The pid of this process's watchdog, if it has one (for tests and diagnostics)."""
    return _owner[1].pid if _owner is not None and _owner[0] == os.getpid() else None


def engine_pids() -> list[int]:
    """Pids of the live vizdoom engines that are children of this process."""
    pids = []
    for children in Path(f"/proc/{os.getpid()}/task").glob("*/children"):
        try:
            candidates = children.read_text().split()
        except OSError:
            continue
        for pid in candidates:
            try:
                if Path(f"/proc/{pid}/comm").read_text().strip() == "vizdoom":
                    pids.append(int(pid))
            except OSError:
                continue
    return sorted(pids)


def engine_args(pid: int) -> list[str]:
    """The command line of process ``pid`` (empty if it is gone)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def kill_engines(pids: list[int]) -> None:
    """SIGKILL these vizdoom engines and remove their shared-memory files (what the watchdog does for a dead
    owner). The client of a killed engine sees it exit and raises; one stuck elsewhere leaves the files behind."""
    for pid in pids:
        args = engine_args(pid)
        if not args or os.path.basename(args[0]) != "vizdoom":
            continue  # gone, or the pid was reused
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
        if "+viz_instance_id" in args[:-1]:
            iid = args[args.index("+viz_instance_id") + 1]
            for kind in ("SM", "MQCtr", "MQDoom"):
                with contextlib.suppress(OSError):
                    os.unlink(f"/dev/shm/ViZDoom{kind}{iid}")


def pin_to_core(core: int) -> None:
    """Pin every thread of this process, and its running engines, to ``core``.

    Engines started later inherit the affinity (vizdoom forks them from a thread it creates in ``init()``).
    One core for a sampler and its engines avoids the cross-core hand-off on every ``make_action``, which is
    what makes an unpinned process slower.
    """
    cpus = os.cpu_count() or 1
    if not isinstance(core, int) or isinstance(core, bool) or not 0 <= core < cpus:
        raise ValueError(f"pin_core={core!r} is invalid: expected an integer in [0, {cpus - 1}] or None")
    for task in os.listdir("/proc/self/task"):
        try:
            os.sched_setaffinity(int(task), {core})
        except ProcessLookupError:
            continue  # a thread that ended meanwhile
    for pid in engine_pids():
        try:
            os.sched_setaffinity(pid, {core})
        except ProcessLookupError:
            continue


def prepare_engine_start() -> str:
    """Everything a process needs before it creates a DoomGame; returns the engine's ini path.

    The native DoomGame constructor creates ``./_vizdoom`` with a check-then-mkdir that races when several
    engines start at once; creating it first avoids that. The engine's own ini goes to the temp dir rather
    than ``./_vizdoom.ini``.
    """
    ensure_watchdog()
    Path("_vizdoom").mkdir(exist_ok=True)
    return os.path.join(tempfile.gettempdir(), f"asyncrl-vizdoom-{os.getuid()}.ini")


_silence_lock = threading.Lock()
_silence_depth = 0
_saved_fds: tuple[int, int] | None = None


@contextlib.contextmanager
def engines_started_silent():
    """Engines started inside this block write their stdout and stderr to /dev/null for their whole life.

    A network player's engine prints its connection progress ("Waiting for players", "Contacting host",
    "Found AI1 ...") on its own stdout/stderr, whatever ``console_enabled`` says, and inherits them from this
    process (Ray forwards a sampler's to the driver's console): a healthy duel would fill a user's stderr with
    lines they cannot act on. vizdoom forks the engine inside ``init()`` and offers no hook, so this process's
    fds 1 and 2 point to /dev/null while the engine forks. The players of a match start at the same time in
    threads, so the fds are swapped by the first and restored by the last. What this process itself writes
    during the block (a second or so) is lost too; ``init`` errors are exceptions, not lost.
    """
    global _silence_depth, _saved_fds
    with _silence_lock:
        if _silence_depth == 0:
            sys.stdout.flush()
            sys.stderr.flush()
            null = os.open(os.devnull, os.O_WRONLY)
            _saved_fds = (os.dup(1), os.dup(2))
            os.dup2(null, 1)
            os.dup2(null, 2)
            os.close(null)
        _silence_depth += 1
    try:
        yield
    finally:
        with _silence_lock:
            _silence_depth -= 1
            if _silence_depth == 0 and _saved_fds is not None:
                sys.stdout.flush()
                sys.stderr.flush()
                for fd, saved in zip((1, 2), _saved_fds, strict=True):
                    os.dup2(saved, fd)
                    os.close(saved)
                _saved_fds = None


class _HangWatch:
    """One daemon thread per process that SIGKILLs the engine of any env whose engine call has been blocked
    for longer than its ``step_timeout``: the blocked call then raises, and the env recovers as from a crash.
    (vizdoom's own calls have no timeout: a stopped or wedged engine blocks its client forever.)"""

    def __init__(self) -> None:
        self._envs: weakref.WeakSet = weakref.WeakSet()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def watch(self, env) -> None:
        """``env`` has ``call_started`` (monotonic seconds or None), ``step_timeout`` and ``engine_pid``."""
        with self._lock:
            self._envs.add(env)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="vizdoom-hang-watch", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            time.sleep(HANG_POLL_S)
            now = time.monotonic()
            with self._lock:
                envs = list(self._envs)
            for env in envs:
                started, pid = env.call_started, env.engine_pid
                if started is not None and pid is not None and now - started > env.step_timeout:
                    env.hang_detected = now - started
                    log.warning("vizdoom engine %d blocked a step for %.1f s (> step_timeout %g s): killing it",
                                pid, now - started, env.step_timeout)
                    kill_engines([pid])
                    env.engine_pid = None  # killed once; the env's recovery starts a new one


HANG_POLL_S = 0.5
hang_watch = _HangWatch()
