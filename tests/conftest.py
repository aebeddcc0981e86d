import os
import signal

import pytest

# Tests never talk to wandb's servers and keep torch from oversubscribing a 2-core machine.
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("OMP_NUM_THREADS", "1")

# A suite started in the background (`nohup`, `&` in a script) inherits SIGINT ignored, and so would every run
# it spawns: Python then installs no KeyboardInterrupt handler and the Ctrl-C tests would fail for the launch,
# not the code. A handler here (reset to the default at exec) gives the runs Ctrl-C back.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True)
def _torch_threads():
    import torch

    torch.set_num_threads(1)
