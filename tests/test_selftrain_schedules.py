"""Fast crop schedules (self-training / CSST Sec. 3.3): the documented crop sequences, batch
scaling, bad arguments, and the engine following a schedule (crops, batches, lr, resume)."""
from __future__ import annotations

import pytest
import torch
from torchvision import tv_tensors

from paperlib import engine
from paperlib.config import ConfigError, config_from_params
from paperlib.data.transforms import build_train_transform
from paperlib.selftrain.schedules import batch_for_crop, crop_schedule, relative_cost

SIZES = [400, 480, 560, 640, 720, 800]   # the papers' sizes


# --------------------------------------------------------------------------------------------
# crop_schedule: hand-written sequences
# --------------------------------------------------------------------------------------------
def test_constant_is_the_largest_crop():
    assert crop_schedule("constant", 4, SIZES) == [800] * 4
    assert crop_schedule("constant", 3, SIZES, warmup_epochs=2) == [800] * 3


def test_coarse2fine_even_split_and_paper_example():
    assert crop_schedule("coarse2fine", 6, [1, 2, 3]) == [1, 1, 2, 2, 3, 3]
    # 7 epochs over 3 sizes: e * 3 // 7 -> 0 0 0 1 1 2 2
    assert crop_schedule("coarse2fine", 7, [1, 2, 3]) == [1, 1, 1, 2, 2, 3, 3]
    # the paper: 180 epochs, six sizes, "we change the crop size every 30 epochs"
    crops = crop_schedule("coarse2fine", 180, SIZES)
    assert [crops.count(s) for s in SIZES] == [30] * 6
    assert crops[0] == 400 and crops[29] == 400 and crops[30] == 480 and crops[-1] == 800


def test_fine2coarse_is_the_reverse():
    assert crop_schedule("fine2coarse", 6, [1, 2, 3]) == [3, 3, 2, 2, 1, 1]
    assert crop_schedule("fine2coarse", 180, SIZES) == crop_schedule("coarse2fine", 180, SIZES)[::-1]


def test_plus_schedules_cycle_every_epoch():
    assert crop_schedule("coarse2fine+", 8, [1, 2, 3]) == [1, 2, 3, 1, 2, 3, 1, 2]
    assert crop_schedule("fine2coarse+", 8, [1, 2, 3]) == [3, 2, 1, 3, 2, 1, 3, 2]
    # "we use crop size 400 for epoch 0, 480 for epoch 1, 560 for epoch 2, and so on"
    assert crop_schedule("coarse2fine+", 7, SIZES) == SIZES + [400]


def test_warmup_uses_the_largest_then_starts_the_schedule():
    assert crop_schedule("coarse2fine", 6, [1, 2], warmup_epochs=2) == [2, 2, 1, 1, 2, 2]
    assert crop_schedule("fine2coarse", 6, [1, 2], warmup_epochs=2) == [2, 2, 2, 2, 1, 1]
    assert crop_schedule("coarse2fine+", 6, [1, 2, 3], warmup_epochs=2) == [3, 3, 1, 2, 3, 1]
    assert crop_schedule("fine2coarse+", 6, [1, 2, 3], warmup_epochs=1) == [3, 3, 2, 1, 3, 2]
    assert crop_schedule("coarse2fine+", 3, [1, 2], warmup_epochs=3) == [2, 2, 2]
    # the paper: 20 warm-up epochs at 800, then the schedule over the other 160
    crops = crop_schedule("coarse2fine+", 180, SIZES, warmup_epochs=20)
    assert crops[:20] == [800] * 20 and crops[20:26] == SIZES


def test_period_holds_each_size_and_keeps_the_last():
    assert crop_schedule("coarse2fine", 7, [1, 2, 3], period=2) == [1, 1, 2, 2, 3, 3, 3]
    assert crop_schedule("fine2coarse", 7, [1, 2, 3], period=3) == [3, 3, 3, 2, 2, 2, 1]
    assert crop_schedule("coarse2fine", 8, [1, 2, 3], warmup_epochs=1, period=2) == [3, 1, 1, 2, 2, 3, 3, 3]


