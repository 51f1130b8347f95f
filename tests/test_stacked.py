"""Tests for overfit.stacked: K runs trained together equal K runs trained alone, and resume exactly."""

from __future__ import annotations

import pytest
import torch

from overfit.config import RunConfig
from overfit.devices import native_bf16
from overfit.errors import ConfigError
from overfit.session import Session
from overfit.stacked import StackedTrainer, check_stackable, train_many
from overfit.training import Trainer

TINY = RunConfig().with_overrides({
    "data.text": "AB", "data.width": 48, "data.height": 24, "model.hidden": "16,32,16",
    "schedule.steps": 60, "schedule.eval_every": 30, "schedule.log_every": 10,
    "optim.batch_size": 64, "schedule.eval_batch_size": 64,
})


def _variants(**common: str) -> list[RunConfig]:
    """Runs that differ in everything a stack allows: seed, lr and decay, init, input range, activation, w0, loss."""
    rows = [
        {"seed": "0", "model.activation": "relu", "optim.lr": "1e-3"},
        {"seed": "1", "model.activation": "tanh", "optim.lr": "3e-4", "model.init": "torch"},
        {"seed": "2", "model.activation": "relu", "optim.lr": "1e-3", "optim.lr_final": "1e-4", "loss": "double_softmax"},
        {"seed": "3", "model.activation": "cos", "optim.lr": "1e-3", "model.input_range": "3"},
        {"seed": "4", "model.activation": "siren", "optim.lr": "1e-4", "model.w0": "20"},
        {"seed": "5", "model.activation": "relu", "optim.lr": "1e-3", "model.input_range": "none", "optim.beta2": "0.99"},
    ]
    return [TINY.with_overrides({**row, **common}) for row in rows]


def _params(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v for k, v in model.state_dict().items() if v.dtype.is_floating_point}


def _assert_same_run(alone: Trainer, stacked: Trainer, atol: float) -> None:
    assert stacked.step == alone.step
    params_a, params_b = _params(alone.model), _params(stacked.model)
    if alone.cfg.model.batchnorm:
        # A Linear's bias before BatchNorm has no effect and a zero gradient up to rounding, which Adam
        # scales up to full steps: such biases, and the running means that follow them, drift apart on
        # any change of summation order. Every other parameter must agree.
        before_bn = {f"mlp.{i - 1}.bias" for i, m in enumerate(alone.model.mlp) if isinstance(m, torch.nn.BatchNorm1d)}
        params_a = {k: v for k, v in params_a.items() if k not in before_bn and not k.endswith("running_mean")}
        atol = max(atol, 1e-4)
    for key, value in params_a.items():
        torch.testing.assert_close(params_b[key], value, atol=atol, rtol=0, msg=key)
    assert [r["step"] for r in stacked.history] == [r["step"] for r in alone.history]
    for a, b in zip(alone.history, stacked.history):
        tolerance = 1e-2 if alone.cfg.model.batchnorm else 1e-3  # evaluation uses the running means
        assert b["dense_acc"] == pytest.approx(a["dense_acc"], abs=tolerance)
        assert b["batch_loss"] == pytest.approx(a["batch_loss"], rel=10 * tolerance, abs=1e-6)


@pytest.mark.parametrize("batchnorm", ["false", "true"])
def test_stacked_runs_equal_separate_runs(batchnorm):
    configs = _variants(**{"model.batchnorm": batchnorm})
    if batchnorm == "true":  # sin(20 x) after BatchNorm amplifies rounding beyond any fixed tolerance
        configs = [c for c in configs if c.model.activation != "siren"]
    alone = [Trainer(cfg) for cfg in configs]
    for t in alone:
        t.run()
    together = [Trainer(cfg) for cfg in configs]
    results = StackedTrainer(together).run()
    assert [r.config for r in results] == configs  # in the order given, though stacked by activation
    for a, b in zip(alone, together):
        _assert_same_run(a, b, atol=1e-5)


def test_train_many_returns_each_runs_history():
    configs = _variants()[:3]
    results = train_many(configs)
    assert [len(r.history) for r in results] == [3, 3, 3]  # steps 0, 30, 60
    assert all(r.step == 60 and not r.interrupted for r in results)


def test_each_run_gets_its_own_events_in_order():
    configs = _variants()[:2]
    seen: list[list[tuple[str, int]]] = [[], []]
    callbacks = [lambda e, k=k: seen[k].append((e.kind, e.step)) for k in range(2)]
    StackedTrainer([Trainer(c) for c in configs]).run(callbacks)
    for events in seen:
        assert [e for e in events if e[0] == "eval"] == [("eval", 0), ("eval", 30), ("eval", 60)]
        assert events[-1] == ("end", 60)


