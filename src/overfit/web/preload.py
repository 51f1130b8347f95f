"""Imported once, by the lab's fork server (`training.context`): every lab process is forked warm from it.

A run's training process and a create's process are forked from the fork server, so
what it has loaded they have at no cost. Importing torch and this package is most of
it, but a first run in a fresh interpreter still pays seconds more (matplotlib's fonts
and first figure, torch's lazily imported parts, the first evaluation). So the fork
server makes and trains one tiny run in a temporary folder, once, and throws it away:
each process forked after starts in milliseconds.

The warm-up runs on one thread: no OpenMP thread pool may exist in a process that
forks; each child starts its own, with its share of the cores. A warm-up that fails
costs only speed.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import warnings

import torch

from ..config import RunConfig
from ..session import Session
from . import runner  # noqa: F401  (what every lab process runs)

TINY = {"data": {"text": "A", "width": 16, "height": 8}, "model": {"hidden": [8]},
        "schedule": {"steps": 2, "eval_every": 1, "log_every": 1, "eval_batch_size": 16}, "optim": {"batch_size": 16}}


def warm_up() -> None:
    torch.set_num_threads(1)
    folder = tempfile.mkdtemp(prefix="overfit-warm-up-")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Session.start(RunConfig.from_dict(TINY), folder, "warm-up") as session:
                session.run()
    except Exception:  # only speed is lost
        logging.getLogger("overfit.lab").debug("the fork server's warm-up failed", exc_info=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


warm_up()
