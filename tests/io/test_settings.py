import json

import pytest

from biomedica.io.settings import SettingsMismatch, check_settings

FIX = "re-run with the original settings to resume, or write to a new --out folder"


def test_first_run_records_later_runs_must_match(tmp_path):
    path = tmp_path / "_build_settings.json"
    settings = {"articles_per_unit": 4, "lossy_images": "webp", "groups": ("commercial", "other")}
    assert check_settings(path, settings, str(tmp_path), FIX) is None
    assert json.loads(path.read_text()) == {"articles_per_unit": 4, "groups": ["commercial", "other"],
                                            "lossy_images": "webp"}
    assert check_settings(path, settings, str(tmp_path), FIX)["articles_per_unit"] == 4  # tuples match lists
    with pytest.raises(SettingsMismatch) as refused:
        check_settings(path, {**settings, "articles_per_unit": 5, "lossy_images": None}, str(tmp_path), FIX)
    assert str(refused.value) == (
        f"{tmp_path} was started with other settings (articles_per_unit: 4 -> 5, lossy_images: 'webp' -> None); {FIX}"
    )
    assert isinstance(refused.value, ValueError)  # CLIs turn it into one error line
    assert json.loads(path.read_text())["articles_per_unit"] == 4  # the record is never rewritten


def test_caller_may_record_a_fuller_file_itself(tmp_path):
    meta = tmp_path / "meta.json"
    wanted = {"model": "tiny-random", "pretrained": None}
    assert check_settings(meta, wanted, "embedding folder x", "choose another --name", record=False) is None
    assert not meta.exists()
    meta.write_text(json.dumps({**wanted, "dim": 64, "created": "2026-01-01"}))
    assert check_settings(meta, wanted, "embedding folder x", "choose another --name")["dim"] == 64  # extra keys kept
    with pytest.raises(SettingsMismatch, match=r"model: 'tiny-random' -> 'RN50'\); choose another --name$"):
        check_settings(meta, {**wanted, "model": "RN50"}, "embedding folder x", "choose another --name")


def test_unreadable_record_is_refused_with_the_fix(tmp_path):
    path = tmp_path / "s.json"
    path.write_text("{half")
    with pytest.raises(SettingsMismatch, match=f"{path}: unreadable settings .*; {FIX}"):
        check_settings(path, {"a": 1}, "x", FIX)
    path.write_text("[1, 2]")
    with pytest.raises(SettingsMismatch, match="holds no settings object"):
        check_settings(path, {"a": 1}, "x", FIX)
