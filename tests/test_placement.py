"""The layout rules: how many samplers where, the learner's node, and the start line that says why (no Ray)."""

import pytest

from asyncrl.config.loader import load_config
from asyncrl.runtime.placement import Node, describe_plan, plan_cluster, plan_local, share


def _cfg(*overrides: str):
    return load_config(["env=cartpole", *overrides])


@pytest.mark.parametrize(("cores", "overrides", "samplers"), [
    (2, [], 2),  # unpinned: one per core, the learner shares them
    (2, ["runtime.pin_cores=true"], 1),  # pinned: the learner keeps a core of its own
    (16, ["runtime.pin_cores=true", "runtime.learner_threads=4"], 12),
    (1, ["runtime.pin_cores=true"], 1),  # never none
    (16, ["runtime.num_samplers=3"], 3),  # what the user asked for
])
def test_local_samplers_follow_the_cores_and_the_learners_share(cores, overrides, samplers):
    assert plan_local(cores, _cfg(*overrides)).num_samplers == samplers


def test_the_start_line_says_the_layout_and_why():
    cfg = _cfg("runtime.pin_cores=true", "runtime.num_envs=8")
    line = describe_plan(plan_local(2, cfg), cfg, 2)
    assert line == "1 sampler(s) x 8 envs, pinned, learner on 1 core(s) of its own (auto: one per core of 2 the " \
                   "learner leaves)"
    cfg = _cfg("runtime.num_samplers=3")
    assert describe_plan(plan_local(2, cfg), cfg, 2).endswith("(runtime.num_samplers=3)")


def test_a_cluster_puts_learners_on_the_gpu_node_and_samplers_by_free_slots():
    nodes = [Node("driver", 4, is_driver=True), Node("gpu", 8, gpus=1.0), Node("cpu", 16)]
    plan = plan_cluster(nodes, _cfg("population.size=2"))
    assert plan.learner_node == "gpu"
    # The GPU node gives 2 slots to its learners; remote inference is off on CPU-only configs.
    assert plan.samplers.count("driver") == 4 and plan.samplers.count("gpu") == 6
    assert plan.samplers.count("cpu") == 16
    assert describe_plan(plan, _cfg()).startswith("26 sampler(s) x 8 envs on 3 nodes (auto")


def test_share_splits_by_weight_and_gives_the_remainder_to_the_largest_fractions():
    assert share(5, [1, 1, 2]) == [1, 1, 3]
    assert share(3, [0, 0, 0]) == [1, 1, 1]
    assert sum(share(7, [3, 5, 1])) == 7
