"""biomedica enrich against a local E-utilities server: batching, PMID matching, retries, cache, resume."""

from __future__ import annotations

import json
import shutil
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pyarrow.parquet as pq
import pytest

from biomedica.enrich import EnrichConfig, enrich_archive, read_enrichment
from biomedica.enrich.run import ArchiveNotReady, clean_pmid
from biomedica.ingest.config import IngestConfig
from biomedica.ingest.run import run_ingest
from biomedica.net import RetryPolicy

# real fixture files: PMIDs as their XML states them
ARCHIVE_FILES = {
    "pmc_nxml/PMC3166277.nxml": ("PMC3166277", "21810267"),
    "pmc_nxml/PMC2329613.nxml": ("PMC2329613", "18405359"),
    "pmc_nxml/PMC2599765.nxml": ("PMC2599765", "19079722"),
    "pmc_wrapped/PMC10000000.oai.xml": ("PMC10000000", "37471719"),  # scanned 1800s article: no DOI, no abstract
    "pmc_wrapped/PMC1086993.efetch.xml": ("PMC1086993", "16656901"),
    "pmc_nxml/elife07586.nxml": ("DOI-10-7554-eLife-07586", None),  # eLife publisher XML: no PMID
}
NOT_IN_PUBMED = "16656901"  # the server leaves it out of its answers (a deleted PMID)

# MeSH headings per PMID served by the test server: (descriptor, UI, major, [(qualifier, major)])
MESH = {
    "21810267": [("Escherichia coli", "D004926", "N", [("genetics", "Y")]), ("Humans", "D006801", "N", [])],
    "18405359": [("Mouth Diseases", "D009057", "Y", []), ("Adolescent", "D000293", "N", [])],
    "19079722": [("Polybrominated Biphenyls", "D011078", "N", [("blood", "N"), ("toxicity", "Y")])],
    "37471719": [("History, 19th Century", "D049672", "N", [])],
}


def pubmed_article(pmid: str) -> str:
    """One <PubmedArticle> in the structure efetch db=pubmed retmode=xml returns."""
    headings = "".join(
        f'<MeshHeading><DescriptorName UI="{ui}" MajorTopicYN="{major}">{name}</DescriptorName>'
        + "".join(f'<QualifierName UI="Q{i:06d}" MajorTopicYN="{m}">{q}</QualifierName>' for i, (q, m) in enumerate(quals))
        + "</MeshHeading>"
        for name, ui, major, quals in MESH[pmid]
    )
    abstract = (
        "" if pmid != "37471719" else
        '<Abstract><AbstractText Label="BACKGROUND" NlmCategory="BACKGROUND">A <i>scanned</i> case.</AbstractText>'
        '<AbstractText Label="CONCLUSIONS" NlmCategory="CONCLUSIONS">Reported in 1850.</AbstractText></Abstract>'
    )
    return f"""<PubmedArticle>
  <MedlineCitation Status="MEDLINE" Owner="NLM" IndexingMethod="Manual">
    <PMID Version="1">{pmid}</PMID>
    <DateCompleted><Year>2012</Year><Month>01</Month><Day>12</Day></DateCompleted>
    <Article PubModel="Electronic">
      <Journal><ISSN IssnType="Electronic">1471-2180</ISSN><Title>Test Journal</Title></Journal>
      <ArticleTitle>Article {pmid}.</ArticleTitle>
      <ELocationID EIdType="pii" ValidYN="Y">{pmid}</ELocationID>
      {abstract}
      <AuthorList CompleteYN="Y"><Author ValidYN="Y"><LastName>Doe</LastName><ForeName>J</ForeName></Author></AuthorList>
      <Language>eng</Language>
      <PublicationTypeList>
        <PublicationType UI="D016428">Journal Article</PublicationType>
        <PublicationType UI="D013485">Research Support, Non-U.S. Gov't</PublicationType>
      </PublicationTypeList>
    </Article>
    <MedlineJournalInfo><Country>England</Country><MedlineTA>Test J</MedlineTA></MedlineJournalInfo>
    <ChemicalList><Chemical><RegistryNumber>0</RegistryNumber><NameOfSubstance UI="D000001">Calcimycin</NameOfSubstance></Chemical></ChemicalList>
    <CitationSubset>IM</CitationSubset>
    <MeshHeadingList>{headings}</MeshHeadingList>
    <KeywordList Owner="NOTNLM"><Keyword MajorTopicYN="N">keyword {pmid}</Keyword></KeywordList>
  </MedlineCitation>
  <PubmedData>
    <History><PubMedPubDate PubStatus="pubmed"><Year>2011</Year><Month>8</Month><Day>4</Day></PubMedPubDate></History>
    <PublicationStatus>epublish</PublicationStatus>
    <ArticleIdList>
      <ArticleId IdType="pubmed">{pmid}</ArticleId>
      <ArticleId IdType="doi">10.9999/pubmed.{pmid}</ArticleId>
      <ArticleId IdType="pmc">PMC-of-{pmid}</ArticleId>
    </ArticleIdList>
  </PubmedData>
</PubmedArticle>"""


