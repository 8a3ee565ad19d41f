import dataclasses
import json
import math
import os

import numpy as np
import pytest

import videoflow_tf as vf  # before TensorFlow: imports it quietly
import keras
from videoflow_tf.config import CONFIG_NAMES, VideoFlowConfig, current_name


def test_paper_configs_match_reference_table():
    quant, qual, shapes = (vf.get_config(n) for n in ("bair_quant", "bair_qual", "shapes"))
    for c in (quant, qual, shapes):
        assert (c.image_size, c.num_levels, c.num_steps) == (64, 3, 24)
        assert (c.latent_encoder, c.latent_encoder_width, c.latent_dilations) == (
            "conv3d_net", 256, True)
        assert c.coupling_activation == "gatu" and c.init_batch_size == 128
        assert c.warmup_steps == 10000
    assert (quant.coupling, quant.coupling_width, quant.latent_encoder_depth) == ("affine", 512, 5)
    assert (quant.num_cond_latents, quant.latent_skip) == (3, True)
    assert (quant.num_context_frames, quant.num_target_frames, quant.num_train_frames) == (3, 10, 4)
    assert (quant.learning_rate, quant.batch_size, quant.temperature) == (3e-4, 5, 1.0)
    assert quant.dataset == "bair_action_free"
    assert (qual.coupling, qual.coupling_width, qual.temperature) == ("additive", 392, 0.5)
    assert qual.replace(coupling="affine", coupling_width=512, temperature=1.0,
                        name="bair_quant") == quant
    assert (shapes.coupling, shapes.coupling_width, shapes.latent_encoder_depth) == (
        "additive", 512, 10)
    assert (shapes.num_cond_latents, shapes.latent_skip) == (1, False)
    assert (shapes.num_context_frames, shapes.num_target_frames, shapes.num_train_frames) == (1, 2, 2)
    assert (shapes.learning_rate, shapes.batch_size) == (1e-4, 10)
    assert shapes.dataset == "stochastic_shapes"


def test_training_clips_follow_tensor2tensors_rule():
    assert vf.get_config("bair_quant").train_clip_frames == 13  # 3 context + 10 target
    assert vf.get_config("shapes").train_clip_frames == 3
    baseline = vf.get_config("shapes_32_baseline")
    assert baseline.replace(train_first_frames_only=False).train_clip_frames is None
    # Never shorter than a training window, whatever the evaluation lengths.
    assert baseline.replace(num_target_frames=1).train_clip_frames == 5


def test_latent_shapes_of_a_64x64_frame():
    assert vf.get_config("bair_quant").latent_shapes == [(32, 32, 6), (16, 16, 12), (8, 8, 48)]
    assert sum(math.prod(s) for s in vf.get_config("bair_quant").latent_shapes) == 64 * 64 * 3
    assert vf.get_config("tiny").latent_shapes == [(4, 4, 6), (2, 2, 24)]


@pytest.mark.parametrize("name", CONFIG_NAMES)
def test_dict_and_json_round_trip(name):
    config = vf.get_config(name)
    assert config.name == name
    assert VideoFlowConfig.from_dict(config.to_dict()) == config
    assert VideoFlowConfig.from_json(config.to_json()) == config
    assert json.loads(config.to_json())["image_size"] == config.image_size


