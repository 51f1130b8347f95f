"""The original training loop ported to plain eager PyTorch, the way a user would first write it.

This is the baseline overfit's trainer is compared with: the article's MegEngine code
with `mge` swapped for `torch`, nothing tuned. NumPy draws every batch on the host
(the original generator, line for line), a fresh `torch.tensor` is built per step,
inputs are scaled by x / (H // 2, W // 2) - 1, and the loss is read back with
`loss.item()` every step. The model is the same 2-64-256-64-2 ReLU MLP but returns
logits for `F.cross_entropy` (no Softmax layer). Run alone:

    python -m bench.plain_port --steps 2000
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def minibatch_generator(GT: np.ndarray, batch_size: int = 64) -> Iterator[dict[str, np.ndarray]]:
    """The original experiment's infinite sampler, unchanged: (y, x) in pixel units and labels."""
    H, W = GT.shape[:2]
    while True:
        data = np.random.rand(batch_size, 2) * [H - 1, W - 1]
        axis = np.round(data).astype(np.int32)
        ay, ax = axis[:, 0], axis[:, 1]
        label = GT[H - ay - 1, ax].astype(np.int32)
        inp_data = data.astype(np.float32)
        yield {"data": inp_data, "label": label}


def make_network() -> nn.Module:
    """2-64-256-64-2 with ReLU, returning logits."""
    return nn.Sequential(
        nn.Linear(2, 64), nn.ReLU(),
        nn.Linear(64, 256), nn.ReLU(),
        nn.Linear(256, 64), nn.ReLU(),
        nn.Linear(64, 2),
    )


def train(GT: np.ndarray, steps: int, block: int = 100, device: str = "cpu", batch_size: int = 1024,
          seed: int = 0) -> list[float]:
    """Train for `steps` steps; returns the wall seconds of each block of `block` steps."""
    np.random.seed(seed)
    torch.manual_seed(seed)
    H, W = GT.shape
    net = make_network().to(device)
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    scaler = torch.tensor([[H // 2, W // 2]], dtype=torch.float32, device=device)

    losses = []
    blocks = []
    t_block = time.perf_counter()
    for step, batch in enumerate(minibatch_generator(GT, batch_size)):
        if step >= steps:
            break
        inp = torch.tensor(batch["data"], device=device) / scaler - 1.0
        gt = torch.tensor(batch["label"], dtype=torch.long, device=device)
        net.train()
        opt.zero_grad()
        pred = net(inp)
        loss = F.cross_entropy(pred, gt)
        loss.backward()
        opt.step()
        losses.append(loss.item())  # what everyone writes to log the loss

        if (step + 1) % block == 0:
            now = time.perf_counter()
            blocks.append(now - t_block)
            t_block = now
    return blocks


def main() -> None:
    from overfit.config import DataConfig
    from overfit.targets import load_target

    from .common import block_stats, device_name

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--block", type=int, default=100)
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    GT = load_target(DataConfig()).labels
    blocks = train(GT, args.steps, args.block, args.device)
    stats = block_stats(blocks, args.block, 2, 1024)
    print(json.dumps({"bench": "train_throughput", "impl": "plain_port", "device": device_name(torch.device(args.device)),
                      "threads": torch.get_num_threads(), **stats}))


if __name__ == "__main__":
    main()