def pubmed_set(pmids: list[str]) -> bytes:
    body = "\n".join(pubmed_article(p) for p in pmids)
    return (
        '<?xml version="1.0" ?>\n<!DOCTYPE PubmedArticleSet PUBLIC "-//NLM//DTD PubMedArticle, 1st January 2025//EN" '
        '"https://dtd.nlm.nih.gov/ncbi/pubmed/out/pubmed_250101.dtd">\n'
        f"<PubmedArticleSet>\n{body}\n</PubmedArticleSet>\n"
    ).encode()


class FakeEutils(BaseHTTPRequestHandler):
    """efetch.fcgi: answers in reversed order, omits NOT_IN_PUBMED, and fails on request."""

    requests: list[dict] = []
    script: list[int] = []  # statuses for the next requests (429 / 500), consumed in order
    always_fail: set[str] = set()  # a request naming any of these PMIDs answers 500

    def log_message(self, *args) -> None:
        return None

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        params = {k: v[0] for k, v in parse_qs(parts.query).items()}
        ids = params.get("id", "").split(",")
        FakeEutils.requests.append({"path": parts.path, "at": time.monotonic(), **params})
        status = FakeEutils.script.pop(0) if FakeEutils.script else 200
        if set(ids) & FakeEutils.always_fail:
            status = 500
        if status != 200:
            body = json.dumps({"error": "API rate limit exceeded"} if status == 429 else {"error": "boom"}).encode()
            self.send_response(status)
            if status == 429:
                self.send_header("Retry-After", "1")
        else:
            known = [p for p in reversed(ids) if p in MESH]  # out of order, unknown PMIDs left out
            body = pubmed_set(known)
            self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def eutils():
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeEutils)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/entrez/eutils/"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def ingested(fixtures_dir, tmp_path_factory) -> Path:
    source = tmp_path_factory.mktemp("enrich-input")
    for rel in ARCHIVE_FILES:  # copies: ingest refuses symlinks that lead out of its input folder
        shutil.copyfile(fixtures_dir / rel, source / Path(rel).name)
    out = tmp_path_factory.mktemp("enrich-archive") / "archive"
    run_ingest(IngestConfig(input=source, output=out, articles_per_unit=4, progress=False))
    return out


@pytest.fixture
def archive(ingested, tmp_path) -> Path:
    """A private copy of the ingested archive (enrich adds files to it)."""
    import shutil

    copy = tmp_path / "archive"
    shutil.copytree(ingested, copy)
    FakeEutils.requests, FakeEutils.script, FakeEutils.always_fail = [], [], set()
    return copy


def _config(archive: Path, eutils: str, **overrides) -> EnrichConfig:
    values = dict(
        archive=archive, base_url=eutils, api_key=None, batch_size=2, requests_per_second=50.0,
        retry=RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.05), progress=False,
    )
    return EnrichConfig(**(values | overrides))