def test_a_run_that_stops_leaves_the_stack_and_the_others_go_on():
    configs = _variants()[:3]
    trainers = [Trainer(c) for c in configs]

    def stop_first(event):
        if event.kind == "eval" and event.step == 30:
            event.trainer.request_stop()

    results = StackedTrainer(trainers).run([stop_first, None, None])
    assert results[0].interrupted and results[0].step == 30
    assert [r.step for r in results[1:]] == [60, 60]
    # The others trained exactly as they would have alone.
    alone = Trainer(configs[1])
    alone.run()
    _assert_same_run(alone, trainers[1], atol=1e-5)


def test_stacked_sessions_resume_exactly(tmp_path):
    configs = [c.with_overrides({"preset": f"run{k}"}) for k, c in enumerate(_variants()[:3])]
    reference = [Trainer(c) for c in configs]
    StackedTrainer(reference).run()

    sessions = [Session.start(c, tmp_path, name=f"run{k}") for k, c in enumerate(configs)]
    StackedTrainer([s.trainer for s in sessions]).run([[s.recorder] for s in sessions], until=30)
    for s in sessions:
        s.checkpoint()
        s.close()
    resumed = [Session.resume(tmp_path / f"run{k}") for k in range(3)]
    StackedTrainer([s.trainer for s in resumed]).run([[s.recorder] for s in resumed])
    for s, ref in zip(resumed, reference):
        s.close()
        assert s.folder.status() == "done"
        assert [r["step"] for r in s.folder.metrics()] == [0, 30, 60]
        for key, value in _params(ref.model).items():
            assert torch.equal(_params(s.trainer.model)[key], value), key


@pytest.mark.parametrize("key, value, field", [
    ("model.hidden", "16,16,16", "model.hidden"),
    ("model.batchnorm", "true", "model.batchnorm"),
    ("optim.batch_size", "32", "optim.batch_size"),
    ("data.mode", "gray", "data.mode"),
])
def test_runs_of_different_shapes_are_refused_naming_the_field(key, value, field):
    with pytest.raises(ConfigError) as info:
        check_stackable([TINY, TINY.with_overrides({key: value})])
    assert info.value.field == field


def test_encodings_other_than_none_are_refused():
    cfg = TINY.with_overrides({"encoding.kind": "fourier"})
    with pytest.raises(ConfigError) as info:
        check_stackable([cfg, cfg])
    assert info.value.field == "encoding.kind"


@pytest.mark.parametrize("mode", ["gray", "rgb"])
def test_regression_modes_stack_too(mode):
    configs = [c.with_overrides({"data.mode": mode, "loss": "auto"}) for c in _variants()[:2]]
    configs = [c for c in configs if c.loss_name == "mse"]
    alone = [Trainer(c) for c in configs]
    for t in alone:
        t.run()
    together = [Trainer(c) for c in configs]
    StackedTrainer(together).run()
    for a, b in zip(alone, together):
        for key, value in _params(a.model).items():
            torch.testing.assert_close(_params(b.model)[key], value, atol=1e-5, rtol=0)


@pytest.mark.skipif(not native_bf16(torch.device("cpu")), reason="this CPU has no native bf16")
def test_bf16_stack_stays_close_to_fp32_and_keeps_fp32_weights():
    configs = _variants()[:2]
    fp32 = [Trainer(c) for c in configs]
    StackedTrainer(fp32).run()
    bf16 = [Trainer(c.with_overrides({"precision": "bf16"})) for c in configs]
    StackedTrainer(bf16).run()
    for a, b in zip(fp32, bf16):
        assert all(p.dtype == torch.float32 for p in b.model.parameters())
        assert b.history[-1]["dense_acc"] == pytest.approx(a.history[-1]["dense_acc"], abs=0.1)


def test_a_diverging_run_leaves_the_stack_and_the_others_finish():
    configs = _variants()[:3]
    configs[1] = configs[1].with_overrides({"optim.lr": "1e38", "model.activation": "relu", "model.input_range": "none"})
    results = StackedTrainer([Trainer(c) for c in configs]).run()
    assert results[1].diverged is not None and results[1].interrupted
    assert results[1].diverged.step <= 60
    assert [r.step for r in (results[0], results[2])] == [60, 60]
    assert results[0].diverged is None and not results[0].interrupted


def test_on_a_cpu_stacks_hold_one_activation_and_at_most_four_runs():
    from overfit.presets import get_preset
    from overfit.stacked import CPU_STACK, stack_groups

    relu = [get_preset("relu_1").with_overrides({"seed": s}) for s in range(6)]
    tanh = [get_preset("tanh_1").with_overrides({"seed": s}) for s in range(2)]
    grid = [get_preset("fast")]
    configs = [relu[0], tanh[0], grid[0], *relu[1:], tanh[1]]
    assert CPU_STACK == 4
    assert stack_groups(configs) == [[0, 3, 4, 5], [6, 7], [1, 8], [2]]
    on_gpu = [c.with_overrides({"device": "cuda"}) for c in configs]
    assert stack_groups(on_gpu) == [[0, 1, 3, 4, 5, 6, 7, 8], [2]]  # validation does not need the device to exist
