import os

import pytest

# Tests never talk to wandb's servers and keep torch from oversubscribing a 2-core machine.
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(autouse=True)
def _torch_threads():
    import torch

    torch.set_num_threads(1)
