"""The helpers folded out of the notebooks' setup blocks: per-profile sizes (repro), the
self-training pool and ratio rule (selftrain.pipeline / alternatives), the VPLR recipe
(propagation.analysis)."""
from __future__ import annotations

import pytest

from fixtures import write_cityscapes
from paperlib.config import config_from_params
from paperlib.propagation.analysis import CPU_RECIPE, recipe_text, vplr_config
from paperlib.repro import check_params, config_overrides, profile_sizes
from paperlib.selftrain import pipeline
from paperlib.selftrain.alternatives import PROTOCOL_SCALE
from paperlib.selftrain.pipeline import load_pool, ratio_pair, ratio_pair_or_none

SCALE = {"depth": 18, "width": 8, "steps": None, "seeds": [0, 1], "batch_size": 8}


# --- repro.profile_sizes / config_overrides ------------------------------------------------
def test_profile_sizes_takes_a_parameter_else_the_profiles_value():
    sizes = profile_sizes(SCALE, depth=None, width=0, seeds=[3], steps=7)
    assert sizes == {"depth": 18, "width": 0, "steps": 7, "seeds": [3], "batch_size": 8}
    assert profile_sizes(SCALE) == SCALE and profile_sizes(SCALE) is not SCALE


def test_profile_sizes_names_an_unknown_parameter():
    with pytest.raises(ValueError, match="'crop'"):
        profile_sizes(SCALE, crop=3)


def test_config_overrides_leave_out_none():
    assert config_overrides(SCALE, "steps", "batch_size") == {"batch_size": 8}
    assert config_overrides(profile_sizes(SCALE, steps=5), "steps", "batch_size") == {"steps": 5, "batch_size": 8}
    with pytest.raises(ValueError, match="crop_size"):
        config_overrides(SCALE, "crop_size")


def test_protocol_scale_through_profile_sizes():
    assert set(PROTOCOL_SCALE) == {"smoke", "cpu", "gpu", "paper"}
    cpu = profile_sizes(PROTOCOL_SCALE["cpu"], seeds=[4], epochs=None, labelled=None, pool_clips=10)
    assert cpu == {"seeds": [4], "epochs": 32, "labelled": 32, "pool_clips": 10}
    assert PROTOCOL_SCALE["paper"]["labelled"] is None  # the whole dataset


# --- selftrain: ratio rule and pool ---------------------------------------------------------
@pytest.mark.parametrize("v, ok", [([1, 1], True), ((1, 7), True), ([2.5, 0], True), ([0, 1], False),
                                   ([1, -1], False), ([1], False), ([1, 2, 3], False), ("11", False),
                                   (None, False), (["1", 1], False)])
def test_ratio_pair(v, ok):
    assert ratio_pair(v) is ok


def test_ratio_pair_error_names_the_parameter():
    with pytest.raises(ValueError, match="'ratio'.*real > 0"):
        check_params({"ratio": [0, 1]}, {"ratio": ratio_pair})


def test_ratio_pair_or_none_takes_the_profile_default_and_still_rejects_bad_pairs():
    assert check_params({"ratio": None}, {"ratio": ratio_pair_or_none}) == {"ratio": None}
    assert ratio_pair_or_none([1, 7]) is True
    with pytest.raises(ValueError, match="'ratio'.*real > 0"):
        check_params({"ratio": [0, 1]}, {"ratio": ratio_pair_or_none})


def test_load_pool_of_the_world_uses_the_asked_config(monkeypatch):
    calls = []
    monkeypatch.setattr(pipeline, "world_pool", lambda *a, **k: calls.append((a, k)) or ("images", "labelled"))
    cfg = config_from_params("smoke", world_domain="city_b", progress=False)
    assert load_pool(cfg, num_clips=6, seed=100) == ("images", "labelled")
    assert calls == [(("city_b", cfg.world_image_size), {"num_clips": 6, "seed": 100, "progress": False})]


def test_load_pool_from_a_folder_drops_the_labels(tmp_path):
    write_cityscapes(tmp_path / "pool", "train", n=3, size=(16, 32), seed=1)
    cfg = config_from_params("smoke", dataset="cityscapes", data_root=str(tmp_path / "pool"))
    images, labelled = load_pool(cfg, pool_root=str(tmp_path / "pool"))
    assert len(images) == len(labelled) == 3
    assert all(s.label is None for s in images.samples)
    assert all(s.label is not None for s in labelled.samples)


def test_load_pool_of_a_real_dataset_needs_pool_root(tmp_path):
    cfg = config_from_params("smoke", dataset="cityscapes", data_root=str(tmp_path))
    with pytest.raises(ValueError, match="'pool_root'"):
        load_pool(cfg)


# --- propagation.analysis: the VPLR recipe and the verdict report ---------------------------
def test_vplr_config_cpu_recipe_and_steps():
    cpu = vplr_config("cpu", "nb", loss="relaxation")
    assert (cpu.steps, tuple(cpu.crop_size)) == (250, (96, 96)) == (CPU_RECIPE["steps"], CPU_RECIPE["crop_size"])
    assert (cpu.name, cpu.progress, cpu.loss) == ("nb", False, "relaxation")
    assert vplr_config("cpu", "nb", steps=7).steps == 7
    smoke, plain = vplr_config("smoke", "nb"), config_from_params("smoke")
    assert (smoke.steps, smoke.crop_size) == (plain.steps, plain.crop_size)


@pytest.mark.parametrize("bad", [0, -3, 2.5, True])
def test_vplr_config_names_bad_steps(bad):
    with pytest.raises(ValueError, match="'steps'"):
        vplr_config("smoke", "nb", steps=bad)


def test_recipe_text_hand_written():
    cfg = config_from_params("cpu", steps=250, crop_size=(96, 64), batch_size=8, model_width=16)
    h, w = cfg.world_image_size
    expect = (f"{cfg.model} (width 16), 250 steps (batch 8, crop 96x64), loss relaxation, on the synthetic "
              f"world ({cfg.world_domain}, {h}x{w}, {cfg.world_clips} training snippets)")
    assert recipe_text(cfg, "loss relaxation") == expect
    assert recipe_text(cfg) == expect.replace(", loss relaxation", "")
