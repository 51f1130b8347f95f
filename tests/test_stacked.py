"""Tests for overfit.stacked, the one training engine: K runs trained together, and a run alone (a stack of one), equal
an independent plain PyTorch loop (the model's own forward, torch's Adam) for any encoding, BatchNorm, activation and
loss; and runs resume exactly."""

from __future__ import annotations

import pytest
import torch
from helpers import tiny_config

from overfit.config import RunConfig
from overfit.devices import native_bf16
from overfit.errors import ConfigError
from overfit.session import Session
from overfit.stacked import CPU_STACK, StackedTrainer, check_stackable, stack_groups, stack_key, train_stacks
from overfit.training import Trainer, train_configs

TINY = tiny_config({"data.text": "AB", "data.width": 48, "data.height": 24, "model.hidden": "16,32,16",
                    "schedule.steps": 60, "schedule.eval_every": 30})


def _variants(**common: str) -> list[RunConfig]:
    """Runs of one kind that differ in everything a stack allows: seed, lr and decay, init, input range, Adam's constants."""
    rows = [
        {"seed": "0", "optim.lr": "1e-3"},
        {"seed": "1", "optim.lr": "3e-4", "model.init": "torch"},
        {"seed": "2", "optim.lr": "1e-3", "optim.lr_final": "1e-4"},
        {"seed": "3", "optim.lr": "1e-3", "model.input_range": "3"},
        {"seed": "5", "optim.lr": "1e-3", "model.input_range": "none", "optim.beta2": "0.99"},
    ]
    return [TINY.with_overrides({**row, **common}) for row in rows]


def _kinds() -> list[RunConfig]:
    """Runs of different kinds (activation, w0, loss): no two of the first five can share a stack."""
    rows = [
        {"seed": "0", "model.activation": "relu", "optim.lr": "1e-3"},
        {"seed": "1", "model.activation": "tanh", "optim.lr": "3e-4", "model.init": "torch"},
        {"seed": "2", "model.activation": "relu", "optim.lr": "1e-3", "optim.lr_final": "1e-4", "loss": "double_softmax"},
        {"seed": "3", "model.activation": "cos", "optim.lr": "1e-3", "model.input_range": "3"},
        {"seed": "4", "model.activation": "siren", "optim.lr": "1e-4", "model.w0": "20"},
        {"seed": "5", "model.activation": "relu", "optim.lr": "1e-3", "model.input_range": "none", "optim.beta2": "0.99"},
    ]
    return [TINY.with_overrides(row) for row in rows]


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
        # Through Adam that drift leaves the other parameters and the running variances about 1e-4 apart
        # (relative) after 60 steps for relu runs at lr 1e-3, with this forward as with a hand-written one.
        params_a = {k: v for k, v in params_a.items() if k not in before_bn and not k.endswith("running_mean")}
        atol, rtol = max(atol, 1e-4), 1e-3
    elif alone.cfg.encoding.kind == "grid":
        # A hash table's rarely touched entries get gradients near zero, which Adam also scales up to full steps:
        # the stack's one Adam update and torch's fused kernel round differently, and after 60 steps at lr 1e-2 the
        # weights agree to about 1e-4 (6e-5 at most, measured), the MLP runs' to 1e-5.
        atol, rtol = max(atol, 1e-4), 1e-3
    else:
        rtol = 0.0
    for key, value in params_a.items():
        torch.testing.assert_close(params_b[key], value, atol=atol, rtol=rtol, msg=key)
    assert [r["step"] for r in stacked.history] == [r["step"] for r in alone.history]
    for a, b in zip(alone.history, stacked.history):
        tolerance = 1e-2 if alone.cfg.model.batchnorm else 1e-3  # evaluation uses the running means
        assert b["dense_acc"] == pytest.approx(a["dense_acc"], abs=tolerance)
        assert b["batch_loss"] == pytest.approx(a["batch_loss"], rel=10 * tolerance, abs=1e-6)


def reference_run(cfg: RunConfig) -> Trainer:
    """`cfg` trained by a plain PyTorch loop: the model's own forward, the loss, torch's Adam; the run's own batches and evaluations."""
    t = Trainer(cfg)
    optim = cfg.optim
    adam = torch.optim.Adam(t.model.parameters(), lr=optim.lr, betas=(optim.beta1, optim.beta2), eps=optim.eps, foreach=False)
    t.model.train()
    t.evaluate_and_record()
    while t.step < cfg.schedule.steps:
        for group in adam.param_groups:
            group["lr"] = optim.lr_at(t.step, cfg.schedule.steps)
        yx, y = t.next_batch()
        adam.zero_grad()
        t.loss_fn(t.model(yx), y).backward()
        adam.step()
        t.step += 1
        if cfg.schedule.evaluates_at(t.step):
            t.evaluate_and_record()
    return t


