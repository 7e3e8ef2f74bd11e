"""Config layering: defaults < preset < file < flags, and unknown keys named."""

from __future__ import annotations

import pytest

from anomaly.config import PRESETS, build_config, load_yaml


def test_layers_in_order(tmp_path):
    f = tmp_path / "exp.yaml"
    f.write_text("model: transformer\nwindow: {window_len: 50}\ndetect: {threshold: 'zscore:3'}\n")
    cfg = build_config(load_yaml(f), {"detect": {"threshold": "quantile:0.9"}, "seed": 7})
    assert cfg.model == "transformer" and cfg.seed == 7
    assert cfg.window.window_len == 50 and cfg.window.stride == 4  # file over default, rest default
    assert cfg.detect.threshold == "quantile:0.9"  # flag over file


def test_preset_settings_apply_and_yield_to_the_file():
    alfa = build_config({"data": {"data": "alfa"}})
    assert alfa.window.window_len == PRESETS["alfa"]["window"]["window_len"]
    assert alfa.detect.warmup_s == PRESETS["alfa"]["detect"]["warmup_s"]
    mine = build_config({"data": {"data": "alfa"}, "window": {"window_len": 12}})
    assert mine.window.window_len == 12 and mine.window.scaler == "robust"


@pytest.mark.parametrize(
    "bad, name", [({"windw": {}}, "windw"), ({"window": {"len": 3}}, "window.len")]
)
def test_unknown_keys_are_named(bad, name):
    with pytest.raises(ValueError, match=name):
        build_config(bad)


def test_flat_params_are_dotted():
    flat = build_config({"model_params": {"hidden_size": 8}}).flat()
    assert flat["window.window_len"] == 32 and flat["model_params.hidden_size"] == 8
