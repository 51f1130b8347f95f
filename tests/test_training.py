"""Tests for the training loop: learning, events, reproducibility, resume exactness, divergence."""

from __future__ import annotations

import contextlib
import dataclasses
import math

import numpy as np
import pytest
import torch
from helpers import LEARNS, tiny_config

from overfit import RunConfig, Trainer, TrainingDiverged, train
from overfit.config import OptimConfig
from overfit.targets import load_target
from overfit.training import DeviceError, Probe, derived_seeds, mean_loss, resolve_device


def tiny(steps: int = 300, eval_every: int = 100, **model) -> RunConfig:
    """The shared run that learns (tests/helpers.py LEARNS): a small text target and a small net, trains in about a second."""
    return tiny_config({"schedule.steps": steps, "schedule.eval_every": eval_every, **{f"model.{k}": v for k, v in model.items()}},
                       base=LEARNS)


def weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_learns_a_small_text_target():
    cfg = tiny(steps=600, eval_every=300)
    result = train(cfg)
    majority = result.target.majority_rate
    first, last = result.history[0], result.history[-1]
    assert last["step"] == 600
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
    for step in range(cfg.schedule.steps):
        yx, labels = sampler.sample(cfg.optim.batch_size, seeds["train"], step)  # each step's batch: (seed, step) alone
        loss = LOSSES[cfg.loss_name](model(yx), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
    for (k, a), b in zip(weights(result.model).items(), weights(model).values()):
        # Each Adam step moves a weight by up to lr = 3e-3: a missing or extra step is far outside this.
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=k)


# -- learning-rate decay ----------------------------------------------------------------------


def decaying(steps: int = 40, decay_steps: int | None = None) -> RunConfig:
    cfg = tiny(steps=steps, eval_every=1)  # the optimizer's state (its rate) is written back before every evaluation
    return dataclasses.replace(cfg, optim=dataclasses.replace(cfg.optim, lr=1e-2, lr_final=1e-4, lr_decay_steps=decay_steps),
                               schedule=dataclasses.replace(cfg.schedule, log_every=1))


def observed_rates(trainer: Trainer, **run) -> dict[int, float]:
    """Update number (1-based) -> the rate the optimizer used for it, read from a callback after each step."""
    rates: dict[int, float] = {}

    def watch(event):
        if event.kind == "log":
            rates[event.step] = event.trainer.optimizer.param_groups[0]["lr"]

    trainer.run(watch, **run)
    return rates


def test_lr_decay_starts_at_lr_and_ends_exactly_at_lr_final():
    optim = decaying().optim
    steps = 40
    rates = [optim.lr_at(k, steps) for k in range(steps)]  # update k + 1 follows k completed steps
    assert rates[0] == 1e-2
    assert math.isclose(rates[-1], 1e-4, rel_tol=1e-12)
    # Exponential: log-linear from log(lr) to log(lr_final) over updates 1..steps (an independent formula).
    for k, rate in enumerate(rates):
        expected = math.exp(math.log(1e-2) + k / (steps - 1) * (math.log(1e-4) - math.log(1e-2)))
        assert math.isclose(rate, expected, rel_tol=1e-12), k
    assert all(a > b for a, b in zip(rates, rates[1:]))
    # Past the horizon the rate stays at lr_final.
    assert math.isclose(optim.lr_at(steps, steps), 1e-4, rel_tol=1e-12)
    assert math.isclose(optim.lr_at(10**6, steps), 1e-4, rel_tol=1e-12)


def test_lr_decay_steps_sets_the_horizon():
    optim = decaying(decay_steps=25).optim
    assert optim.lr_at(0, 40) == 1e-2
    assert math.isclose(optim.lr_at(24, 40), 1e-4, rel_tol=1e-12)  # the 25th update
    assert optim.lr_at(23, 40) > 1e-4 * 1.1
    for k in range(24, 40):
        assert optim.lr_at(k, 40) == optim.lr_at(24, 40)
    # A horizon of one update: lr_final from the first.
    assert math.isclose(decaying(decay_steps=1).optim.lr_at(0, 40), 1e-4, rel_tol=1e-12)


def test_without_lr_final_the_rate_is_constant():
    optim = OptimConfig(lr=3e-3)
    assert {optim.lr_at(k, 100) for k in (0, 1, 50, 99, 1000)} == {3e-3}


