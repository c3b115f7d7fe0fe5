"""The one `--model` grammar: every form parses to the same fields in every stage."""

from __future__ import annotations

import pytest

from biomedica.models import ModelLoadError, parse_model_spec

FORMS = [
    # text, kind, arch, pretrained, seed, is_path, open_clip_train (model, pretrained)
    ("tiny-random", "open_clip", "biomedica-tiny", "random", 0, False, ("biomedica-tiny", None)),
    ("tiny-random@7", "open_clip", "biomedica-tiny", "random", 7, False, ("biomedica-tiny", None)),
    ("ViT-B-16:laion2b_s34b_b88k", "open_clip", "ViT-B-16", "laion2b_s34b_b88k", 0, False, ("ViT-B-16", "laion2b_s34b_b88k")),
    ("ViT-B-16:/ckpt/epoch_3.pt", "open_clip", "ViT-B-16", "/ckpt/epoch_3.pt", 0, True, ("ViT-B-16", "/ckpt/epoch_3.pt")),
    ("ViT-B-16:weights.safetensors", "open_clip", "ViT-B-16", "weights.safetensors", 0, True, ("ViT-B-16", "weights.safetensors")),
    ("ViT-B-16:random", "open_clip", "ViT-B-16", "random", 0, False, ("ViT-B-16", None)),
    ("ViT-B-16:random@3", "open_clip", "ViT-B-16", "random", 3, False, ("ViT-B-16", None)),
    ("hf-hub:org/name", "open_clip", "hf-hub:org/name", None, 0, False, ("hf-hub:org/name", None)),
    ("timm:vit_small_patch14_dinov2.lvd142m", "timm", "vit_small_patch14_dinov2.lvd142m", None, 0, False, None),
    ("timm:test_vit:/w/dino.safetensors", "timm", "test_vit", "/w/dino.safetensors", 0, True, None),
    ("timm:test_vit:random@2", "timm", "test_vit", "random", 2, False, None),
    ("  ViT-B-32:openai ", "open_clip", "ViT-B-32", "openai", 0, False, ("ViT-B-32", "openai")),
]


@pytest.mark.parametrize(("text", "kind", "arch", "pretrained", "seed", "is_path", "train"), FORMS)
def test_every_form_parses(text, kind, arch, pretrained, seed, is_path, train):
    spec = parse_model_spec(text)
    assert (spec.text, spec.kind, spec.arch, spec.pretrained, spec.seed, spec.is_path) == (
        text.strip(), kind, arch, pretrained, seed, is_path
    )
    assert spec.is_random == (pretrained == "random")
    if train is None:
        with pytest.raises(ModelLoadError, match="image-only timm model; training needs an OpenCLIP spec"):
            spec.openclip_args()
    else:
        assert spec.openclip_args() == train


def test_local_path_is_expanded_for_training(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    spec = parse_model_spec("ViT-B-16:~/run/epoch_2.pt")
    assert spec.is_path and spec.path == tmp_path / "run" / "epoch_2.pt"
    assert spec.openclip_args() == ("ViT-B-16", str(tmp_path / "run" / "epoch_2.pt"))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("ViT-B-16", "give ARCH:TAG"),
        ("ViT-B-16:", "give ARCH:TAG"),
        (":laion2b", "give ARCH:TAG"),
        ("tiny-random@x", "bad seed in 'tiny-random@x'; use random@<integer>"),
        ("ViT-B-16:random@-1", "bad seed"),
        ("hf-hub:", "give hf-hub:ORG/NAME"),
        ("timm:", "give timm:NAME"),
        ("timm:vit:", "give timm:NAME"),
        ("timm:vit:augreg", "a timm tag goes in the name"),
    ],
)
def test_bad_specs_are_one_line_errors(text, message):
    with pytest.raises(ModelLoadError, match=message) as caught:
        parse_model_spec(text)
    assert "\n" not in str(caught.value) and repr(text.strip()) in str(caught.value)


@pytest.mark.parametrize("text", [
    "tiny-random", "tiny-random@3", "ViT-B-16:random", "ViT-B-16:random@7", "ViT-B-16:/w/open_clip.bin",
    "ViT-B-16:laion2b_s34b_b88k", "hf-hub:org/name", "timm:vit_small_patch14_dinov2", "timm:vit_small:/w/dino.safetensors",
    "timm:vit_small:random",
])
def test_a_recorded_pair_turns_back_into_its_spec(text):
    """curate embed records (model, pretrained) in meta.json; serve loads the query model from that pair."""
    from biomedica.models.spec import parse_model_spec, recorded_pair, spec_from_recorded

    spec = parse_model_spec(text)
    again = parse_model_spec(spec_from_recorded(*recorded_pair(spec)))
    assert (again.arch, again.pretrained, again.seed, again.kind) == (spec.arch, spec.pretrained, spec.seed, spec.kind)
