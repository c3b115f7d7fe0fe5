"""Runs under injected faults, for reliability benchmarks and tests: a pmc-cloud ingest through a damaging proxy.

`ingest_through_corrupting_proxy` builds an archive from a PMC Cloud layout bucket while a
`corrupting_proxy` flips, truncates or cuts a seeded share of the object bodies; with the
client's checks and retries the archive must equal a clean build of the same bucket.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from biomedica.ingest.config import IngestConfig
from biomedica.ingest.run import IngestSummary, run_ingest
from biomedica.ingest.sources.pmc_cloud import PmcCloudConfig, PmcCloudSource
from biomedica.net import NetConfig, RetryPolicy
from biomedica.testing.servers import BODY_FAULTS, corrupting_proxy


@dataclass(frozen=True)
class FaultyRun:
    """What one ingest under damage did: its summary and the proxy's counts."""

    summary: IngestSummary
    requests: int  # requests the proxy forwarded (retries included)
    damaged: int  # bodies it damaged
    by_fault: dict[str, int]  # damaged bodies per fault ("flip", "truncate", "cut")


def ingest_through_corrupting_proxy(
    bucket: str,
    endpoint_url: str,
    out: Path,
    fraction: float = 0.05,
    seed: int = 0,
    *,
    modes: tuple[str, ...] = BODY_FAULTS,
    select: str = "inventory",
    retries: int = 6,
    workers: int = 1,
    articles_per_unit: int = 2,
    cache_dir: Path | None = None,
) -> FaultyRun:
    """Ingest `bucket` (served at `endpoint_url`) into `out` while `fraction` of object bodies are damaged.

    Which attempts are damaged depends on (seed, object path, attempt) only. With `retries`
    retries a body damaged on every attempt has probability fraction**(retries + 1).
    """
    with corrupting_proxy(endpoint_url, fraction, seed=seed, modes=modes) as proxy:
        net = NetConfig(
            endpoint_url=proxy.endpoint_url,
            retry=RetryPolicy(retries=retries, base_delay=0.01, max_delay=0.1),
            cache_dir=cache_dir,
        )
        cloud = PmcCloudConfig(bucket=bucket, net=net, select=select)
        config = IngestConfig(
            source="pmc-cloud", output=Path(out), articles_per_unit=articles_per_unit, workers=workers,
            progress=False, net=net, pmc_cloud=cloud,
        )
        summary = run_ingest(config, source=PmcCloudSource(cloud))
        faults = [r.fault for r in proxy.log if r.fault]
    return FaultyRun(
        summary=summary,
        requests=len(proxy.log),
        damaged=len(faults),
        by_fault={mode: faults.count(mode) for mode in modes},
    )
