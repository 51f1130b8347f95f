"""Tests for the training loop: learning, events, reproducibility, resume exactness, divergence."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from overfit import RunConfig, Trainer, TrainingDiverged, train
from overfit.config import DataConfig, ModelConfig, OptimConfig, ScheduleConfig
from overfit.targets import load_target
from overfit.training import DeviceError, derived_seeds, resolve_device


def tiny(steps: int = 300, eval_every: int = 100, **model) -> RunConfig:
    """A small text target and a small net: trains in well under a second."""
    return RunConfig(
        data=DataConfig(text="HI", width=48, height=24),
        model=ModelConfig(hidden=(32, 32), **model),
        optim=OptimConfig(lr=3e-3, batch_size=256),
        schedule=ScheduleConfig(steps=steps, eval_every=eval_every, eval_batch_size=512, log_every=50),
    )


def weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_learns_a_small_text_target():
    cfg = tiny(steps=1500, eval_every=500)
    result = train(cfg)
    majority = result.target.majority_rate
    first, last = result.history[0], result.history[-1]
    assert last["step"] == 1500
    assert last["dense_acc"] > majority + 0.15, (majority, last)
    assert last["dense_acc"] > 0.9
    assert last["dense_loss"] < 0.5 * first["dense_loss"]
    assert 0 < last["dense_iou"] <= 1


def test_events_and_history():
    events = []
    result = train(tiny(steps=250, eval_every=100), on_event=events.append)
    evals = [e for e in events if e.kind == "eval"]
    # Step 0 (the untrained net), every eval_every steps, and the last step.
    assert [e.step for e in evals] == [0, 100, 200, 250]
    assert [r["step"] for r in result.history] == [0, 100, 200, 250]
    for e in evals:
        assert e.prediction.shape == (24, 48)
        assert e.prediction.dtype == np.float32
        assert 0.0 <= e.prediction.min() and e.prediction.max() <= 1.0
        assert set(e.metrics) >= {"batch_acc", "batch_iou", "batch_loss", "dense_acc", "dense_iou", "dense_loss"}
    logs = [e.step for e in events if e.kind == "log"]
    assert logs == [50, 100, 150, 200, 250]
    assert events[-1].kind == "end" and events[-1].step == 250
    assert not result.interrupted


def test_same_seed_same_numbers_and_different_seed_differs():
    a = train(tiny(steps=120, eval_every=60))
    b = train(tiny(steps=120, eval_every=60))
    c = train(dataclasses.replace(tiny(steps=120, eval_every=60), seed=1))
    strip = lambda h: [{k: v for k, v in r.items() if k != "train_seconds"} for r in h]  # noqa: E731
    assert strip(a.history) == strip(b.history)
    for (k, va), vb in zip(weights(a.model).items(), weights(b.model).values()):
        assert torch.equal(va, vb), k
    assert strip(a.history) != strip(c.history)


def test_training_does_not_touch_global_rng():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    train(tiny(steps=10, eval_every=10))
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize("batchnorm", [False, True])
def test_stop_and_resume_gives_identical_weights(batchnorm):
    cfg = tiny(steps=300, eval_every=100, batchnorm=batchnorm)
    target = load_target(cfg.data)
    straight = Trainer(cfg, target)
    straight.run()

    first = Trainer(cfg, target)

    def stop_at_150(event):
        if event.kind == "log" and event.step == 150:
            event.trainer.request_stop()

    result = first.run(stop_at_150)
    assert result.interrupted and result.step == 150
    state = first.state_dict()

    second = Trainer(cfg, target)
    second.load_state_dict(state)
    second.history = list(first.history)
    second.run()
    assert second.step == 300
    for (k, va), vb in zip(weights(straight.model).items(), weights(second.model).values()):
        assert torch.equal(va, vb), k
    assert [r["step"] for r in second.history] == [0, 100, 200, 300]


def test_divergence_names_the_step():
    cfg = dataclasses.replace(tiny(steps=400, eval_every=100), optim=OptimConfig(lr=1e30, batch_size=256))
    cfg = cfg.with_overrides({"model.input_range": "none"})
    with pytest.raises(TrainingDiverged) as info:
        train(cfg)
    assert 1 <= info.value.step <= 400
    assert f"at step {info.value.step}" in str(info.value)
    assert "diverged" in str(info.value)


def test_divergence_step_is_exact():
    # Make the loss non-finite at a known step by poisoning the weights from a callback.
    cfg = tiny(steps=300, eval_every=100)

    def poison(event):
        if event.kind == "eval" and event.step == 100:
            with torch.no_grad():
                for p in event.trainer.model.parameters():
                    p.fill_(float("nan"))

    with pytest.raises(TrainingDiverged) as info:
        train(cfg, on_event=poison)
    assert info.value.step == 101


def test_derived_seeds_are_distinct_and_stable():
    s = derived_seeds(0)
    assert len(set(s.values())) == len(s)
    assert s == derived_seeds(0)
    assert s != derived_seeds(1)


def test_device_errors():
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(DeviceError, match="unknown device 'gpu0'"):
        resolve_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="'cuda' is not available"):
            resolve_device("cuda")


@pytest.mark.slow
def test_compiled_step_matches_the_eager_step():
    # torch.compile fuses and reorders arithmetic, so equal within float tolerance, not bit for bit.
    cfg = tiny(steps=60, eval_every=60)
    eager = train(cfg)
    compiled = train(dataclasses.replace(cfg, compile=True))
    for (k, a), b in zip(weights(eager.model).items(), weights(compiled.model).values()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=k)
    assert compiled.history[-1]["dense_acc"] == pytest.approx(eager.history[-1]["dense_acc"], abs=0.01)


def test_trainer_matches_a_straightforward_reference_loop():
    # The same seed through a plain loop (sample, forward, loss, backward, textbook Adam) gives the same
    # weights: equal to float tolerance, because the trainer's fused Adam orders its arithmetic differently.
    from overfit.losses import LOSSES
    from overfit.models import build_model
    from overfit.sampling import Sampler

    cfg = tiny(steps=40, eval_every=40)
    result = train(cfg)

    seeds = derived_seeds(cfg.seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seeds["init"])
        model = build_model(cfg.model, result.target.height, result.target.width)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.optim.lr, betas=(cfg.optim.beta1, cfg.optim.beta2), eps=cfg.optim.eps,
                           foreach=False)
    sampler = Sampler(torch.from_numpy(result.target.labels.astype(np.int64)))
    gen = torch.Generator().manual_seed(seeds["train"])
    for _ in range(cfg.schedule.steps):
        yx, labels = sampler.sample(cfg.optim.batch_size, gen)
        loss = LOSSES[cfg.loss_name](model(yx), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
    for (k, a), b in zip(weights(result.model).items(), weights(model).values()):
        # Each Adam step moves a weight by up to lr = 3e-3: a missing or extra step is far outside this.
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=k)
