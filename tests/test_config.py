"""Config and profiles: JSON round trip, validation naming the field, papermill-style
parameters failing fast, profile overrides."""
from __future__ import annotations

import dataclasses
import json

import pytest

from paperlib import profiles
from paperlib.config import ConfigError, TrainConfig, config_from_params
from paperlib.profiles import PROFILES, Profile, get_profile


@pytest.mark.parametrize("name", list(PROFILES))
def test_every_profile_round_trips_through_json(name, tmp_path):
    cfg = config_from_params(name)
    assert cfg.profile == name
    again = TrainConfig.from_json(cfg.to_json())
    assert again == cfg and isinstance(again.crop_size, tuple)
    cfg.save(tmp_path / "c.json")
    assert TrainConfig.load(tmp_path / "c.json") == cfg
    assert [p.name for p in tmp_path.iterdir()] == ["c.json"]  # no temp file left


def test_ints_and_lists_are_normalised():
    cfg = TrainConfig(crop_size=48, eval_scales=[0.5, 1], scale=[0.75, 1.5], lr=1)
    assert cfg.crop_size == (48, 48) and cfg.eval_scales == (0.5, 1.0)
    assert cfg.scale == (0.75, 1.5) and isinstance(cfg.lr, float)


@pytest.mark.parametrize("field, value", [
    ("model", "resnet9000"), ("dataset", "imagenet"), ("profile", "huge"), ("sampler", "greedy"),
    ("loss", "focal"), ("optimizer", "lamb"), ("amp", "fp8"), ("device", "tpu"),
    ("eval_mode", "tiles"), ("lr_step", "batch"),
    ("epochs", 0), ("epochs", -3), ("steps", 0), ("steps", -1), ("batch_size", 0),
    ("lr", 0.0), ("lr", -0.1), ("momentum", 1.0), ("weight_decay", -1e-4), ("poly_power", -1.0),
    ("warmup_steps", -1), ("warmup_start", 0.0), ("workers", -1), ("num_classes", 0),
    ("scale", (2.0, 1.0)), ("crop_size", (0, 64)), ("eval_scales", ()), ("eval_scales", (1.0, -2.0)),
    ("steps", "400"), ("flip", "yes"), ("lr", "0.01"), ("crop_size", (64, "a")), ("seed", 1.5),
    ("model_options", ["width", 8]), ("max_images", 0),
])
def test_bad_values_name_the_field(field, value):
    with pytest.raises(ConfigError, match=f"'{field}'"):
        TrainConfig(**{field: value})


def test_error_names_the_value_and_is_a_value_error():
    with pytest.raises(ValueError, match=r"'epochs' = -3"):
        TrainConfig(epochs=-3)
    with pytest.raises(ConfigError, match="resnet9000.*tiny_fcn"):  # lists the choices
        TrainConfig(model="resnet9000")


def test_crop_larger_than_data_without_padding():
    # world frames of 64x128 at scale 0.5 are 32x64: a 48x48 crop only fits with padding
    TrainConfig(world_image_size=(64, 128), crop_size=48, pad_crop=True)
    with pytest.raises(ConfigError, match="'crop_size'.*pad_crop"):
        TrainConfig(world_image_size=(64, 128), crop_size=48, pad_crop=False)
    TrainConfig(world_image_size=(64, 128), crop_size=32, pad_crop=False)
    with pytest.raises(ConfigError, match="'crop_size'.*camvid"):  # CamVid is 360x480
        TrainConfig(dataset="camvid", crop_size=640, scale=(1.0, 2.0), pad_crop=False)
    TrainConfig(dataset="mapillary", crop_size=4000, pad_crop=False)  # sizes vary: not knowable


def test_checkpointing_needs_an_out_dir():
    with pytest.raises(ConfigError, match="'out_dir'"):
        TrainConfig(resume=True)
    with pytest.raises(ConfigError, match="'eval_stride'"):
        TrainConfig(eval_crop=32, eval_stride=48)


def test_unknown_keys_are_named_with_a_suggestion():
    with pytest.raises(ConfigError, match=r"unknown config key 'lrr' \(did you mean 'lr'\?\)"):
        TrainConfig.from_dict({"lrr": 0.1})
    with pytest.raises(ConfigError, match="'batchsize'"):
        TrainConfig.from_json(json.dumps({"batchsize": 8}))
    with pytest.raises(ConfigError, match="not valid JSON"):
        TrainConfig.from_json("{steps: 3")
    with pytest.raises(ConfigError, match="not found"):
        TrainConfig.load("/nonexistent/cfg.json")


def test_config_from_params_is_profile_then_overrides():
    cfg = config_from_params("cpu", steps=123, model_width=4)
    cpu = get_profile("cpu")
    assert (cfg.steps, cfg.model_width, cfg.crop_size, cfg.batch_size) == (123, 4, cpu.crop_size, cpu.batch_size)
    with pytest.raises(ConfigError, match="unknown config key 'stepz'"):
        config_from_params("cpu", stepz=3)
    with pytest.raises(ConfigError, match="'lr' = -1"):
        config_from_params("smoke", lr=-1)
    with pytest.raises(ConfigError, match="unknown profile 'laptop'"):
        config_from_params("laptop")
    assert cfg.replace(seed=5).seed == 5
    with pytest.raises(ConfigError, match="'sead'"):
        cfg.replace(sead=5)


def test_get_profile_overrides_and_errors():
    assert get_profile("cpu", steps=400).steps == 400
    assert get_profile("cpu").steps != 400  # the stored profile is unchanged
    with pytest.raises(ConfigError, match="unknown profile 'tiny'"):
        get_profile("tiny")
    with pytest.raises(ConfigError, match="'stepz'"):
        get_profile("cpu", stepz=1)
    with pytest.raises(ConfigError, match="'steps' = -1"):
        get_profile("cpu", steps=-1)


def test_profiles_only_set_config_fields_and_grow_in_size():
    config_fields = {f.name for f in dataclasses.fields(TrainConfig)}
    assert {f.name for f in dataclasses.fields(Profile)} - {"name"} <= config_fields
    order = [PROFILES[n] for n in ("smoke", "cpu", "gpu", "paper")]
    for small, big in zip(order, order[1:]):
        assert small.crop_size[0] * small.crop_size[1] < big.crop_size[0] * big.crop_size[1]
        assert small.world_image_size[0] < big.world_image_size[0]
        assert small.batch_size <= big.batch_size
    assert PROFILES["smoke"].device == "cpu" and PROFILES["paper"].dataset == "cityscapes"
    assert profiles.PROFILES["paper"].crop_size == (800, 800)  # VPLR Sec. 4.1 Cityscapes crop
