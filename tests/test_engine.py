"""Engine: schedule, inference modes, evaluation, determinism, exact resume, DDP equivalence,
non-finite loss, atomic checkpoints. Everything runs on tiny in-memory data on CPU."""
from __future__ import annotations

import json
import math
import os
import socket

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from torch import nn

from paperlib import engine
from paperlib.config import ConfigError, TrainConfig, config_from_params


# ---------------------------------------------------------------------------------------------
# Tiny data: random blobs of 3 classes; images already normalised (what the train transform gives)
# ---------------------------------------------------------------------------------------------
class Blobs(torch.utils.data.Dataset):
    """Blocky labels and noisy images that reveal them; a random flip (from torch's global RNG)
    stands in for augmentation. ``ignore`` marks a border of 255 pixels."""

    def __init__(self, n: int = 16, size: int = 32, classes: int = 3, seed: int = 0,
                 ignore: bool = True, augment: bool = True):
        g = torch.Generator().manual_seed(seed)
        lab = torch.randint(0, classes, (n, size // 8, size // 8), generator=g)
        self.labels = lab.repeat_interleave(8, 1).repeat_interleave(8, 2)
        self.images = torch.randn(n, 3, size, size, generator=g) * 0.5
        for c in range(classes):
            self.images[:, c % 3] += (self.labels == c).float() * (1 + c // 3)
        if ignore:
            self.labels[:, :2] = 255
        self.augment = augment

    def __len__(self):
        return len(self.labels)

    # what the centroid index needs (paperlib.data.samplers)
    def load_label(self, i):
        return self.labels[i].numpy().astype(np.uint8)

    def fingerprint(self):
        return f"blobs-{len(self)}-{int(self.labels.sum())}-{float(self.images.sum()):.6f}"

    def __getitem__(self, key):
        i = key[0] if isinstance(key, tuple) else key   # (i, y, x) from a centroid sampler
        img, lab = self.images[i], self.labels[i]
        if self.augment and torch.rand(()) < 0.5:
            img, lab = img.flip(-1), lab.flip(-1)
        return {"image": img.clone(), "label": lab.clone(), "index": i}


def _cfg(tmp_path=None, **kw) -> TrainConfig:
    base = dict(num_classes=3, steps=8, batch_size=4, lr=0.05, progress=False, model_width=4,
                out_dir=str(tmp_path) if tmp_path else None)
    return config_from_params("smoke", **{**base, **kw})


def _weights(model: nn.Module) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


# ---------------------------------------------------------------------------------------------
# Schedule
# ---------------------------------------------------------------------------------------------
def test_poly_schedule_hand_computed():
    cfg = _cfg(lr=0.01, poly_power=0.9)
    assert engine.lr_at(cfg, 0, 10, 100) == pytest.approx(0.01)
    assert engine.lr_at(cfg, 50, 10, 100) == pytest.approx(0.01 * 0.5 ** 0.9)
    assert engine.lr_at(cfg, 100, 10, 100) == 0.0
    per_epoch = cfg.replace(lr_step="epoch", poly_power=1.0)
    # 100 steps = 10 epochs of 10; step 57 is in epoch 5 -> factor 1 - 5/10
    assert engine.lr_at(per_epoch, 57, 10, 100) == pytest.approx(0.005)
    assert engine.lr_at(per_epoch, 50, 10, 100) == engine.lr_at(per_epoch, 59, 10, 100)
    warm = cfg.replace(poly_power=1.0, warmup_steps=10, warmup_start=0.1)
    # step 5: poly 0.95, ramp 0.1 + 0.9 * 0.5 = 0.55
    assert engine.lr_at(warm, 5, 10, 100) == pytest.approx(0.01 * 0.95 * 0.55)
    assert engine.lr_at(warm, 10, 10, 100) == pytest.approx(0.01 * 0.9)


# ---------------------------------------------------------------------------------------------
# Inference
# ---------------------------------------------------------------------------------------------
class TileMean(nn.Module):
    """Logit of class 0 = mean of channel 0 over the input window (so windows are visible)."""

    def forward(self, x):
        m = x[:, :1].mean(dim=(2, 3), keepdim=True).expand(-1, 1, *x.shape[-2:])
        return torch.cat([m, -m], 1)


class XRamp(nn.Module):
    """Logit of class 0 = x / (W - 1): a ramp from 0 to 1, not flip-invariant."""

    def forward(self, x):
        W = x.shape[-1]
        r = torch.linspace(0, 1, W).view(1, 1, 1, W).expand(x.shape[0], 1, x.shape[2], W)
        return torch.cat([r, 1 - r], 1)


class HeightConst(nn.Module):
    """Constant logit = input height / 100, at 1/2 output resolution."""

    def forward(self, x):
        h, w = x.shape[-2:]
        return torch.full((x.shape[0], 2, h // 2, w // 2), h / 100.0)


def test_sliding_window_averages_overlaps():
    a, b, c = 1.0, 2.0, 6.0
    img = torch.tensor([a, b, c]).view(1, 1, 1, 3).expand(1, 3, 1, 3)
    out = engine.predict_logits(TileMean(), img, mode="slide", crop=(1, 2), stride=(1, 1))
    expected = [(a + b) / 2, ((a + b) / 2 + (b + c) / 2) / 2, (b + c) / 2]
    assert torch.allclose(out[0, 0, 0], torch.tensor(expected))
    # window larger than the image: one window, no padding
    whole = engine.predict_logits(TileMean(), img, mode="slide", crop=8)
    assert torch.allclose(whole[0, 0, 0], torch.full((3,), (a + b + c) / 3))


def test_slide_equals_whole_for_pointwise_model():
    torch.manual_seed(0)
    model = nn.Conv2d(3, 4, 1)
    img = torch.randn(2, 3, 23, 37)
    whole = engine.predict_logits(model, img, mode="whole")
    slide = engine.predict_logits(model, img, mode="slide", crop=(10, 16), stride=(7, 9))
    assert whole.shape == (2, 4, 23, 37)
    assert torch.allclose(whole, slide, atol=1e-6)


def test_flip_averages_flipped_logits():
    img = torch.zeros(1, 3, 4, 5)
    plain = engine.predict_logits(XRamp(), img, mode="whole")
    flipped = engine.predict_logits(XRamp(), img, mode="whole", flip=True)
    assert plain[0, 0, 0, -1] == 1.0
    assert torch.allclose(flipped[:, 0], torch.full((1, 4, 5), 0.5))


def test_multiscale_averages_full_resolution_logits():
    img = torch.zeros(1, 3, 8, 12)
    out = engine.predict_logits(HeightConst(), img, mode="multiscale", scales=(0.5, 1.0, 2.0))
    assert out.shape == (1, 2, 8, 12)
    assert torch.allclose(out, torch.full_like(out, (0.04 + 0.08 + 0.16) / 3))
    # whole / slide ignore scales
    assert torch.allclose(engine.predict_logits(HeightConst(), img, mode="whole", scales=(2.0,)),
                          torch.full((1, 2, 8, 12), 0.08))
    with pytest.raises(ValueError, match="slide"):
        engine.predict_logits(HeightConst(), img, mode="slide")
    with pytest.raises(ValueError, match="unknown inference mode"):
        engine.predict_logits(HeightConst(), img, mode="tiles")


class Oracle(nn.Module):
    """One-hot logits of the class id stored in channel 0; a parameter so .parameters() works."""

    def __init__(self, classes=2, constant=None):
        super().__init__()
        self.classes, self.constant = classes, constant
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, x):
        ids = x[:, 0].long() if self.constant is None else torch.full_like(x[:, 0], self.constant).long()
        return nn.functional.one_hot(ids, self.classes).permute(0, 3, 1, 2).float()


def _halves(n=2):
    lab = torch.zeros(4, 6, dtype=torch.long)
    lab[:, 3:] = 1
    lab[0, 0] = 255
    return [{"image": lab.float().clamp(max=1).unsqueeze(0).expand(3, -1, -1).clone(), "label": lab}
            for _ in range(n)]


def test_evaluate_hand_computed_iou():
    data = _halves()
    perfect = engine.evaluate(Oracle(), data, num_classes=2, mode="whole")
    assert perfect["miou"] == 1.0 and perfect["pixel_accuracy"] == 1.0
    # always class 0: class 0 IoU = 11 / 23 (11 correct, 12 class-1 pixels predicted as 0), class 1: 0
    zero = engine.evaluate(Oracle(constant=0), data, num_classes=2, mode="slide", crop=3, flip=True)
    assert zero["per_class_iou"] == pytest.approx([11 / 23, 0.0])
    assert zero["miou"] == pytest.approx(11 / 46)
    assert zero["pixel_accuracy"] == pytest.approx(11 / 23)
    assert int(zero["confusion"].matrix.sum()) == 2 * 23
    uint8 = [{"image": torch.zeros(3, 4, 6, dtype=torch.uint8), "label": data[0]["label"]}]
    with pytest.raises(ValueError, match="normalised float"):
        engine.evaluate(Oracle(), uint8, num_classes=2)


# ---------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------
def test_training_learns_and_logs(tmp_path):
    cfg = _cfg(tmp_path, steps=40, model_width=8, lr=0.1, log_every=5)
    out = engine.train(cfg, train_set=Blobs(), val_set=Blobs(8, seed=1, augment=False))
    first, last = out["history"][0]["loss"], out["history"][-1]["loss"]
    assert last < 0.5 * first
    assert out["metrics"]["miou"] > 0.6
    records = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    train_steps = [r["step"] for r in records if r["event"] == "train"]
    assert train_steps == list(range(5, 41, 5))
    assert {"loss", "lr", "time", "epoch"} <= set(records[0])
    assert records[-1]["event"] == "eval" and records[-1]["step"] == 40
    assert TrainConfig.load(tmp_path / "config.json") == cfg
    ckpt = engine.load_checkpoint(tmp_path / "last.pt")  # weights_only=True inside
    assert ckpt["step"] == 40 and set(ckpt) >= {"model", "optimizer", "scaler", "rng", "sampler"}


def test_same_config_and_seed_give_identical_results():
    cfg = _cfg(steps=6)
    a = engine.train(cfg, train_set=Blobs(), val_set=Blobs(4, seed=1, augment=False))
    b = engine.train(cfg, train_set=Blobs(), val_set=Blobs(4, seed=1, augment=False))
    assert a["metrics"]["per_class_iou"] == b["metrics"]["per_class_iou"]
    assert [h["loss"] for h in a["history"]] == [h["loss"] for h in b["history"]]
    wa, wb = _weights(a["model"]), _weights(b["model"])
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    c = engine.train(cfg.replace(seed=1), train_set=Blobs(), val_set=Blobs(4, seed=1, augment=False))
    assert [h["loss"] for h in c["history"]] != [h["loss"] for h in a["history"]]


class StopAt:
    def __init__(self, step):
        self.step = step

    def __call__(self, info):
        if info["event"] == "step" and info["step"] == self.step:
            raise KeyboardInterrupt(f"simulated kill after step {self.step}")


@pytest.mark.parametrize("workers", [0, 1])
def test_resume_continues_exactly(tmp_path, workers):
    # 16 images / batch 4 = 4 steps an epoch: step 6 is mid-epoch 1; checkpoint at 3 and 6.
    cfg = _cfg(tmp_path / "full", steps=10, ckpt_every=3, workers=workers)
    full = engine.train(cfg, train_set=Blobs())
    run = cfg.replace(out_dir=str(tmp_path / "cut"))
    with pytest.raises(KeyboardInterrupt):
        engine.train(run, train_set=Blobs(), callbacks=[StopAt(7)])
    assert engine.load_checkpoint(tmp_path / "cut" / "last.pt")["step"] == 6
    resumed = engine.train(run.replace(resume=True), train_set=Blobs())
    assert resumed["step"] == 10
    wf, wr = _weights(full["model"]), _weights(resumed["model"])
    assert all(torch.equal(wf[k], wr[k]) for k in wf), "resumed weights differ"
    assert [h["loss"] for h in resumed["history"]] == [h["loss"] for h in full["history"]]
    steps = [json.loads(l)["step"] for l in (tmp_path / "cut" / "log.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 11))  # step 7 logged once, not twice


@pytest.mark.parametrize("sampler", ["class_uniform", "centroid"])
def test_resume_is_exact_with_the_class_balanced_samplers(tmp_path, sampler):
    # these samplers keep their own position (state_dict); the engine must not skip twice
    opts = {"cache_dir": str(tmp_path / "cache"), "workers": 0, "min_pixels": 1, "tile": 16}
    cfg = _cfg(tmp_path / "full", steps=9, ckpt_every=2, sampler=sampler, sampler_options=opts)
    full = engine.train(cfg, train_set=Blobs(24))  # 6 steps an epoch
    run = cfg.replace(out_dir=str(tmp_path / "cut"))
    with pytest.raises(KeyboardInterrupt):
        engine.train(run, train_set=Blobs(24), callbacks=[StopAt(3)])
    state = engine.load_checkpoint(tmp_path / "cut" / "last.pt")
    assert state["step"] == 2 and state["sampler"]["position"] == 2 * 4
    resumed = engine.train(run.replace(resume=True), train_set=Blobs(24))
    assert [h["loss"] for h in resumed["history"]] == [h["loss"] for h in full["history"]]
    wf, wr = _weights(full["model"]), _weights(resumed["model"])
    assert all(torch.equal(wf[k], wr[k]) for k in wf)


def test_cli_trains_from_a_config_file(tmp_path, monkeypatch, capsys):
    from paperlib import train as cli
    monkeypatch.setattr(engine.loop, "build_datasets",  # the loop builds them from the config
                        lambda cfg: (Blobs(), Blobs(4, seed=1, augment=False)))
    path = _cfg(tmp_path / "run").save(tmp_path / "run.json")
    assert cli.main(["--config", str(path), "--set", "steps=3", "name=cli"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["name"] == "cli" and summary["step"] == 3 and 0 <= summary["miou"] <= 1
    assert cli.main(["--config", str(path), "--set", "stepz=3"]) == 2
    assert "unknown config key 'stepz'" in capsys.readouterr().err
    assert cli.parse_overrides(["crop_size=[8,16]", "resume=true", "name=x"]) == \
        {"crop_size": [8, 16], "resume": True, "name": "x"}


def test_non_finite_loss_names_the_step():
    class Poison(Blobs):
        def __getitem__(self, i):
            item = super().__getitem__(i)
            if i == 5:
                item["image"][:] = float("nan")
            return item

    cfg = _cfg(steps=8, seed=0)
    with pytest.raises(engine.NonFiniteLossError, match=r"at step \d+") as err:
        engine.train(cfg, train_set=Poison())
    assert isinstance(err.value, FloatingPointError)


def test_bad_runtime_sizes_fail_clearly():
    with pytest.raises(ConfigError, match="batch_size"):
        engine.train(_cfg(batch_size=32), train_set=Blobs(8))


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    engine.save_checkpoint(path, {"step": 1, "w": torch.ones(2)})

    def broken_save(obj, f, *a, **k):
        with open(f, "wb") as fh:
            fh.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError):
        engine.save_checkpoint(path, {"step": 2})
    assert engine.load_checkpoint(path)["step"] == 1  # the old checkpoint is intact
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temp file left behind


def test_rng_state_round_trips_through_weights_only(tmp_path):
    import random
    torch.manual_seed(3); np.random.seed(3); random.seed(3)
    engine.save_checkpoint(tmp_path / "r.pt", {"rng": engine.rng_state()})
    expected = (torch.rand(3), np.random.rand(3), random.random())
    torch.manual_seed(9); np.random.seed(9); random.seed(9)
    engine.set_rng_state(engine.load_checkpoint(tmp_path / "r.pt")["rng"])
    assert torch.equal(torch.rand(3), expected[0])
    assert np.array_equal(np.random.rand(3), expected[1]) and random.random() == expected[2]


# ---------------------------------------------------------------------------------------------
# DDP: 2 gloo processes == 1 process with the same global batch
# ---------------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank: int, world: int, port: int, cfg_dict: dict) -> None:
    torch.set_num_threads(1)
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    engine.train(TrainConfig.from_dict(cfg_dict), train_set=Blobs(ignore=False),
                 val_set=Blobs(6, seed=1, ignore=False, augment=False))


def _final_eval(out_dir) -> dict:
    lines = (out_dir / "log.jsonl").read_text().splitlines()
    return [json.loads(l) for l in lines if json.loads(l)["event"] == "eval"][-1]


@pytest.mark.slow
def test_ddp_two_gloo_processes_match_one_process(tmp_path):
    # No ignore pixels: every rank averages its loss over as many pixels as the other, so the
    # DDP objective is exactly the single-process one (see the engine docstring). The random
    # flips are seeded per sample position, so both runs see the same augmented batches.
    cfg = _cfg(tmp_path / "ddp", steps=6, batch_size=4, lr=0.05, ckpt_every=3)
    mp.start_processes(_ddp_worker, args=(2, _free_port(), cfg.to_dict()), nprocs=2,
                       start_method="spawn")
    ddp = engine.load_checkpoint(tmp_path / "ddp" / "last.pt")
    assert len(ddp["rng"]) == 2 and ddp["step"] == 6  # every rank's RNG state is kept
    one = engine.train(cfg.replace(out_dir=str(tmp_path / "one")), train_set=Blobs(ignore=False),
                       val_set=Blobs(6, seed=1, ignore=False, augment=False))
    single = _weights(one["model"])
    assert set(single) == set(ddp["model"])
    worst = 0.0
    for k, v in single.items():
        d = ddp["model"][k]
        if v.is_floating_point():
            worst = max(worst, float(((d - v).abs() / (v.abs() + 1e-3)).max()))
        else:
            assert torch.equal(d, v), k  # num_batches_tracked
    # Tolerance: float32 sums run in a different order (per-rank partial sums of the BatchNorm
    # statistics and gradients, then a gloo all-reduce), a few ulps (~1e-7 relative) per
    # operation; 6 SGD steps with momentum grew that to 3e-6 when measured. 1e-4 leaves 30x
    # headroom, while a real mismatch (e.g. unsynchronised BatchNorm) gives errors of order 1.
    assert worst < 1e-4, worst
    ddp_losses = [h["loss"] for h in ddp["history"]]
    assert ddp_losses == pytest.approx([h["loss"] for h in one["history"]], rel=1e-5)
    assert _final_eval(tmp_path / "ddp")["miou"] == pytest.approx(one["metrics"]["miou"], abs=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_cuda_mixed_precision_and_channels_last(tmp_path, amp):
    cfg = _cfg(tmp_path, device="cuda", amp=amp, channels_last=True, steps=30, lr=0.1, model_width=8)
    out = engine.train(cfg, train_set=Blobs(), val_set=Blobs(8, seed=1, augment=False))
    assert math.isfinite(out["loss"]) and out["metrics"]["miou"] > 0.4
    assert next(out["model"].parameters()).dtype == torch.float32  # master weights stay fp32


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_fp16_skips_and_counts_non_finite_steps(tmp_path):
    class Poison(Blobs):
        def __getitem__(self, key):
            item = super().__getitem__(key)
            if key == 3:
                item["image"][:] = float("inf")
            return item

    out = engine.train(_cfg(device="cuda", amp="fp16", steps=8), train_set=Poison())
    assert out["skipped_steps"] >= 1 and out["step"] == 8


def test_engine_gives_losses_the_epoch_for_the_relaxation_switch_off():
    """VPLR's relaxation turns into boundary-weighted CE after ``switch_off_epoch``: the engine must
    hand the loss the epoch (the loss refuses to guess without it)."""
    seen = []
    from paperlib import losses

    relax = losses.build_loss("relaxation", switch_off_epoch=1)

    @losses.register_loss("_spy_relaxation")
    def _spy(**kw):
        def fn(output, batch):
            seen.append(int(batch["epoch"]))
            return relax(output, batch)
        return fn

    try:
        cfg = _cfg(None, steps=4, epochs=2, loss="_spy_relaxation", batch_size=4)
        engine.train(cfg, train_set=Blobs(8), val_set=Blobs(4, seed=1, augment=False))
    finally:
        losses.LOSSES.pop("_spy_relaxation")
    assert seen == [0, 0, 1, 1]


def test_step_time_split_is_reported(tmp_path):
    out = engine.train(_cfg(tmp_path / "split").replace(steps=4), train_set=Blobs(), val_set=None)
    split = out["step_split"]
    assert set(split) == {"data", "forward", "backward", "optimizer", "eval", "other"}
    assert all(v >= 0 for v in split.values()) and split["forward"] > 0 and split["backward"] > 0
    assert sum(split.values()) * 4 == pytest.approx(out["train_time"], rel=1e-6)
