"""PyTorch's side of `tlrun bench`: the same networks (resnet_small at 32 px, resnet18 at 28 and 64 px,
batch 64, 10 classes, random images), training steps (AdamW) and inference batches per second on
the CPU with the same thread count. Run by hand, on a quiet machine, right after `tlrun bench`:

    OMP_NUM_THREADS=2 python3 benches/ops/torch_network.py [resnet18@28 ...] [--steps N]
"""
import sys
import time

import torch
import torch.nn as nn
import torchvision


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + (x if self.down is None else self.down(x)))


def resnet_small(classes):
    """tlrun's resnet_small (src/arch/resnet.rs): a 3x3 stem of 16, stages of 16/32/64, two blocks each."""
    layers = [nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU()]
    cin = 16
    for width, stride in [(16, 1), (32, 2), (64, 2)]:
        layers += [Block(cin, width, stride), Block(width, width, 1)]
        cin = width
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, classes))


def measure(name, model, size, batch=64, warmup=2, steps=8):
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    labels = torch.arange(batch) % 10
    # Inputs drawn before the clock starts, as `tlrun bench` does: the network is timed, not the
    # random number generator.
    batches = [torch.randn(batch, 3, size, size) for _ in range(warmup + steps)]
    model.train()
    for step, images in enumerate(batches):
        if step == warmup:
            started = time.perf_counter()
        optimizer.zero_grad()
        loss_fn(model(images), labels).backward()
        optimizer.step()
    train = steps * batch / (time.perf_counter() - started)
    model.eval()
    with torch.no_grad():
        for step, images in enumerate(batches):
            if step == warmup:
                started = time.perf_counter()
            model(images)
    infer = steps * batch / (time.perf_counter() - started)
    print(f"{name:<14} {size:>5} {batch:>6} {train:>12.1f} {infer:>12.1f}")


def network(spec):
    """`NAME@PX` as `tlrun bench --network` takes it: resnet_small, or any torchvision resnet
    (resnet18, resnet34, resnet50, ...) at any size."""
    name, size = spec.split("@")
    model = resnet_small(10) if name == "resnet_small" else getattr(torchvision.models, name)(num_classes=10)
    return name, model, int(size)


DEFAULT_NETWORKS = ["resnet_small@32", "resnet18@28", "resnet18@64"]


def option(args, flag, default):
    """The value after `flag` in `args` (removed from it), or `default`."""
    if flag not in args:
        return default
    at = args.index(flag)
    value = int(args[at + 1])
    del args[at : at + 2]
    return value


if __name__ == "__main__":
    # Optional arguments: the networks to time (`resnet18@28`, as `tlrun bench --network` takes
    # them), `--steps N` (default 8, as `tlrun bench --steps`) and `--batch N` (default 64).
    args = sys.argv[1:]
    steps = option(args, "--steps", 8)
    batch = option(args, "--batch", 64)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, threads: {torch.get_num_threads()}")
    print(f"{'network':<14} {'size':>5} {'batch':>6} {'train img/s':>12} {'infer img/s':>12}")
    for spec in args or DEFAULT_NETWORKS:
        name, model, size = network(spec)
        measure(name, model, size, batch=batch, steps=steps)
