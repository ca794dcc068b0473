"""The convolutions `tlrun bench --ops --json ops.jsonl` timed, timed again in PyTorch on the same
machine, side by side. Run by hand (not in CI), with the same thread count as tlrun:

    target/release/tlrun bench --ops --json /tmp/ops.jsonl
    OMP_NUM_THREADS=2 python3 benches/ops/torch_conv.py /tmp/ops.jsonl

Each op is timed as tlrun times it: the best of `--repeats` runs after one warm-up; the input and
weight gradients are backward passes to that tensor alone, with the forward subtracted. A ratio
above 1 means tlrun is slower.
"""
import argparse
import json
import time

import torch
import torch.nn.functional as F


def best_ms(repeats, work):
    work()
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        best = min(best, (time.perf_counter() - started) * 1e3)
    return best


def time_conv(shape, repeats):
    x = torch.randn(shape["batch"], shape["in_channels"], shape["side"], shape["side"])
    w = torch.randn(shape["out_channels"], shape["in_channels"], shape["kernel"], shape["kernel"])
    conv = lambda a, b: F.conv2d(a, b, None, shape["stride"], shape["padding"])

    def forward():
        with torch.no_grad():
            conv(x, w).sum().item()

    def backward(to_input):
        a = x.clone().requires_grad_(to_input)
        b = w.clone().requires_grad_(not to_input)
        (grad,) = torch.autograd.grad(conv(a, b).sum(), a if to_input else b)
        grad.sum().item()

    forward_ms = best_ms(repeats, forward)
    return (
        forward_ms,
        max(best_ms(repeats, lambda: backward(True)) - forward_ms, 0.0),
        max(best_ms(repeats, lambda: backward(False)) - forward_ms, 0.0),
    )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("timings")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"{'network':<13} {'px':>4} {'conv':<19} {'tlrun fwd/dX/dW ms':>24} {'torch fwd/dX/dW ms':>24} {'ratio fwd/dX/dW':>18}")
    totals = [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
    for line in open(args.timings):
        timing = json.loads(line)
        shape = timing["shape"]
        ours = (timing["forward_ms"], timing["input_grad_ms"], timing["weight_grad_ms"])
        theirs = time_conv(shape, args.repeats)
        for index in range(3):
            totals[0][index] += ours[index]
            totals[1][index] += theirs[index]
        # A gradient PyTorch computes in under 0.05 ms after subtracting the forward is noise: no ratio.
        ratios = "/".join(f"{a / b:.2f}" if b >= 0.05 else "-" for a, b in zip(ours, theirs))
        show = lambda values: "/".join(f"{value:.2f}" for value in values)
        print(f"{shape['network']:<13} {shape['image_size']:>4} {shape['layer']:<19} {show(ours):>24} {show(theirs):>24} {ratios:>18}")
    ratios = "/".join(f"{a / max(b, 1e-6):.2f}" for a, b in zip(*totals))
    print(f"all shapes: tlrun {'/'.join(f'{v:.0f}' for v in totals[0])} ms, torch {'/'.join(f'{v:.0f}' for v in totals[1])} ms, ratio fwd/dX/dW {ratios}")


if __name__ == "__main__":
    main()