def _train_alone_and_stacked(configs: list[RunConfig]) -> tuple[list[Trainer], list[Trainer]]:
    """Each config by the reference loop, and all of them as one stack; a run alone (a stack of one) is checked too."""
    reference = [reference_run(cfg) for cfg in configs]
    alone = Trainer(configs[0])
    alone.run()
    _assert_same_run(reference[0], alone, atol=1e-5)
    together = [Trainer(cfg) for cfg in configs]
    results = StackedTrainer(together).run()
    assert [r.config for r in results] == configs and all(r.step == r.config.schedule.steps for r in results)
    return reference, together


@pytest.mark.parametrize("batchnorm", ["false", "true"])
def test_stacked_runs_equal_separate_runs(batchnorm):
    alone, together = _train_alone_and_stacked(_variants(**{"model.batchnorm": batchnorm}))
    for a, b in zip(alone, together):
        _assert_same_run(a, b, atol=1e-5)


@pytest.mark.parametrize("kind", [
    {"model.activation": "tanh"},
    {"model.activation": "cos", "model.input_range": "3"},
    {"model.activation": "siren", "model.w0": "20", "optim.lr": "1e-4"},
    {"loss": "double_softmax"},
])
def test_every_activation_and_loss_stacks(kind):
    configs = [c.with_overrides(kind) for c in _variants()[:2]]
    alone, together = _train_alone_and_stacked(configs)
    for a, b in zip(alone, together):
        _assert_same_run(a, b, atol=1e-5)


# A grid with hashed levels: the finest levels of a 48 x 24 picture hold more than 2^8 vertices.
GRID = {"encoding.kind": "grid", "encoding.levels": "4", "encoding.base_resolution": "4", "encoding.log2_hashmap_size": "8",
        "optim.lr": "1e-2"}


@pytest.mark.parametrize("encoding", [
    {"encoding.kind": "fourier", "encoding.features": "16", "encoding.sigma": "3", "model.activation": "relu"},
    {"encoding.kind": "positional", "encoding.frequencies": "4"},
    GRID,
    # BatchNorm right after the grid's small features (U(-1e-4, 1e-4) at first) turns rounding into full Adam steps
    # sooner than after bare coordinates: 20 steps keep alone and stacked within the tolerances (weights about 1e-5).
    {**GRID, "model.batchnorm": "true", "schedule.steps": "20", "schedule.eval_every": "10"},
], ids=["fourier", "positional", "grid", "grid-batchnorm"])
def test_stacks_of_encoded_runs_equal_separate_runs(encoding):
    configs = [c.with_overrides(encoding) for c in _variants()[:2]]
    alone, together = _train_alone_and_stacked(configs)
    if encoding["encoding.kind"] == "grid":
        grid = together[0].model.encoding
        assert any(grid.is_hashed) and not all(grid.is_hashed)  # both kinds of level are exercised
    if encoding["encoding.kind"] == "fourier":  # each run keeps its own random B, drawn from its own seed
        assert not torch.equal(together[0].model.encoding.B, together[1].model.encoding.B)
    for a, b in zip(alone, together):
        _assert_same_run(a, b, atol=1e-5)
        if not b.cfg.model.batchnorm:
            assert b.history[-1]["dense_loss"] < b.history[0]["dense_loss"]  # they trained


def test_batchnorm_running_statistics_are_each_models_own():
    # One step: from the first update on, the biases before BatchNorm may move apart (Adam's first step is lr times
    # the sign of their gradient, zero up to rounding), and the running means with them; the running variances do not.
    configs = _variants(**{"model.batchnorm": "true", "schedule.steps": "1", "schedule.eval_every": "1"})[:3]
    alone, together = _train_alone_and_stacked(configs)
    for a, b in zip(alone, together):
        norms = [(i, m) for i, m in enumerate(a.model.mlp) if isinstance(m, torch.nn.BatchNorm1d)]
        assert len(norms) == 3
        for i, norm in norms:
            stacked = b.model.mlp[i]
            assert int(stacked.num_batches_tracked) == int(norm.num_batches_tracked) == 1  # evaluations do not count
            torch.testing.assert_close(stacked.running_mean, norm.running_mean, atol=1e-5, rtol=0)
            torch.testing.assert_close(stacked.running_var, norm.running_var, atol=1e-5, rtol=0)
    first, second = (next(m for m in t.model.mlp if isinstance(m, torch.nn.BatchNorm1d)) for t in together[:2])
    assert not torch.allclose(first.running_var, second.running_var)  # each model its own, not shared


