from concurrent.futures import ThreadPoolExecutor

from biomedica.net.cache import ContentCache, cache_key


def test_key_depends_on_url_and_version_not_query():
    a = cache_key("s3://b/PMC1.1/x.xml?md5=aa", "AA")
    assert a == cache_key("s3://b/PMC1.1/x.xml", '"aa"')
    assert a != cache_key("s3://b/PMC1.1/x.xml", "bb")
    assert a != cache_key("s3://b/PMC1.2/x.xml", "aa")


def test_put_get_and_no_temporaries_left(tmp_path):
    cache = ContentCache(tmp_path)
    key = cache_key("s3://b/k", "v1")
    assert cache.get(key) is None and key not in cache
    with ThreadPoolExecutor(8) as pool:  # concurrent writers of the same entry
        list(pool.map(lambda i: cache.put(key, b"payload"), range(32)))
    assert cache.get(key) == b"payload"
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == [key]
    cache.discard(key)
    assert cache.get(key) is None