def test_relative_cost_and_ideal_speedup():
    assert relative_cost([2, 4]) == pytest.approx((4 + 16) / (2 * 16))
    # coarse2fine+ over the papers' sizes costs 0.59 of crop 800: at most 1.69x faster
    assert 1 / relative_cost(crop_schedule("coarse2fine+", 180, SIZES)) == pytest.approx(1.690, abs=1e-3)


@pytest.mark.parametrize("kwargs, word", [
    (dict(name="zigzag"), "unknown name"),
    (dict(epochs=0), "epochs"),
    (dict(sizes=[]), "sizes"),
    (dict(sizes=[800, 400]), "ascending"),
    (dict(sizes=[400, 400]), "ascending"),
    (dict(sizes=[0, 4]), "positive"),
    (dict(warmup_epochs=5), "warmup_epochs"),
    (dict(warmup_epochs=-1), "warmup_epochs"),
    (dict(name="coarse2fine+", period=2), "period"),
    (dict(name="constant", period=2), "period"),
    (dict(period=0), "period"),
])
def test_bad_arguments_are_named(kwargs, word):
    args = dict(name="coarse2fine", epochs=4, sizes=[1, 2])
    args.update(kwargs)
    with pytest.raises(ValueError, match=word):
        crop_schedule(**args)


# --------------------------------------------------------------------------------------------
# batch_for_crop
# --------------------------------------------------------------------------------------------
def test_batch_for_crop_keeps_pixels_per_batch():
    assert batch_for_crop(800, 800, 16, 64) == 16
    assert batch_for_crop(400, 800, 16, 64) == 64          # the papers: 16 -> 64
    assert batch_for_crop(480, 800, 16, 64) == 44          # floor(16 * 800^2 / 480^2) = floor(44.4)
    assert batch_for_crop(480, 800, 16, 64, multiple_of=8) == 40
    assert batch_for_crop(200, 800, 16, 64) == 64          # capped
    assert batch_for_crop(1600, 800, 16, 64) == 4          # larger crops shrink the batch
    assert batch_for_crop(8000, 800, 16, 64, multiple_of=2) == 2
    for crop in (400, 480, 560, 640, 720, 800):
        assert batch_for_crop(crop, 800, 16, 64) * crop ** 2 <= 16 * 800 ** 2


@pytest.mark.parametrize("args, word", [((0, 800, 16, 64), "crop"), ((400, 800, 16, 8), "max_batch"),
                                        ((400, 800, 1.5, 64), "base_batch")])
def test_batch_for_crop_bad_arguments(args, word):
    with pytest.raises(ValueError, match=word):
        batch_for_crop(*args)


# --------------------------------------------------------------------------------------------
# config
# --------------------------------------------------------------------------------------------
def test_config_fields_validate():
    cfg = config_from_params("smoke", steps=None, epochs=4, crop_sizes=[32, 48, 64],
                             crop_schedule="coarse2fine+")
    assert cfg.crop_size == (64, 64) and cfg.crop_sizes == (32, 48, 64)
    with pytest.raises(ConfigError, match="steps"):
        config_from_params("smoke", steps=10, crop_sizes=[32, 64])
    with pytest.raises(ConfigError, match="crop_sizes"):
        config_from_params("smoke", crop_schedule="coarse2fine")
    with pytest.raises(ConfigError, match="crop_schedule"):
        config_from_params("smoke", steps=None, crop_sizes=[32, 64], crop_schedule="zigzag")
    with pytest.raises(ConfigError, match="ascending"):
        config_from_params("smoke", steps=None, crop_sizes=[64, 32])
    with pytest.raises(ConfigError, match="max_batch_size"):
        config_from_params("smoke", max_batch_size=2, batch_size=4)


# --------------------------------------------------------------------------------------------
# engine: a run follows the schedule
# --------------------------------------------------------------------------------------------
class Squares(torch.utils.data.Dataset):
    """24x24 uint8 images whose 4x4 blocks reveal 3 classes; the paperlib train transform (no
    scaling) crops them."""

    def __init__(self, n: int = 16, crop: int = 16):
        g = torch.Generator().manual_seed(0)
        lab = torch.randint(0, 3, (n, 6, 6), generator=g).repeat_interleave(4, 1).repeat_interleave(4, 2)
        self.labels = lab
        self.images = (lab[:, None].repeat(1, 3, 1, 1) * 80 + torch.randint(0, 30, (n, 3, 24, 24), generator=g)).byte()
        self.transform = build_train_transform(crop, scale=None, blur=0, jitter=0)

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        item = {"image": tv_tensors.Image(self.images[i]), "label": tv_tensors.Mask(self.labels[i])}
        return self.transform(item)


