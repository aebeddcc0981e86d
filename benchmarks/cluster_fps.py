"""The cost of the distributed path: the same run on the embedded Ray, on a one-node and on a two-node cluster.

    python benchmarks/cluster_fps.py [--env doom_basic] [--frames 300000] [--record]

The clusters are simulated with `ray.cluster_utils.Cluster` on this machine: every node is a raylet of its own
on the same cores, so a second node adds no compute; what it adds is the cross-node path (each node's object
store, weights and trajectories moving between them). The layout is the same in all three runs: 2 samplers x 4
envs and one learner (one node: head with 3 CPU slots; two nodes: head with 2, the second node with 1, so one
sampler each), unpinned (two simulated nodes would pin their samplers to the same core), the env's recipe
otherwise. Frames/s after start-up, as the trainer measures it. The embedded run is repeated at the end: the
difference between its two runs is this machine's noise, against which the cluster rows are read.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _record import append  # noqa: E402
from vs_sample_factory import recipe  # noqa: E402

FRAMESKIP = {"cartpole": 1}  # others: VizDoom's 4


def run(env: str, frames: int, node_cpus: list[int] | None) -> dict:
    """One training run; ``node_cpus`` None: the embedded Ray, else a simulated cluster with these nodes."""
    import ray
    from ray.cluster_utils import Cluster

    from asyncrl.config.loader import load_config
    from asyncrl.training.trainer import train

    cluster = None
    overrides = [*recipe(env), "runtime.num_samplers=2", "runtime.num_envs=4", "runtime.pin_cores=false"]
    try:
        if node_cpus is not None:
            cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": node_cpus[0]})
            for cpus in node_cpus[1:]:
                cluster.add_node(num_cpus=cpus)
            cluster.wait_for_nodes()
            overrides.append(f"runtime.address={cluster.address}")
        with tempfile.TemporaryDirectory() as run_dir:
            steps = frames // FRAMESKIP.get(env, 4)
            cfg = load_config([*overrides, f"run_dir={run_dir}", f"train.env_steps={steps}",
                               "logging.wandb=disabled", "logging.tensorboard=false"])
            return train(cfg)
    finally:
        if ray.is_initialized():
            ray.shutdown()
        if cluster is not None:
            cluster.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="doom_basic")
    parser.add_argument("--frames", type=int, default=300_000)
    parser.add_argument("--record", action="store_true", help="append the table to benchmarks/RESULTS.md")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    rows = []
    # The embedded run comes first and last: on a shared 2-core machine the drift between two identical runs
    # is the yardstick the cluster runs are read against.
    for label, nodes in (("embedded local Ray", None), ("cluster, 1 node (3 CPU slots)", [3]),
                         ("cluster, 2 nodes (2 + 1 CPU slots)", [2, 1]), ("embedded local Ray, again", None)):
        summary = run(args.env, args.frames, nodes)
        rows.append((label, summary["fps_after_startup"], summary["fps"]))
        print(rows[-1], flush=True)
    base = (rows[0][1] + rows[-1][1]) / 2
    table = [f"{args.env}, {args.frames:,} frames per run, 2 samplers x 4 envs, one learner, unpinned.", "",
             "| runtime | frames/s after start-up | frames/s whole run | vs embedded (mean of both) |", "|---|---|---|---|"]
    table += [f"| {label} | {after:,.0f} | {whole:,.0f} | {after / base:.2f}x |" for label, after, whole in rows]
    print("\n".join(table))
    if args.record:
        append(f"Cluster overhead, {args.env}", "\n".join(table))


if __name__ == "__main__":
    main()
