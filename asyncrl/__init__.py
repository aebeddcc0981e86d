"""asyncrl: asynchronous APPO with V-trace on Ray."""

import os

# Backs torch's CPU allocations of 2 MB and more with transparent huge pages. The learner allocates a few
# hundred MB of fresh activations and gradients every step, and first-touching them in 4 KB pages cost a quarter
# of its step on a 2-core AVX2 box (benchmarks/RESULTS.md, "Learner alone"). Torch reads the variable once, at
# its first allocation: hence here, before any asyncrl module imports torch, and in the environment, which Ray's
# workers inherit. A user's own setting wins (THP_MEM_ALLOC_ENABLE=0 turns it off); on a kernel with THP off,
# or "always", it changes nothing.
os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")