def _sched_cfg(tmp_path=None, **kw):
    base = dict(num_classes=3, steps=None, epochs=5, batch_size=2, lr=0.05, progress=False,
                model_width=4, crop_sizes=[8, 16], crop_schedule="coarse2fine+", crop_warmup_epochs=1,
                batch_scaling=True, out_dir=str(tmp_path) if tmp_path else None)
    return config_from_params("smoke", **{**base, **kw})


def _input_shapes(model):
    shapes = []
    model.register_forward_pre_hook(lambda m, args: shapes.append(tuple(args[0].shape)))
    return shapes


def test_engine_follows_the_schedule_with_batch_scaling():
    from paperlib import models
    cfg = _sched_cfg()
    model = models.build("tiny_fcn", num_classes=3, width=4)
    shapes = _input_shapes(model)
    out = engine.train(cfg, model=model, train_set=Squares())
    # crops [16, 8, 16, 8, 16]; batch 2 at 16, 8 (= 2 * 16^2 / 8^2) at 8; 16 samples per epoch
    plan = [(16, 2), (8, 8), (16, 2), (8, 8), (16, 2)]
    expected = [(b, 3, c, c) for c, b in plan for _ in range(16 // b)]
    assert shapes == expected
    assert out["step"] == 8 + 2 + 8 + 2 + 8
    crops_per_step = [h["crop"] for h in out["history"]]
    assert crops_per_step == [c for c, b in plan for _ in range(16 // b)]
    # the poly schedule follows epoch progress: first step of epoch 2 sits at 2/5 of the run
    lrs = [h["lr"] for h in out["history"]]
    assert lrs[0] == pytest.approx(0.05)
    assert lrs[8 + 2] == pytest.approx(0.05 * (1 - 2 / 5) ** cfg.poly_power)
    assert all(a > b for a, b in zip(lrs, lrs[1:]))


def test_engine_without_batch_scaling_keeps_the_batch():
    from paperlib import models
    cfg = _sched_cfg(batch_scaling=False, crop_schedule="fine2coarse", crop_warmup_epochs=0, epochs=4)
    model = models.build("tiny_fcn", num_classes=3, width=4)
    shapes = _input_shapes(model)
    engine.train(cfg, model=model, train_set=Squares())
    assert [s[2] for s in shapes[::8]] == [16, 16, 8, 8] and {s[0] for s in shapes} == {2}


def test_engine_names_a_dataset_without_crop():
    class NoCrop(Squares):
        def __init__(self):
            super().__init__()
            self.transform = None
    with pytest.raises(ConfigError, match="RandomCrop"):
        engine.train(_sched_cfg(), train_set=NoCrop())


def test_resume_mid_schedule_is_exact(tmp_path):
    full = engine.train(_sched_cfg(), train_set=Squares())

    class Stop(Exception):
        pass

    def stop_at(info):
        if info["event"] == "step" and info["step"] == 11:
            raise Stop   # the last checkpoint is step 9: inside epoch 1 (crop 8, batch 8)

    cfg = _sched_cfg(tmp_path, ckpt_every=3)
    with pytest.raises(Stop):
        engine.train(cfg, train_set=Squares(), callbacks=[stop_at])
    resumed = engine.train(cfg.replace(resume=True), train_set=Squares())
    assert resumed["step"] == full["step"]
    assert [h["crop"] for h in resumed["history"]] == [h["crop"] for h in full["history"]]
    for k, v in full["model"].state_dict().items():
        assert torch.equal(v, resumed["model"].state_dict()[k]), k
    import json
    events = [json.loads(line) for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    epochs = [(e["epoch"], e["crop"], e["batch_size"]) for e in events if e["event"] == "epoch"]
    assert epochs == [(0, 16, 2), (1, 8, 8), (2, 16, 2), (3, 8, 8), (4, 16, 2)]   # once each


def _ddp_worker(rank: int, world: int, port: int, cfg_dict: dict) -> None:
    import os
    torch.set_num_threads(1)
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    from paperlib.config import TrainConfig
    engine.train(TrainConfig.from_dict(cfg_dict), train_set=Squares())


@pytest.mark.slow
def test_ddp_follows_the_schedule_like_one_process(tmp_path):
    import socket

    import torch.multiprocessing as mp
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = _sched_cfg(tmp_path / "ddp", epochs=3)     # crops 16, 8, 16; batches 2, 8, 2
    mp.start_processes(_ddp_worker, args=(2, port, cfg.to_dict()), nprocs=2, start_method="spawn")
    ddp = engine.load_checkpoint(tmp_path / "ddp" / "last.pt")
    one = engine.train(cfg.replace(out_dir=None), train_set=Squares())
    assert ddp["step"] == one["step"] == 8 + 2 + 8
    assert [h["crop"] for h in ddp["history"]] == [h["crop"] for h in one["history"]]
    assert [h["loss"] for h in ddp["history"]] == pytest.approx([h["loss"] for h in one["history"]], rel=1e-4)


def test_benchmark_measures_every_schedule_against_the_baseline():
    import importlib.util

    from paperlib import repro
    path = repro.REPO_ROOT / "benchmarks" / "bench_selftrain_schedules.py"
    spec = importlib.util.spec_from_file_location("bench_selftrain_schedules", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    res = bench.measure(model="tiny_fcn", width=4, epochs=2, images=8, sizes=(32, 64), batch=2, max_batch=8, profile="smoke")
    assert list(res["schedules"]) == ["constant", "coarse2fine", "fine2coarse", "coarse2fine+", "fine2coarse+"]
    const = res["schedules"]["constant"]
    assert const["speedup"] == 1.0 and const["crops"] == [64, 64] and const["steps"] == 8
    assert const["samples"] == 16 and res["schedules"]["coarse2fine+"]["samples"] == 8 + 8
    plus = res["schedules"]["coarse2fine+"]
    assert plus["crops"] == [32, 64] and plus["batches"] == [8, 2] and plus["steps"] == 1 + 4
    assert plus["ideal_speedup"] == pytest.approx(1 / ((0.25 + 1) / 2))
    assert "coarse2fine+" in bench.report(res)


def test_set_crop_size_reaches_through_wrappers():
    a, b = Squares(4), Squares(4)
    shared = Squares(4)
    shared.transform = a.transform                       # one transform seen twice counts once
    mixed = torch.utils.data.Subset(torch.utils.data.ConcatDataset([a, b, shared]), [0, 5, 9])
    assert engine.set_crop_size(mixed, 8) == 2
    assert mixed[0]["image"].shape[-2:] == (8, 8) and mixed[1]["image"].shape[-2:] == (8, 8)
    assert engine.set_crop_size(torch.utils.data.TensorDataset(torch.zeros(2)), 8) == 0


def test_the_cpu_schedule_protocol_has_no_two_runs_on_one_crop_sequence_and_an_11_percent_warmup():
    from paperlib import engine
    from paperlib.selftrain import experiments as X
    _, proto, cfg = X.schedule_setup("cpu")
    runs = X.schedule_runs(proto)
    plans = {label: [c for c, _ in (engine.epoch_plan(cfg.replace(**run))
                                    or [(cfg.crop_size[0], cfg.batch_size)] * cfg.replace(**run).epochs)]
             for label, run in runs.items()}
    rows = [{"run": k, "crops": v} for k, v in plans.items()]
    assert X.distinct_sequences(rows) == {}
    assert proto["epochs"] >= 30 and abs(proto["warmup"] / proto["epochs"] - 20 / 180) < 0.01
    assert len(plans["baseline, 2/3 epochs"]) == round(2 * proto["epochs"] / 3)
    # a repeated sequence is named with the run it repeats
    assert X.distinct_sequences([{"run": "a", "crops": [1, 2]}, {"run": "b", "crops": [1, 2]}]) == {"b": ["a"]}