def test_the_optimizer_uses_the_scheduled_rate_at_every_update():
    cfg = decaying(steps=40)
    rates = observed_rates(Trainer(cfg))
    assert sorted(rates) == list(range(1, 41))
    assert rates[1] == 1e-2
    assert math.isclose(rates[40], 1e-4, rel_tol=1e-12)
    for step, rate in rates.items():  # computed on the device in float64: to its last digit
        assert math.isclose(rate, cfg.optim.lr_at(step - 1, 40), rel_tol=1e-14), step


def test_pinned_fixes_the_decay_horizon():
    cfg = decaying(steps=40)
    pinned = cfg.pinned()
    assert pinned.optim.lr_decay_steps == 40
    assert dataclasses.replace(pinned, optim=cfg.optim) == cfg  # nothing else changes
    assert pinned.pinned() == pinned
    assert decaying(steps=40, decay_steps=25).pinned().optim.lr_decay_steps == 25
    constant = tiny(steps=40)
    assert constant.pinned() is constant  # no decay: nothing to pin

    extended = pinned.with_overrides({"schedule.steps": "100"})
    for k in range(40):
        assert extended.optim.lr_at(k, 100) == pinned.optim.lr_at(k, 40) == cfg.optim.lr_at(k, 40), k
    for k in range(40, 100):
        assert math.isclose(extended.optim.lr_at(k, 100), 1e-4, rel_tol=1e-12), k
    # Unpinned, the extension would have stretched the schedule.
    unpinned = cfg.with_overrides({"schedule.steps": "100"})
    assert unpinned.optim.lr_at(20, 100) > cfg.optim.lr_at(20, 40) * 1.5


def test_an_extended_run_keeps_its_rate_at_every_step():
    cfg = decaying(steps=40).pinned()
    target = load_target(cfg.data)
    before = observed_rates(Trainer(cfg, target))

    first = Trainer(cfg, target)
    first.run(lambda e: e.trainer.request_stop() if e.kind == "log" and e.step == 25 else None)
    assert first.step == 25
    longer = Trainer(cfg.with_overrides({"schedule.steps": "60"}), target)
    longer.load_state_dict(first.state_dict())
    longer.history = list(first.history)
    after = observed_rates(longer)
    assert sorted(after) == list(range(26, 61))
    for step in range(26, 41):
        assert after[step] == before[step], step
    for step in range(41, 61):
        assert math.isclose(after[step], 1e-4, rel_tol=1e-12), step


# -- callbacks and chunks ----------------------------------------------------------------------


def test_run_calls_a_list_of_callbacks_in_order():
    calls = []
    trainer = Trainer(tiny(steps=20, eval_every=10))
    trainer.run([lambda e: calls.append(("a", e.kind, e.step)), lambda e: calls.append(("b", e.kind, e.step)),
                 lambda e: calls.append(("c", e.kind, e.step))])
    # log_every is 50: the loss is read back (a "log" event) before each evaluation instead.
    kinds = [("eval", 0), ("log", 10), ("eval", 10), ("log", 20), ("eval", 20), ("end", 20)]
    assert calls == [(name, k, s) for k, s in kinds for name in "abc"]


def test_run_accepts_one_callable_none_and_a_generator():
    trainer = Trainer(tiny(steps=10, eval_every=10))
    seen = []
    trainer.run(seen.append, until=5)
    assert [e.kind for e in seen] == ["eval", "log", "chunk"]
    trainer.run(None, until=7)
    assert trainer.step == 7
    seen.clear()
    trainer.run(f for f in [seen.append])
    assert [(e.kind, e.step) for e in seen] == [("log", 10), ("eval", 10), ("end", 10)]