def test_config_files_of_version_1_load_meaning_what_they_meant():
    """Flat config.json files written before config_version (runs, SavedModels, .keras
    files) load: prior_reads_x1=false is dropped, a missing train_first_frames_only is the
    False it defaulted to then, and what they set is kept."""
    root = os.path.join(os.path.dirname(__file__), "..")
    with open(os.path.join(root, "tests/data/compat/run/config.json"), encoding="utf-8") as file:
        written = json.load(file)
    assert "config_version" not in written and written["prior_reads_x1"] is False
    assert VideoFlowConfig.from_dict(written) == vf.get_config("tiny")
    with open(os.path.join(root, "tests/data/compat/shipped_v5_config.json"),
              encoding="utf-8") as file:
        shipped = VideoFlowConfig.from_json(file.read())
    assert (shipped.top_prior_components, shipped.train_first_frames_only) == (8, True)
    older = {k: v for k, v in written.items() if k != "train_first_frames_only"}
    assert VideoFlowConfig.from_dict(older).train_first_frames_only is False
    assert VideoFlowConfig().train_first_frames_only is True  # the default since version 2
    with pytest.raises(ValueError, match="prior_reads_x1=true is no longer supported"):
        VideoFlowConfig.from_dict(dict(written, prior_reads_x1=True))
    current = vf.get_config("tiny").to_dict()
    assert current["config_version"] == 2 and "prior_reads_x1" not in current
    with pytest.raises(ValueError, match="config_version 3 is not one"):
        VideoFlowConfig.from_dict(dict(current, config_version=3))


def test_every_field_is_documented_in_its_section():
    doc = VideoFlowConfig.__doc__
    sections = [doc.index(title) for title in ("Model (", "Data (", "Training (", "Sampling:")]
    assert sections == sorted(sections)
    for field in dataclasses.fields(VideoFlowConfig):
        if field.name != "name":
            assert f" {field.name}" in doc, field.name


def test_replace_returns_a_variant_and_keeps_the_original():
    tiny = vf.get_config("tiny")
    wider = tiny.replace(coupling_width=16, learning_rate=1)
    assert wider.coupling_width == 16 and tiny.coupling_width == 8
    assert isinstance(wider.learning_rate, float)
    with pytest.raises(Exception):
        tiny.coupling_width = 3  # frozen


@pytest.mark.parametrize("changes, field, rule", [
    (dict(coupling="volume"), "coupling", "'affine', 'additive'"),
    (dict(dequantization="learned"), "dequantization", "'uniform', 'variational'"),
    (dict(latent_encoder="mlp"), "latent_encoder", "conv_lstm"),
    (dict(latent_activation="tanh"), "latent_activation", "gatu"),
    (dict(image_size=12), "image_size", "multiple of 2**num_levels"),
    (dict(num_train_frames=3), "num_train_frames", "more than num_context_frames"),
    (dict(temperature=-0.5), "temperature", ">= 0"),
    (dict(learning_rate=0.0), "learning_rate", "> 0"),
    (dict(learning_rate=float("nan")), "learning_rate", "finite"),
    (dict(num_steps=2.5), "num_steps", "an int"),
    (dict(latent_skip=1), "latent_skip", "a bool"),
    (dict(num_cond_latents=0), "num_cond_latents", ">= 1"),
    (dict(latent_encoder_width_level1=0), "latent_encoder_width_level1",
     "None (latent_encoder_width) or an int >= 1"),
    (dict(seed="x"), "seed", "an int or None"),
    (dict(gradient_clip_norm=0.0), "gradient_clip_norm", "None (no clipping) or a finite"),
    (dict(gradient_clip_norm=float("inf")), "gradient_clip_norm", "finite number > 0"),
    (dict(gradient_clip_norm="1"), "gradient_clip_norm", "a number or None"),
    (dict(video_bpp_cap=0.0), "video_bpp_cap", "None (no cap) or a finite number > 0"),
    (dict(video_bpp_cap=float("inf")), "video_bpp_cap", "finite number > 0"),
    (dict(cosine_decay_steps=-1), "cosine_decay_steps", ">= 0 (0: no decay)"),
    (dict(cosine_decay_floor=1.5), "cosine_decay_floor", "from 0 to 1"),
    (dict(train_steps=0), "train_steps", ">= 1"),
    (dict(prior_beta=-0.5), "prior_beta", "from 0 (maximum likelihood"),
    (dict(prior_beta=1.5), "prior_beta", "to 1"),
    (dict(prior_beta=float("nan")), "prior_beta", "to 1"),
    (dict(revive_components_every=-1, top_prior_components=8), "revive_components_every",
     ">= 0 (0: never)"),
    (dict(revive_components_every=1000), "revive_components_every",
     "0 unless top_prior_components > 1"),
])
def test_bad_values_name_field_and_rule(changes, field, rule):
    with pytest.raises(ValueError, match=field) as error:
        vf.get_config("bair_quant").replace(**changes)
    assert rule in str(error.value)


