import pytest

from biomedica.io.locations import (
    UnsupportedUrl,
    join_url,
    parent_url,
    parse_hf_url,
    parse_s3_url,
    sibling_url,
    url_scheme,
)


def test_schemes_of_paths_and_urls():
    assert url_scheme("/data/a/000000.tar") == "file"
    assert url_scheme("relative/000000.tar") == "file"
    assert url_scheme("file:///data/x.tar") == "file"
    assert url_scheme("https://host/x.tar") == "https"
    assert url_scheme("hf://datasets/o/n/x.tar") == "hf"
    assert url_scheme("s3://bucket/x.tar") == "s3"
    with pytest.raises(UnsupportedUrl, match="gs"):
        url_scheme("gs://bucket/x.tar")


def test_hf_url_resolves_to_the_hub_download_endpoint(monkeypatch):
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    location = parse_hf_url("hf://datasets/BIOMEDICA/biomedica_webdataset/commercial/000001.tar")
    assert (location.repo_id, location.revision, location.path) == (
        "BIOMEDICA/biomedica_webdataset", "main", "commercial/000001.tar")
    assert location.resolve_url() == (
        "https://huggingface.co/datasets/BIOMEDICA/biomedica_webdataset/resolve/main/commercial/000001.tar")


def test_hf_url_with_revision_and_custom_endpoint(monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9/")
    location = parse_hf_url("hf://datasets/org/name@refs%2Fconvert%2Fparquet/a b/x.tar")
    assert location.revision == "refs/convert/parquet"
    assert location.resolve_url() == "http://127.0.0.1:9/datasets/org/name/resolve/refs%2Fconvert%2Fparquet/a%20b/x.tar"


def test_hf_url_must_name_a_dataset_repo():
    with pytest.raises(UnsupportedUrl, match="dataset"):
        parse_hf_url("hf://org/model/x.tar")
    with pytest.raises(UnsupportedUrl, match="ORG/NAME"):
        parse_hf_url("hf://datasets/onlyorg")


def test_s3_https_address_virtual_hosted_or_on_an_endpoint(monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    location = parse_s3_url("s3://pmc-oa-opendata/archive/commercial/000000.tar")
    assert location.https_url() == "https://pmc-oa-opendata.s3.amazonaws.com/archive/commercial/000000.tar"
    assert location.https_url("http://127.0.0.1:9000/") == "http://127.0.0.1:9000/pmc-oa-opendata/archive/commercial/000000.tar"
    with pytest.raises(UnsupportedUrl):
        parse_s3_url("s3://bucket-only")


def test_parent_sibling_and_join_keep_the_scheme():
    assert sibling_url("https://h/a/commercial/000003.tar", "sizes.json") == "https://h/a/commercial/sizes.json"
    assert sibling_url("hf://datasets/o/n@v1/commercial/000003.tar", "sizes.json") == "hf://datasets/o/n@v1/commercial/sizes.json"
    assert sibling_url("/data/a/commercial/000003.tar", "sizes.json") == "/data/a/commercial/sizes.json"
    assert parent_url("s3://b/a/x.tar") == "s3://b/a"
    assert join_url("https://h/sel", "../archive/commercial/000000.tar") == "https://h/archive/commercial/000000.tar"
    assert join_url("/data/sel", "../archive/x.tar") == "/data/archive/x.tar"
    assert join_url("https://h/sel", "s3://b/x.tar") == "s3://b/x.tar"
    assert join_url("https://h/sel", "/abs/x.tar") == "/abs/x.tar"


def test_one_s3_parser_for_the_client_and_the_stream():
    from biomedica.io.locations import S3Location, parse_object_url

    md5 = "0123456789abcdef0123456789abcdef"
    location = parse_s3_url(f"s3://bucket/dir/a%20b.tar?md5={md5}")
    assert location == S3Location("bucket", "dir/a b.tar", md5)
    assert parse_object_url(f"s3://bucket/dir/a%20b.tar?md5={md5}") == location
    assert parse_object_url("https://bucket.s3.amazonaws.com/dir/a%20b.tar") == S3Location("bucket", "dir/a b.tar")
    assert location.https_url("http://127.0.0.1:9") == "http://127.0.0.1:9/bucket/dir/a%20b.tar"
    with pytest.raises(UnsupportedUrl, match="unsupported URL scheme 'hf'"):
        parse_object_url("hf://datasets/o/n/x.tar")


def test_old_url_module_is_an_alias():
    import biomedica.net.urls as old
    from biomedica.io import locations

    assert old is locations and old.ObjectRef is locations.S3Location