def test_mesh_terms_matched_by_pmid_across_batches_out_of_order(archive, eutils):
    summary = enrich_archive(_config(archive, eutils, api_key="secret-key", email="me@example.org"))
    rows = {r["article_id"]: r for r in read_enrichment(archive).to_pylist()}
    assert set(rows) == {a for a, p in ARCHIVE_FILES.values() if p}  # the eLife article has no PMID
    for article_id, pmid in ARCHIVE_FILES.values():
        if pmid and pmid != NOT_IN_PUBMED:
            assert rows[article_id]["pmid"] == pmid and rows[article_id]["status"] == "ok"
            assert rows[article_id]["mesh_terms"] == [name for name, *_ in MESH[pmid]]
            assert rows[article_id]["pmcid"] == f"PMC-of-{pmid}"
    ecoli = rows["PMC3166277"]
    assert ecoli["mesh_ids"] == ["D004926", "D006801"]
    assert ecoli["mesh_major"] == ["Escherichia coli"]  # major through its qualifier
    assert ecoli["mesh_qualified"] == ["Escherichia coli/genetics"]
    assert ecoli["publication_types"] == ["Journal Article", "Research Support, Non-U.S. Gov't"]
    assert ecoli["chemicals"] == ["Calcimycin"] and ecoli["keywords"] == ["keyword 21810267"]
    assert rows["PMC2599765"]["mesh_qualified"] == ["Polybrominated Biphenyls/blood", "Polybrominated Biphenyls/toxicity"]
    # the archive already had abstract and DOI for this one: nothing copied twice
    assert ecoli["abstract"] is None and ecoli["doi"] is None and ecoli["filled"] == ["mesh_terms"]
    scanned = rows["PMC10000000"]  # no DOI, no abstract in the archive: PubMed fills both
    assert scanned["abstract"] == "BACKGROUND: A scanned case.\nCONCLUSIONS: Reported in 1850."
    assert scanned["doi"] == "10.9999/pubmed.37471719"
    assert scanned["filled"] == ["abstract", "doi", "mesh_terms"]
    assert rows["PMC1086993"]["status"] == "not-found" and rows["PMC1086993"]["mesh_terms"] == []
    # 5 PMIDs in batches of 2, sorted numerically: 3 requests with the key, tool and email
    assert [r["id"] for r in FakeEutils.requests] == ["16656901,18405359", "19079722,21810267", "37471719"]
    assert all(r["db"] == "pubmed" and r["retmode"] == "xml" and r["path"].endswith("/efetch.fcgi") for r in FakeEutils.requests)
    assert {(r["api_key"], r["tool"], r["email"]) for r in FakeEutils.requests} == {("secret-key", "biomedica", "me@example.org")}
    assert (summary.articles, summary.without_pmid, summary.pmids) == (6, 1, 5)
    assert (summary.enriched, summary.not_found, summary.failed, summary.with_mesh) == (4, 1, 0, 4)
    assert (summary.filled_abstracts, summary.filled_dois, summary.parts) == (1, 1, 1)
    assert sorted(p.name for p in (archive / "enrichment").iterdir()) == ["_cache", "part-000000.parquet"]


def test_429_and_500_are_retried_and_rerun_asks_nothing(archive, eutils):
    FakeEutils.script = [429, 500]
    first = enrich_archive(_config(archive, eutils, batch_size=200))
    assert first.requests == 1 and first.retries == 2 and first.enriched == 4
    assert [r["id"] for r in FakeEutils.requests] == ["16656901,18405359,19079722,21810267,37471719"] * 3
    before = read_enrichment(archive).to_pylist()
    FakeEutils.requests = []
    again = enrich_archive(_config(archive, eutils))
    assert FakeEutils.requests == [] and again.already_enriched == 5 and again.parts == 0
    assert read_enrichment(archive).to_pylist() == before


def test_cache_answers_a_rerun_after_losing_the_table(archive, eutils):
    enrich_archive(_config(archive, eutils))
    before = sorted(read_enrichment(archive).to_pylist(), key=lambda r: r["article_id"])
    (archive / "enrichment" / "part-000000.parquet").unlink()  # as if the run died before writing
    FakeEutils.requests = []
    again = enrich_archive(_config(archive, eutils))
    assert again.from_cache == 4
    # only the PMID PubMed does not know is asked again (misses are not cached)
    assert [r["id"] for r in FakeEutils.requests] == [NOT_IN_PUBMED]
    assert sorted(read_enrichment(archive).to_pylist(), key=lambda r: r["article_id"]) == before


def test_failed_batch_is_recorded_and_retried_by_the_next_run(archive, eutils):
    FakeEutils.always_fail = {"19079722"}
    summary = enrich_archive(_config(archive, eutils))
    assert summary.failed == 2 and summary.enriched == 2  # batch [19079722, 21810267] failed
    errors = pq.read_table(archive / "errors" / "enrich-efetch.parquet").to_pylist()
    assert sorted(e["id"] for e in errors) == ["PMC2599765", "PMC3166277"]
    assert all(e["stage"] == "enrich" and e["kind"] == "efetch-failed" for e in errors)
    assert "HTTP 500" in errors[0]["message"] and "run `biomedica enrich` again" in errors[0]["message"]
    FakeEutils.always_fail = set()
    FakeEutils.requests = []
    healed = enrich_archive(_config(archive, eutils))
    assert [r["id"] for r in FakeEutils.requests] == ["19079722,21810267"]
    assert healed.enriched == 2 and healed.parts == 1
    assert len(read_enrichment(archive)) == 5
    assert (archive / "enrichment" / "part-000001.parquet").is_file()