def test_runs_of_every_kind_train_in_stacks_of_their_kind_in_the_order_given():
    configs = _kinds()
    alone = [Trainer(cfg) for cfg in configs]
    for t in alone:
        t.run()
    assert stack_groups(configs) == [[0, 5], [1], [2], [3], [4]]
    together = [Trainer(cfg) for cfg in configs]
    results = train_stacks(together)
    assert [r.config for r in results] == configs
    for a, b, result in zip(alone, together, results):
        assert result.model is b.model and result.step == 60 and not result.interrupted
        _assert_same_run(a, b, atol=1e-5)


def test_train_configs_returns_each_runs_history():
    configs = _variants()[:3]
    results = train_configs(configs)
    assert [len(r.history) for r in results] == [3, 3, 3]  # steps 0, 30, 60
    assert all(r.step == 60 and not r.interrupted for r in results)
    assert all("layers" not in r and "bands" not in r for result in results for r in result.history)  # no probes


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


def test_stacked_sessions_resume_exactly_and_record_the_probes(tmp_path):
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
        records = s.folder.metrics()
        assert [r["step"] for r in records] == [0, 30, 60]
        for key, value in _params(ref.model).items():
            assert torch.equal(_params(s.trainer.model)[key], value), key
        # The session's probes ran in the stack too: gradient and update sizes of the step before each evaluation.
        assert all(len(r["bands"]) == 8 and [layer["layer"] for layer in r["layers"]] == ["1", "2", "3", "output"] for r in records)
        assert all(layer["grad_norm"] > 0 and layer["update_ratio"] > 0 for r in records[1:] for layer in r["layers"])


@pytest.mark.parametrize("key, value", [
    ("model.hidden", "16,16,16"),
    ("model.batchnorm", "true"),
    ("optim.batch_size", "32"),
    ("data.mode", "gray"),
    ("model.activation", "tanh"),
    ("loss", "double_softmax"),
    ("encoding.kind", "fourier"),
])
def test_runs_of_different_kinds_are_refused_naming_the_field(key, value):
    with pytest.raises(ConfigError) as info:
        check_stackable([TINY, TINY.with_overrides({key: value})])
    assert info.value.field == key


def test_encoding_fields_and_w0_are_part_of_the_kind_where_they_are_read():
    fourier = TINY.with_overrides({"encoding.kind": "fourier"})
    with pytest.raises(ConfigError) as info:
        check_stackable([fourier, fourier.with_overrides({"encoding.sigma": "3"})])
    assert info.value.field == "encoding.sigma"
    grid = TINY.with_overrides(GRID)
    with pytest.raises(ConfigError) as info:
        check_stackable([grid, grid.with_overrides({"model.input_range": "2"})])  # the grid maps [-r, r] itself
    assert info.value.field == "model.input_range"
    siren = TINY.with_overrides({"model.activation": "siren"})
    with pytest.raises(ConfigError) as info:
        check_stackable([siren, siren.with_overrides({"model.w0": "20"})])
    assert info.value.field == "model.w0"
    check_stackable([TINY, TINY.with_overrides({"model.w0": "20", "model.input_range": "2"})])  # relu reads no w0
    assert stack_key(TINY) == stack_key(TINY.with_overrides({"model.w0": "20", "seed": "3"}))


def test_grids_of_different_picture_sizes_train_in_separate_stacks():
    configs = [TINY.with_overrides({**GRID, "seed": str(s)}) for s in range(2)]
    configs.append(configs[0].with_overrides({"data.width": "40", "seed": "2"}))
    assert stack_groups(configs) == [[0, 1, 2]]  # the configs agree; the models' tensors do not
    with pytest.raises(ConfigError, match="same shape"):
        StackedTrainer([Trainer(c) for c in configs])
    results = train_stacks([Trainer(c) for c in configs])
    assert [r.step for r in results] == [60, 60, 60] and [r.config for r in results] == configs


@pytest.mark.parametrize("mode", ["gray", "rgb"])
def test_regression_modes_stack_too(mode):
    configs = [c.with_overrides({"data.mode": mode, "loss": "auto"}) for c in _variants()[:2]]
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
    # One layer (64 -> 64) has every side at least 64 wide: only its products run in bf16.
    configs = [c.with_overrides({"model.hidden": "8,64,64,8"}) for c in _variants()[:2]]
    fp32 = [Trainer(c) for c in configs]
    StackedTrainer(fp32).run()
    bf16 = [Trainer(c.with_overrides({"precision": "bf16"})) for c in configs]
    StackedTrainer(bf16).run()
    for a, b in zip(fp32, bf16):
        assert all(p.dtype == torch.float32 for p in b.model.parameters())
        assert b.history[-1]["dense_acc"] == pytest.approx(a.history[-1]["dense_acc"], abs=0.1)
    assert any(not torch.equal(_params(a.model)[k], v) for a, b in zip(fp32, bf16) for k, v in _params(b.model).items())


