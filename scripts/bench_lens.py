"""The lens's cost: time to compute W(t, k) (every d out[t, i] / d u[k, j]) for one window and
per window in a batch of 32, against one forward pass, per deep architecture.

The cost does not depend on the weights, so the networks are untrained, at their default sizes,
on 10 channels and 32-row windows (the synthetic study's shape). Not a test: timings vary.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from anomaly.evaluate.lens import effective_weights
from anomaly.models.registry import build_network, network_config

ARCHS = ("lstm", "transformer", "linear_rnn", "lstm_ae", "transformer_ae")
F, T = 10, 32


def best_of(fn, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    one = rng.normal(size=(1, T, F)).astype(np.float32)
    batch = rng.normal(size=(32, T, F)).astype(np.float32)
    print(f"W(t, k) of one {T}-row window of {F} channels ({T * F} backward passes), CPU")
    print(
        f"{'model':16s} {'forward ms':>10s} {'W ms (1)':>10s} {'W ms/window (32)':>17s} {'ratio':>7s}"
    )
    for name in ARCHS:
        net = build_network(name, network_config(name, None, F, T)).eval()
        with torch.no_grad():
            fwd = best_of(lambda net=net: net(torch.as_tensor(one)))
        w1 = best_of(lambda net=net: effective_weights(net, one), 3)
        w32 = best_of(lambda net=net: effective_weights(net, batch), 2) / len(batch)
        print(f"{name:16s} {fwd * 1e3:10.2f} {w1 * 1e3:10.1f} {w32 * 1e3:17.2f} {w1 / fwd:6.0f}x")


if __name__ == "__main__":
    main()
