"""The original experiment's MegEngine training loop, timed: the baseline from the article.

Runs inside bench/.megengine-venv (Python 3.10, MegEngine 1.13.0; see
make_megengine_env.sh), so it imports neither overfit nor torch: the suite saves the
label picture as a .npy file and passes its path. The code is the article's: the
2-64-256-64-2 ReLU MLP ending in M.Softmax, F.loss.cross_entropy on top of it,
GradManager, Adam lr 1e-4, batch 1024 from the original NumPy generator, inputs
scaled to [-1, 1]. Only the plotting evaluation every 2000 steps is left out; the loss
is read back once per timed block (MegEngine runs asynchronously, so the timer must
wait for the queued work). Prints one JSON line with each block's seconds:

    bench/.megengine-venv/bin/python bench/megengine_original.py --labels gt.npy --steps 2000
"""

import argparse
import json
import time

import numpy as np

import megengine as mge
import megengine.functional as F
import megengine.module as M


def minibatch_generator(GT, batch_size=64):
    H, W = GT.shape[:2]
    while True:
        data = np.random.rand(batch_size, 2) * [H - 1, W - 1]
        axis = np.round(data).astype(np.int32)
        ay, ax = axis[:, 0], axis[:, 1]
        label = GT[H - ay - 1, ax].astype(np.int32)
        inp_data = data.astype(np.float32)
        yield {"data": inp_data, "label": label}


def FullyConnected(in_features, out_features, activation="RELU"):
    modules = [M.Linear(in_features, out_features)]
    if activation:
        modules.append(M.Elemwise(activation))
    return M.Sequential(*modules)


class Network(M.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = FullyConnected(in_features=2, out_features=64)
        self.fc2 = FullyConnected(in_features=64, out_features=256)
        self.fc3 = FullyConnected(in_features=256, out_features=64)
        self.out = M.Linear(in_features=64, out_features=2)
        self.softmax = M.Softmax()

    def forward(self, inp):
        x = self.fc1(inp)
        x = self.fc2(x)
        x = self.fc3(x)
        x = self.out(x)
        x = self.softmax(x)
        return x


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--labels", required=True, help=".npy of the (H, W) label picture, row 0 on top")
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--block", type=int, default=100)
    args = p.parse_args()

    GT = np.load(args.labels)
    H, W = GT.shape
    np.random.seed(0)
    net = Network()
    gm = mge.autodiff.GradManager().attach(net.parameters())
    opt = mge.optimizer.Adam(net.parameters(), lr=1e-4)
    scaler, offset = mge.tensor([[H // 2, W // 2]]), mge.tensor([[-1.0, -1.0]])

    train_ds = minibatch_generator(GT, batch_size=1024)
    blocks, losses = [], []
    t_block = time.perf_counter()
    for step, batch in enumerate(train_ds):
        if step >= args.steps:
            break
        inp, gt = mge.tensor(batch["data"]) / scaler + offset, mge.tensor(batch["label"])
        net.train()
        with gm:
            opt.clear_grad()
            pred = net(inp)
            loss = F.loss.cross_entropy(pred, gt)
            gm.backward(loss)
            opt.step()
        if (step + 1) % args.block == 0:
            losses.append(float(loss.numpy()))  # waits for the block's queued work
            now = time.perf_counter()
            blocks.append(now - t_block)
            t_block = now

    print(json.dumps({
        "impl": "megengine_original",
        "megengine": mge.__version__,
        "megengine_device": str(mge.get_default_device()),
        "block_seconds": blocks,
        "block_steps": args.block,
        "final_loss": losses[-1] if losses else None,
    }))


if __name__ == "__main__":
    main()
