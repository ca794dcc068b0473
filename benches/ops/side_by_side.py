"""tlrun and PyTorch on the same networks, alternating one network at a time, many short pairs:
on a machine whose neighbours move single runs by 15-50%, the median of the pairs' ratios is
steadier than the ratio of two long runs taken minutes apart. Run by hand (not in CI):

    python3 benches/ops/side_by_side.py --tlrun target/debug/tlrun --pairs 10 [--batch N] [--isa avx2] [resnet18@224 ...]

Each pair runs `tlrun bench --network NAME@PX` then `torch_network.py NAME@PX` (2 threads, the
same steps); it prints every pair and, per network, the median ratio and how many pairs tlrun won.
"""
import argparse
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def images_per_second(command, env=None):
    """(train, infer) img/s from the first result row a bench command prints."""
    output = subprocess.run(command, capture_output=True, text=True, env=env, check=True).stdout
    for line in output.splitlines():
        fields = line.split()
        if len(fields) == 5 and fields[0].startswith("resnet") and fields[1].isdigit():
            return float(fields[3]), float(fields[4])
    sys.exit(f"no result row in the output of {' '.join(command)}:\n{output}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("networks", nargs="*", default=["resnet_small@32", "resnet18@28", "resnet18@64"])
    parser.add_argument("--tlrun", default="target/debug/tlrun")
    parser.add_argument("--pairs", type=int, default=10)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument(
        "--isa",
        choices=["portable", "avx2", "avx512"],
        help="cap both sides: TLRUN_KERNELS_ISA for tlrun; ATEN_CPU_CAPABILITY and ONEDNN_MAX_CPU_ISA for PyTorch "
        "(avx2: avx2 / AVX2; portable: default / SSE41)",
    )
    args = parser.parse_args()
    torch_env = dict(os.environ, OMP_NUM_THREADS="2")
    tlrun_env = dict(os.environ)
    if args.isa:
        tlrun_env["TLRUN_KERNELS_ISA"] = args.isa
        if args.isa != "avx512":
            torch_env["ATEN_CPU_CAPABILITY"] = {"avx2": "avx2", "portable": "default"}[args.isa]
            torch_env["ONEDNN_MAX_CPU_ISA"] = {"avx2": "AVX2", "portable": "SSE41"}[args.isa]
    # Where the figures come from: quoted beside them in the docs.
    import datetime
    import platform
    import torch
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=HERE).stdout.strip()
    print(f"side_by_side.py on {datetime.date.today()} at commit {commit}, {os.cpu_count()} cores, {platform.processor() or platform.machine()}, torch {torch.__version__}, tlrun {args.tlrun}, batch {args.batch}, isa {args.isa or 'best'}", flush=True)
    ratios = {network: [] for network in args.networks}
    for pair in range(args.pairs):
        for network in args.networks:
            ours = images_per_second(
                [args.tlrun, "bench", "--network", network, "--steps", str(args.steps), "--batch", str(args.batch)], tlrun_env
            )
            theirs = images_per_second(
                [sys.executable, os.path.join(HERE, "torch_network.py"), network, "--steps", str(args.steps), "--batch", str(args.batch)],
                torch_env,
            )
            ratio = (ours[0] / theirs[0], ours[1] / theirs[1])
            ratios[network].append(ratio)
            print(
                f"pair {pair + 1:>2} {network:<16} train {ours[0]:7.1f} / {theirs[0]:7.1f} = {ratio[0]:.2f}x"
                f"   infer {ours[1]:7.1f} / {theirs[1]:7.1f} = {ratio[1]:.2f}x",
                flush=True,
            )
    print()
    for network, pairs in ratios.items():
        train = [r[0] for r in pairs]
        infer = [r[1] for r in pairs]
        print(
            f"{network:<16} median ratio: train {statistics.median(train):.2f}x ({sum(r > 1 for r in train)}/{len(train)} pairs won),"
            f" infer {statistics.median(infer):.2f}x ({sum(r > 1 for r in infer)}/{len(infer)} pairs won)"
        )


if __name__ == "__main__":
    main()
