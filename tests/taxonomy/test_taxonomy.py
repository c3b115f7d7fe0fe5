import pytest

from biomedica.taxonomy import load_taxonomy, slug


def test_shipped_taxonomy_is_versioned_and_biomedica_sized():
    taxonomy = load_taxonomy()
    assert taxonomy.name == "biomedica" and taxonomy.version == "1.0.0"
    assert len(taxonomy.global_concepts) == 12
    assert 170 <= len(taxonomy.local_concepts) <= 220
    assert {p.id for p in taxonomy.panel_types} == {"single", "multiple"}
    local = taxonomy.local_by_id()
    assert local["computed_tomography"].global_id == "clinical_imaging"
    assert local["kaplan_meier_curve"].global_id == "plots_and_charts"
    assert local["immunohistochemistry"].global_id == "microscopy"
    assert local["spect"].synonyms == ["SPECT"]


def test_prompts_use_templates_and_synonyms():
    taxonomy = load_taxonomy()
    prompts = taxonomy.prompts(taxonomy.local_by_id()["computed_tomography"])
    assert "a biomedical figure showing computed tomography." in prompts
    assert "an image of CT scan." in prompts
    assert len(prompts) == 3 * len(taxonomy.prompt_templates)


def test_user_extension_adds_and_appends(tmp_path):
    extra = tmp_path / "lab.yaml"
    extra.write_text(
        "version: lab-1\n"
        "global_concepts:\n"
        "  - id: clinical_imaging\n    name: Clinical Imaging\n    local: [photoacoustic imaging]\n"
        "  - id: omics\n    name: Omics\n    local:\n      - {name: single-cell atlas, prompt: a UMAP of single cells}\n"
    )
    taxonomy = load_taxonomy(extra=[extra])
    assert taxonomy.version == "1.0.0+lab-1"
    assert taxonomy.local_by_id()["photoacoustic_imaging"].global_id == "clinical_imaging"
    assert taxonomy.prompts(taxonomy.local_by_id()["single_cell_atlas"]) == ["a UMAP of single cells"]
    assert taxonomy.global_concepts[-1].id == "omics"


def test_clashing_extension_and_bad_yaml_name_the_file(tmp_path):
    clash = tmp_path / "clash.yaml"
    clash.write_text("global_concepts:\n  - id: maps\n    name: Maps\n    local: [bar chart]\n")
    with pytest.raises(ValueError, match=r"clash\.yaml.*bar_chart.*already exists"):
        load_taxonomy(extra=[clash])
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: x\nversion: 1\nglobal_concepts: [\n")
    with pytest.raises(ValueError, match="broken.yaml: not valid YAML"):
        load_taxonomy(broken)
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("name: x\nversion: '1'\nglobal_concepts:\n  - name: no id\n")
    with pytest.raises(ValueError, match=r"wrong.yaml: invalid taxonomy at global_concepts.0.id"):
        load_taxonomy(wrong)


def test_slug():
    assert slug("Kaplan-Meier curve") == "kaplan_meier_curve"
    assert slug("t-SNE or UMAP plot") == "t_sne_or_umap_plot"