def test_chunks_continue_exactly_and_end_once():
    cfg = tiny(steps=100, eval_every=40)
    target = load_target(cfg.data)
    straight = Trainer(cfg, target)
    straight.run()

    chunked = Trainer(cfg, target)
    events = []
    for until in (30, 30, 75, 1000):
        result = chunked.run(events.append, until=until)
    ends = [(e.kind, e.step) for e in events if e.kind in ("chunk", "interrupt", "end")]
    assert ends == [("chunk", 30), ("chunk", 30), ("chunk", 75), ("end", 100)]
    assert not result.interrupted and result.step == 100
    assert [e.step for e in events if e.kind == "eval"] == [0, 40, 80, 100]
    chunk = next(e for e in events if e.kind == "chunk")
    assert chunk.metrics == chunked.history[0]  # the latest evaluation record at the time (step 0)
    assert [r["step"] for r in chunked.history] == [0, 40, 80, 100]
    for (k, a), b in zip(weights(straight.model).items(), weights(chunked.model).values()):
        assert torch.equal(a, b), k


def test_chunk_result_is_interrupted_and_interrupt_event_follows_a_stop():
    trainer = Trainer(tiny(steps=100, eval_every=50))
    result = trainer.run(until=20)
    assert result.interrupted and result.step == 20
    events = []
    trainer.run([events.append, lambda e: e.trainer.request_stop() if e.kind == "log" and e.step == 50 else None])
    assert (events[-1].kind, events[-1].step) == ("interrupt", 50)
    events.clear()
    trainer.run(events.append)  # the stop request was served; this run goes to the end
    assert (events[-1].kind, events[-1].step) == ("end", 100)


class StepProbe(Probe):
    """A probe that records when each hook runs and adds two keys of its own."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    def before_update(self, trainer: Trainer) -> None:
        self.calls.append(("before_update", trainer.step))

    @contextlib.contextmanager
    def around_batch(self, trainer: Trainer, yx: torch.Tensor):
        self.calls.append(("around_batch", trainer.step))
        self.batch = yx.shape
        yield
        self.calls.append(("after_batch", trainer.step))

    def after_dense(self, trainer: Trainer, record: dict, prediction: np.ndarray) -> None:
        self.calls.append(("after_dense", trainer.step))
        record["pred_mean"] = float(prediction.mean())
        record["batch_points"] = self.batch[0]


def test_a_probes_keys_land_in_every_evaluation_record_and_its_hooks_run_around_evaluations():
    probe = StepProbe()
    events = []
    result = train(tiny(steps=50, eval_every=20), on_event=events.append, probes=[probe])
    assert [r["step"] for r in result.history] == [0, 20, 40, 50]
    assert all(r["batch_points"] == 512 and 0 <= r["pred_mean"] <= 1 for r in result.history)
    evals = [e for e in events if e.kind == "eval"]
    assert [e.metrics["pred_mean"] for e in evals] == pytest.approx([float(e.prediction.mean()) for e in evals])
    # before_update at the step before each evaluation (the update it reports on), then the evaluation's hooks in order.
    expected = [("around_batch", 0), ("after_batch", 0), ("after_dense", 0)]
    for step in (20, 40, 50):
        expected += [("before_update", step - 1), ("around_batch", step), ("after_batch", step), ("after_dense", step)]
    assert probe.calls == expected


def test_a_trainer_without_probes_records_the_metrics_only():
    bare = train(tiny(steps=20, eval_every=10))
    assert all("layers" not in r and "bands" not in r for r in bare.history)
    probed = train(tiny(steps=20, eval_every=10), probes=[StepProbe()])
    # Probes only add keys: the metrics and the weights are the same with or without them.
    strip = lambda h: [{k: v for k, v in r.items() if k not in ("train_seconds", "pred_mean", "batch_points")} for r in h]  # noqa: E731
    assert strip(probed.history) == strip(bare.history)
    for (k, a), b in zip(weights(bare.model).items(), weights(probed.model).values()):
        assert torch.equal(a, b), k


def test_the_loop_uses_the_trainers_public_surface():
    trainer = Trainer(tiny(steps=30, eval_every=10))
    trainer.request_stop()
    assert trainer.stop_requested
    result = trainer.run()
    assert result.step == 0 and not trainer.stop_requested  # served: stopped before the first step, then cleared
    record, prediction = trainer.evaluate_and_record(0.5)
    assert record["train_loss"] == 0.5 and trainer.history[-1] is record and prediction.shape == (24, 48)
    assert mean_loss([torch.tensor(1.0), torch.tensor(3.0)], 10) == 2.0
    with pytest.raises(TrainingDiverged) as info:
        mean_loss([torch.tensor(1.0), torch.tensor(float("inf"))], 10)
    assert info.value.step == 12
