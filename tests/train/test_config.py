from pathlib import Path

import pytest
import yaml

from biomedica.train.config import ConfigError, load_config, parse_config

from .conftest import REPO, tiny_config

CONFIGS = REPO / "configs" / "train"


def _config(**overrides):
    return tiny_config(Path("/tmp/runs"), [{"name": "a", "urls": "/data/{000000..000001}.tar"}], **overrides)


def test_shipped_bmca_recipe_has_the_paper_hyper_parameters(monkeypatch):
    monkeypatch.chdir(REPO)
    config = load_config(CONFIGS / "bmca-clip-vitl14.yaml")
    assert (config.model.name, config.model.pretrained) == ("ViT-L-14", "commonpool_xl_clip_s13b_b90k")
    optim = config.optim
    assert (optim.lr, optim.beta1, optim.beta2, optim.warmup) == (1e-6, 0.9, 0.95, 1000)
    assert (optim.batch_size, optim.accum_freq, optim.grad_clip_norm) == (1024, 2, 1.0)
    assert config.data.sources[0].archive.startswith("hf://datasets/")


def test_shipped_biomedclip_and_tiny_configs_validate(monkeypatch):
    monkeypatch.chdir(REPO)
    biomedclip = load_config(CONFIGS / "biomedclip-vitb16-pubmedbert.yaml")
    assert biomedclip.model.context_length == 256 and biomedclip.model.pretrained is None
    assert biomedclip.model.config_file == REPO / "configs/train/models/biomedclip-vitb16-pubmedbert256.json"
    tiny = load_config(CONFIGS / "tiny-cpu.yaml")
    assert tiny.device == "cpu" and [s.weight for s in tiny.data.sources] == [3, 1]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"optim": {"lr": -1}}, "optim.lr: Input should be greater than 0"),
        ({"schedule": {"total_steps": 5, "checkpoint_every_steps": 10}}, "schedule: checkpoint_every_steps is larger"),
        ({"data": {"sources": [{"name": "a"}]}}, "data.sources.0: give exactly one of urls, archive, selection (got none)"),
        ({"data": {"sources": [{"name": "a", "urls": "x.tar", "groups": ["commercial"]}]}}, "groups applies to an archive"),
        ({"data": {"sources": [{"name": "a", "archive": "x", "groups": ["free"]}]}}, "unknown license group(s) ['free']"),
        ({"data": {"sources": [{"name": "a", "urls": "x"}, {"name": "a", "urls": "y"}]}}, "source names must be unique"),
        ({"data": {"resampled": False, "sources": [{"name": "a", "urls": "x"}, {"name": "b", "urls": "y"}]}},
         "a mixture of several sources needs resampled: true"),
        ({"modle": {}}, "modle: Extra inputs are not permitted"),
        ({"model": {"name": "x", "config_file": "models/y.json"}}, "set name: y or rename the file to x.json"),
    ],
)
def test_bad_fields_are_named_with_the_fix(change, message):
    with pytest.raises(ConfigError) as error:
        parse_config({**_config(), **change}, "run.yaml")
    assert str(error.value).startswith("run.yaml: ")
    assert message in str(error.value)


def test_load_config_resolves_paths_and_applies_overrides(tmp_path, monkeypatch):
    path = tmp_path / "c.yaml"
    data = _config()
    data["output_dir"] = "out"
    path.write_text(yaml.safe_dump(data))
    monkeypatch.chdir(tmp_path)
    config = load_config(path, {"schedule.total_steps": 8})
    assert config.output_dir == tmp_path / "out" and config.run_dir == tmp_path / "out" / "tiny"
    assert config.schedule.total_steps == 8


def test_load_config_errors_name_the_file(tmp_path):
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "none.yaml")
    (tmp_path / "bad.yaml").write_text("name: [unclosed")
    with pytest.raises(ConfigError, match="bad.yaml: not valid YAML"):
        load_config(tmp_path / "bad.yaml")
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="list.yaml: expected a mapping"):
        load_config(tmp_path / "list.yaml")


@pytest.mark.parametrize(
    ("spec", "name", "pretrained"),
    [
        ("tiny-random", "biomedica-tiny", None),
        ("ViT-B-16:laion2b_s34b_b88k", "ViT-B-16", "laion2b_s34b_b88k"),
        ("ViT-B-16:random", "ViT-B-16", None),
        ("biomedica-tiny:/runs/tiny/checkpoints/epoch_2.pt", "biomedica-tiny", "/runs/tiny/checkpoints/epoch_2.pt"),
        ("hf-hub:microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224", "hf-hub:microsoft/BiomedCLIP-PubMedBERT_256-vit_base_patch16_224", None),
    ],
)
def test_model_spec_sets_the_openclip_name_and_weights(spec, name, pretrained):
    config = parse_config({**_config(), "model": {"spec": spec, "precision": "fp32"}}, "run.yaml")
    assert (config.model.name, config.model.pretrained) == (name, pretrained)
    again = parse_config({**_config(), "model": config.model.model_dump(mode="json")}, "run.yaml")  # plan.json round trip
    assert again.model == config.model


@pytest.mark.parametrize(
    ("model", "message"),
    [
        ({"spec": "ViT-B-16"}, "model: model 'ViT-B-16': give ARCH:TAG"),
        ({"spec": "timm:vit_small:random"}, "image-only timm model; training needs an OpenCLIP spec"),
        ({"spec": "tiny-random@3"}, "random initial weights follow data.seed in training; drop @3"),
        ({"spec": "ViT-B-16:openai", "name": "ViT-L-14"}, "spec 'ViT-B-16:openai' names ViT-B-16 (openai); drop name"),
        ({"precision": "fp32"}, "give spec (e.g. ViT-B-16:laion2b_s34b_b88k) or name"),
    ],
)
def test_bad_model_specs_are_named_with_the_fix(model, message):
    with pytest.raises(ConfigError) as error:
        parse_config({**_config(), "model": model}, "run.yaml")
    assert str(error.value).startswith("run.yaml: model: ") and message in str(error.value)
    assert "\n" not in str(error.value)