def test_unknown_field_and_name_list_the_valid_ones():
    with pytest.raises(ValueError, match="valid fields: .*'coupling_width'"):
        vf.get_config("tiny").replace(coupling_widht=3)
    with pytest.raises(ValueError, match="valid fields"):
        VideoFlowConfig.from_dict(dict(vf.get_config("tiny").to_dict(), depth=3))
    with pytest.raises(ValueError, match="'shapes_32_baseline'"):
        vf.get_config("bair")


def test_a_renamed_config_is_refused_with_its_new_name():
    with pytest.raises(ValueError, match="'shapes_cpu' is now called 'shapes_32_baseline'"):
        vf.get_config("shapes_cpu")
    assert vf.get_config("shapes_32_baseline").latent_skip  # the baseline, unchanged
    assert current_name("shapes_cpu") == "shapes_32_baseline"
    assert current_name("shapes_32") == "shapes_32"


def test_optimizer_is_papers_adam_with_linear_warmup():
    optimizer = vf.make_optimizer(vf.get_config("bair_quant"))
    assert isinstance(optimizer, keras.optimizers.Adam)
    assert (optimizer.beta_1, optimizer.beta_2, optimizer.epsilon) == (0.85, 0.997, 1e-6)
    schedule = optimizer._learning_rate
    rates = [float(schedule(step)) for step in (0, 4999, 9999, 10000, 50000)]
    np.testing.assert_allclose(rates, [3e-8, 1.5e-4, 3e-4, 3e-4, 3e-4], rtol=1e-6)
    restored = keras.optimizers.Adam.from_config(
        keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(optimizer))
        .get_config())
    assert float(restored._learning_rate(4999)) == pytest.approx(1.5e-4)
    constant = vf.make_optimizer(vf.get_config("tiny"))
    assert float(constant._learning_rate(0)) == pytest.approx(5e-3)
    assert optimizer.global_clipnorm is None  # the paper does not clip


def test_cosine_decay_follows_the_warmup_down_to_its_floor():
    config = vf.get_config("tiny").replace(learning_rate=1e-3, warmup_steps=100,
                                           cosine_decay_steps=1000, cosine_decay_floor=0.1)
    schedule = vf.make_optimizer(config)._learning_rate
    rates = [float(schedule(step)) for step in (0, 50, 100, 600, 1100, 5000)]
    # Warm-up from 1e-5 to 1e-3, then 1e-4 + 9e-4 * (1 + cos(pi * t)) / 2 from t = 0 to 1.
    np.testing.assert_allclose(rates, [1e-5, 5.05e-4, 1e-3, 5.5e-4, 1e-4, 1e-4], rtol=1e-5)
    restored = keras.optimizers.Adam.from_config(
        keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(
            vf.make_optimizer(config))).get_config())
    assert float(restored._learning_rate(600)) == pytest.approx(5.5e-4, rel=1e-5)
    no_warmup = vf.make_optimizer(config.replace(warmup_steps=0))._learning_rate
    np.testing.assert_allclose([float(no_warmup(s)) for s in (0, 500, 1000)],
                               [1e-3, 5.5e-4, 1e-4], rtol=1e-5)


def test_gradient_clip_norm_round_trips_and_the_model_not_the_optimizer_clips():
    config = vf.get_config("tiny").replace(gradient_clip_norm=3)
    assert config.gradient_clip_norm == 3.0 and isinstance(config.gradient_clip_norm, float)
    assert VideoFlowConfig.from_json(config.to_json()) == config
    # The optimizer's clipping would act on each replica's share under tf.distribute.
    assert vf.make_optimizer(config).global_clipnorm is None
