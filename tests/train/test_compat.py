import pytest

from biomedica.train.compat import openclip_tar_reader_fixed, without_eof_markers

from .conftest import write_shards


def _newer_webdataset_expander(real):
    """A tar_file_expander as webdataset >= 0.2.96 has it: `{}` after each tar unless eof_value=None."""

    def tar_file_expander(data, handler=None, select_files=None, rename_files=None, eof_value={}):  # noqa: B006
        for source in data:
            yield from real([source], handler=handler) if handler else real([source])
            if eof_value is not None:
                yield eof_value

    return tar_file_expander


def test_openclip_reader_breaks_on_eof_markers_and_the_fix_repairs_it(tmp_path, monkeypatch):
    import open_clip_train.data as openclip_data

    write_shards(tmp_path, "A", [2, 1], (5, 5, 5), "x")
    urls = [{"url": str(tmp_path / f"00000{i}.tar")} for i in range(2)]
    real = openclip_data.tar_file_expander
    monkeypatch.setattr(openclip_data, "tar_file_expander", _newer_webdataset_expander(real))
    with pytest.raises(KeyError, match="fname"):
        list(openclip_data.tarfile_to_samples_nothrow([dict(u) for u in urls]))
    with openclip_tar_reader_fixed():
        samples = list(openclip_data.tarfile_to_samples_nothrow([dict(u) for u in urls]))
    assert [s["__key__"] for s in samples] == ["A000_000", "A000_001", "A001_000"]
    assert openclip_data.tar_file_expander.__name__ == "tar_file_expander"  # restored to the patched-in one


def test_fix_is_a_no_op_with_the_pinned_webdataset(tmp_path):
    from webdataset.tariterators import tar_file_expander, url_opener

    write_shards(tmp_path, "A", [2], (5, 5, 5), "x")
    entries = list(without_eof_markers(tar_file_expander)(url_opener([{"url": str(tmp_path / "000000.tar")}])))
    assert [e["fname"] for e in entries] == [f"A000_00{n}.{x}" for n in (0, 1) for x in ("png", "txt", "json")]
