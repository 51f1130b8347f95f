"""The original MegEngine program with tanh on inputs in [-1, 1], per seed: does it leave the majority-class rate, and when.

The reference row of the tanh_1 + double softmax question (README, "Checking the findings"):
the article's code as written (2-64-256-64-2 MLP of M.Linear + M.Elemwise("TANH") ending in
M.Softmax, F.loss.cross_entropy on top, so two softmaxes; MegEngine's own init; Adam lr 1e-4;
batch 1,024 from the original NumPy generator; inputs scaled to [-1, 1] as the article's
second listing does), with its own seeds (`np.random.seed` for the batches, `mge.random.seed`
for the init). Every EVERY steps a dense evaluation over every pixel gives the ink IoU; a run
has escaped when it passes 0.01 (bench/escape_study.py's rule). Runs inside
bench/.megengine-venv (make_megengine_env.sh): it imports neither overfit nor torch; the label
picture comes as a .npy file (row 0 on top, ink 0, background 1). Prints one JSON line per seed.

    bench/.megengine-venv/bin/python bench/megengine_escape.py --labels gt.npy --seeds 0-19 --steps 6000
"""

import argparse
import json

import numpy as np

import megengine as mge
import megengine.functional as F
import megengine.module as M
from megengine_original import FullyConnected, minibatch_generator  # the article's, as bench/megengine_original.py runs them

ESCAPED_IOU = 0.01
INK = 0


class Network(M.Module):
    def __init__(self, activation):
        super().__init__()
        self.fc1 = FullyConnected(2, 64, activation)
        self.fc2 = FullyConnected(64, 256, activation)
        self.fc3 = FullyConnected(256, 64, activation)
        self.out = M.Linear(64, 2)
        self.softmax = M.Softmax(axis=1)

    def forward(self, x):
        return self.softmax(self.out(self.fc3(self.fc2(self.fc1(x)))))


def dense_ink_iou(net, GT, scaler, offset, chunk=65536):
    """Ink IoU of the argmax prediction over every pixel, in the generator's coordinates (label GT[H - y - 1, x])."""
    H, W = GT.shape
    ys, xs = np.meshgrid(np.arange(H), np.arange(W), indexing="ij")
    coords = np.stack([ys.ravel(), xs.ravel()], 1).astype(np.float32)
    labels = GT[H - 1 - coords[:, 0].astype(np.int64), coords[:, 1].astype(np.int64)]
    pred = np.concatenate([net(mge.tensor(coords[i:i + chunk]) / scaler + offset).numpy().argmax(1)
                           for i in range(0, len(coords), chunk)])
    inter = np.sum((pred == INK) & (labels == INK))
    union = np.sum((pred == INK) | (labels == INK))
    return float(inter / union) if union else 1.0


def parse_seeds(text):
    seeds = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        seeds += list(range(int(lo), int(hi or lo) + 1))
    return seeds


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--labels", required=True)
    p.add_argument("--seeds", default="0-19")
    p.add_argument("--steps", type=int, default=6000)
    p.add_argument("--every", type=int, default=250)
    p.add_argument("--activation", default="TANH")
    args = p.parse_args()
    GT = np.load(args.labels)
    H, W = GT.shape
    scaler, offset = mge.tensor([[H // 2, W // 2]]), mge.tensor([[-1.0, -1.0]])
    for seed in parse_seeds(args.seeds):
        np.random.seed(seed)
        mge.random.seed(seed)
        net = Network(args.activation)
        gm = mge.autodiff.GradManager().attach(net.parameters())
        opt = mge.optimizer.Adam(net.parameters(), lr=1e-4)
        batches = minibatch_generator(GT, batch_size=1024)
        ious, first = [], None
        for step in range(args.steps + 1):
            if step % args.every == 0:
                net.eval()
                iou = dense_ink_iou(net, GT, scaler, offset)
                ious.append([step, round(iou, 4)])
                if first is None and step > 0 and iou > ESCAPED_IOU:
                    first = step
            if step == args.steps:
                break
            batch = next(batches)
            net.train()
            with gm:
                opt.clear_grad()
                loss = F.loss.cross_entropy(net(mge.tensor(batch["data"]) / scaler + offset), mge.tensor(batch["label"]))
                gm.backward(loss)
                opt.step()
        print(json.dumps({"seed": seed, "first_escape": first, "final_iou": ious[-1][1], "ious": ious}), flush=True)


if __name__ == "__main__":
    main()
