"""benchmarks/proc_tree.py: the peak RSS of a process tree sees children, grandchildren and pattern matches."""

import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from proc_tree import PeakTreeMemory, peak_memory_of_call, peak_memory_of_command  # noqa: E402

MB = 2**20

# The parent allocates nothing; its child fills 200 MB (bytes * n writes every page, unlike bytearray(n)
# whose calloc'd pages stay untouched) and holds them for a while.
_CHILD_ALLOCATES = textwrap.dedent("""
    import subprocess, sys
    child = "import time; b = b'x' * (200 * 2**20); time.sleep(%s)"
    subprocess.run([sys.executable, "-c", child], check=True)
""")


def _python(code: str, *args: str) -> list[str]:
    return [sys.executable, "-c", code, *args]


def test_child_allocation_counts_in_peak():
    rc, mem = peak_memory_of_command(_python(_CHILD_ALLOCATES % 1.5), interval_s=0.1)
    assert rc == 0
    assert mem.peak_bytes > 150 * MB, mem.peak_bytes / MB
    assert mem.peak_num_procs >= 2


def test_idle_tree_stays_small():
    """The same tree without the allocation stays well under the threshold: the test above can fail."""
    rc, mem = peak_memory_of_command(
        _python(_CHILD_ALLOCATES.replace("200 * 2**20", "1") % 1.0), interval_s=0.1
    )
    assert rc == 0
    assert mem.num_samples >= 3
    assert 0 < mem.peak_bytes < 100 * MB, mem.peak_bytes / MB


def test_extra_pattern_counts_a_process_outside_the_tree():
    """A detached process (not a descendant) is counted only when its command line matches a pattern."""
    marker = f"proc-tree-test-{uuid.uuid4().hex}"
    detached = subprocess.Popen(
        _python("import time; b = b'x' * (200 * 2**20); time.sleep(30)", marker), start_new_session=True
    )
    try:
        deadline = time.monotonic() + 10
        while psutil.Process(detached.pid).memory_info().rss < 150 * MB:
            assert time.monotonic() < deadline, "the detached process never allocated"
            time.sleep(0.05)
        # The detached process is this process's child, so measure from another root: a short sleeper.
        sleeper = subprocess.Popen(_python("import time; time.sleep(0.6)"))
        with PeakTreeMemory(sleeper.pid, interval_s=0.1) as without:
            sleeper.wait()
        sleeper = subprocess.Popen(_python("import time; time.sleep(0.6)"))
        with PeakTreeMemory(sleeper.pid, extra_patterns=(marker,), interval_s=0.1) as with_pattern:
            sleeper.wait()
        assert without.peak_bytes < 100 * MB
        assert with_pattern.peak_bytes > 150 * MB
        assert with_pattern.peak_num_procs == 2
    finally:
        os.kill(detached.pid, signal.SIGKILL)
        detached.wait()


def test_callable_in_this_process():
    def allocate():
        b = b"x" * (200 * MB)
        time.sleep(0.5)
        return len(b)

    result, mem = peak_memory_of_call(allocate, interval_s=0.05)
    assert result == 200 * MB
    assert mem.peak_bytes > psutil.Process().memory_info().rss + 150 * MB


def test_cpu_by_role_counts_the_child_that_burns_cpu_and_not_the_one_that_sleeps():
    """A child that spins for ~0.6 s of CPU shows under its program's name; a sleeping sibling adds next to
    nothing, so the figure follows where the CPU went rather than how many processes there are."""
    burn = "import time; t = time.process_time(); exec('while time.process_time() - t < 0.6: pass'); time.sleep(0.5)"
    code = textwrap.dedent(f"""
        import subprocess, sys
        sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(1.5)"])
        subprocess.run([sys.executable, "-c", {burn!r}], check=True)
        sleeper.wait()
    """)
    rc, mem = peak_memory_of_command(_python(code), interval_s=0.1)
    assert rc == 0
    by_role = mem.cpu_by_role()
    role = psutil.Process().name()  # this interpreter's program name, as the children's
    assert set(by_role) == {role}, by_role
    assert 0.5 < by_role[role] < 1.5, by_role