def _enrich_errors(archive: Path) -> dict[str, int]:
    from biomedica.archive.inspect import inspect_archive

    return inspect_archive(archive).errors_by_stage.get("enrich", {})


def test_a_healed_run_clears_the_errors_and_repeated_failures_count_once(archive, eutils):
    FakeEutils.always_fail = {"19079722"}
    enrich_archive(_config(archive, eutils))
    enrich_archive(_config(archive, eutils))  # fails again: still the same two articles
    assert _enrich_errors(archive) == {"efetch-failed": 2}
    assert [p.name for p in (archive / "errors").glob("enrich-*")] == ["enrich-efetch.parquet"]
    FakeEutils.always_fail = set()
    healed = enrich_archive(_config(archive, eutils))
    assert healed.failed == 0 and healed.enriched == 2
    assert _enrich_errors(archive) == {} and not list((archive / "errors").glob("enrich-*"))
    assert sorted(p.name for p in (archive / "enrichment").glob("part-*")) == ["part-000000.parquet",
                                                                                 "part-000001.parquet"]


def test_error_files_of_earlier_releases_are_kept_and_counted_once(archive, eutils):
    """enrich used to write errors/enrich-NNNNNN.parquet per failing run, never removed: read, not deleted."""
    FakeEutils.always_fail = {"19079722"}
    enrich_archive(_config(archive, eutils))
    current = archive / "errors" / "enrich-efetch.parquet"
    legacy = [archive / "errors" / "enrich-000000.parquet", archive / "errors" / "enrich-000003.parquet"]
    for path in legacy:  # two older runs that failed on the same articles
        path.write_bytes(current.read_bytes())
    enrich_archive(_config(archive, eutils))
    assert _enrich_errors(archive) == {"efetch-failed": 2}
    FakeEutils.always_fail = set()
    enrich_archive(_config(archive, eutils))
    assert _enrich_errors(archive) == {} and all(p.is_file() for p in legacy) and not current.exists()


def test_rate_limit_defaults_and_spacing(archive, eutils, monkeypatch):
    monkeypatch.delenv("NCBI_API_KEY", raising=False)
    assert EnrichConfig(archive=archive).rate == 3.0
    monkeypatch.setenv("NCBI_API_KEY", "from-env")
    keyed = EnrichConfig(archive=archive)
    assert keyed.api_key == "from-env" and keyed.rate == 10.0
    with pytest.raises(ValueError, match="less than or equal to 200"):
        EnrichConfig(archive=archive, batch_size=201)
    enrich_archive(_config(archive, eutils, api_key="k", requests_per_second=None))  # 10/s
    times = [r["at"] for r in FakeEutils.requests]
    assert len(times) == 3 and times[-1] - times[0] >= 0.18


def test_archive_without_units_and_pmid_cleaning(tmp_path, eutils):
    with pytest.raises(ArchiveNotReady, match="run `biomedica ingest`"):
        enrich_archive(_config(tmp_path, eutils))
    assert clean_pmid("PMID: 123") == "123" and clean_pmid(" 42 ") == "42"
    assert clean_pmid("") is None and clean_pmid("abc") is None and clean_pmid("0") is None


@pytest.mark.slow  # the CLI keeps NCBI's retry policy: a failing batch waits out its backoff (~8 s)
def test_cli_exits_1_with_counts_when_some_batches_failed(archive, eutils):
    from typer.testing import CliRunner

    from biomedica.cli import app

    FakeEutils.always_fail = {"19079722"}
    result = CliRunner().invoke(app, ["enrich", str(archive), "--base-url", eutils, "--batch-size", "2", "--no-progress"],
                                env={"NCBI_API_KEY": ""}, terminal_width=300)
    assert result.exit_code == 1, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "2 of 5 articles" in errors[0] and "rerun `biomedica enrich`" in errors[0]
    assert "enriched (with MeSH)" in result.output  # the summary comes first
