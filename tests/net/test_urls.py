import pytest

from biomedica.io.locations import S3Location, md5_from_url, parse_object_url, strip_query

MD5 = "0123456789abcdef0123456789abcdef"


def test_s3_url_with_md5():
    ref = parse_object_url(f"s3://pmc-oa-opendata/PMC123.1/PMC123.1.xml?md5={MD5.upper()}")
    assert ref == S3Location("pmc-oa-opendata", "PMC123.1/PMC123.1.xml", MD5)
    assert ref.url == "s3://pmc-oa-opendata/PMC123.1/PMC123.1.xml"


def test_aws_https_urls_are_s3_objects():
    virtual = parse_object_url("https://pmc-oa-opendata.s3.amazonaws.com/PMC1.2/fig%201.jpg")
    regional = parse_object_url("https://pmc-oa-opendata.s3.us-east-1.amazonaws.com/PMC1.2/a.jpg")
    path_style = parse_object_url(f"https://s3.amazonaws.com/pmc-oa-opendata/PMC1.2/a.jpg?md5={MD5}")
    assert (virtual.bucket, virtual.key) == ("pmc-oa-opendata", "PMC1.2/fig 1.jpg")
    assert (regional.bucket, regional.key) == ("pmc-oa-opendata", "PMC1.2/a.jpg")
    assert path_style == S3Location("pmc-oa-opendata", "PMC1.2/a.jpg", MD5)


def test_other_https_is_plain_http():
    assert parse_object_url("https://ftp.ncbi.nlm.nih.gov/pub/pmc/oa_file_list.csv") is None
    assert md5_from_url("https://example.org/a?x=1") is None
    assert strip_query(f"https://example.org/a?md5={MD5}") == "https://example.org/a"


def test_bad_urls_name_the_fix():
    with pytest.raises(ValueError, match="32-digit hex md5"):
        md5_from_url("s3://b/k?md5=xyz")
    with pytest.raises(ValueError, match="needs a bucket and a key"):
        parse_object_url("s3://bucket-only")
    with pytest.raises(ValueError, match="unsupported URL scheme 'ftp'"):
        parse_object_url("ftp://ftp.ncbi.nlm.nih.gov/x")