@pytest.mark.skipif(not native_bf16(torch.device("cpu")), reason="this CPU has no native bf16")
def test_bf16_leaves_layers_narrower_than_64_in_fp32():
    configs = _variants()[:2]  # hidden 16, 32, 16: no layer is 64 wide on every side
    fp32 = [Trainer(c) for c in configs]
    StackedTrainer(fp32).run()
    bf16 = [Trainer(c.with_overrides({"precision": "bf16"})) for c in configs]
    StackedTrainer(bf16).run()
    for a, b in zip(fp32, bf16):
        for key, value in _params(a.model).items():
            assert torch.equal(_params(b.model)[key], value), key


def test_a_diverging_run_leaves_the_stack_and_the_others_finish():
    configs = _variants()[:3]
    configs[1] = configs[1].with_overrides({"optim.lr": "1e38", "model.input_range": "none"})
    results = StackedTrainer([Trainer(c) for c in configs]).run()
    assert results[1].diverged is not None and results[1].interrupted
    assert results[1].diverged.step <= 60
    assert [r.step for r in (results[0], results[2])] == [60, 60]
    assert results[0].diverged is None and not results[0].interrupted


def test_on_a_cpu_stacks_hold_one_kind_and_at_most_eight_runs():
    from overfit.presets import get_preset

    relu = [get_preset("relu_1").with_overrides({"seed": s}) for s in range(10)]
    tanh = [get_preset("tanh_1").with_overrides({"seed": s}) for s in range(2)]
    grid = [get_preset("fast")]
    configs = [relu[0], tanh[0], grid[0], *relu[1:], tanh[1]]
    assert CPU_STACK == 8
    assert stack_groups(configs) == [[0, 3, 4, 5, 6, 7, 8, 9], [10, 11], [1, 12], [2]]
    on_gpu = [c.with_overrides({"device": "cuda"}) for c in configs]
    assert stack_groups(on_gpu) == [[0, *range(3, 12)], [1, 12], [2]]  # validation does not need the device to exist


def test_a_run_checkpointed_in_a_stack_resumes_alone_and_saves_only_its_own_slice():
    configs = _variants()[:3]
    stacked = [Trainer(c) for c in configs]
    states = {}

    def keep(event):  # the checkpoint a recorder would write at the step-30 evaluation, while the run is in the stack
        if event.kind == "eval" and event.step == 30:
            states[event.trainer.cfg.seed] = event.trainer.state_dict()

    StackedTrainer(stacked).run([keep, keep, keep])
    state = states[configs[1].seed]
    for tensor in state["model"].values():  # its own tensors, not views of the stack's (K times the bytes)
        assert tensor.untyped_storage().nbytes() == tensor.nbytes
    assert state["optimizer"]["state"][0]["step"] == 30  # Adam's state, from the stack's
    alone = Trainer(configs[1])
    alone.load_state_dict(state)
    alone.history = [r for r in stacked[1].history if r["step"] <= 30]  # as a resumed session reads them back
    alone.run()
    _assert_same_run(alone, stacked[1], atol=1e-5)
    for t in stacked:  # after the stack, every model owns its tensors again
        assert all(p.untyped_storage().nbytes() == p.nbytes for p in t.model.parameters())


def test_grids_whose_tables_agree_but_whose_pictures_differ_never_share_a_stack():
    # Two hashed levels of 2^8 entries whatever the picture: equal tensors, but each level's resolution follows the
    # picture's size, and one stacked forward would use the first run's resolutions for both.
    grid = {**GRID, "encoding.levels": "2", "encoding.base_resolution": "32"}
    configs = [TINY.with_overrides({**grid, "seed": "0"}), TINY.with_overrides({**grid, "seed": "1", "data.width": "40"})]
    trainers = [Trainer(c) for c in configs]
    assert [p.shape for p in trainers[0].model.parameters()] == [p.shape for p in trainers[1].model.parameters()]
    with pytest.raises(ConfigError, match="pictures of the same size"):
        StackedTrainer(trainers)
    train_stacks(trainers)
    alone = Trainer(configs[1])
    alone.run()
    _assert_same_run(alone, trainers[1], atol=1e-6)  # trained alone, as it must be: the same arithmetic


def test_runs_of_different_pictures_and_held_out_pixels_share_a_stack_and_each_draws_its_own_batches():
    # Each sampler turns the step's bits into its own batch: the runs of one picture and split draw in one call, the
    # others apart; every run still trains exactly as the plain loop does with its own batches.
    rows = [{"seed": "0"}, {"seed": "1"}, {"seed": "2", "data.holdout": "checkerboard"},
            {"seed": "3", "data.holdout": "0.25"}, {"seed": "4", "data.text": "BA"}]
    configs = [TINY.with_overrides(row) for row in rows]
    reference, together = _train_alone_and_stacked(configs)
    for a, b in zip(reference, together):
        _assert_same_run(a, b, atol=1e-5)
