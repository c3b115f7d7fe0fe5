"""Reliability: does an archive survive kill -9, a second writer, a corrupting network and growth?

    python benchmarks/reliability.py                       # 10 seeded runs of each scenario
    python benchmarks/reliability.py --quick               # 2 runs each, smaller corpora
    python benchmarks/reliability.py --runs 20 --seed 7 --scenario kill --scenario growth
    python benchmarks/reliability.py --json reliability.json

Each scenario runs the real `biomedica ingest` command (`python -m biomedica.cli`, the
sources this process imports) on the demo corpus generator's articles and compares the result
with a clean build by `biomedica.testing.archive_compare` (live sample keys, image sha256,
caption, figure record and shard-index row per key, article rows, errors/ rows):

1. kill: start `ingest SRC --out A --workers 2`, SIGKILL the main process only (not its
   process group) at a random moment of the run, record the main process and all its
   descendants (from /proc) just before; pass when none of them is alive 10 s later, a rerun
   of the same command exits 0 and the archive equals a clean build, shard tars byte for byte,
   with no temporary file left and the lock released.
2. concurrent: two ingests into one --out, the second started at a random moment; pass when
   exactly one exits 2 with one line on stderr, the other exits 0, and the archive equals a
   clean build (byte for byte).
3. cloud-faults: a `--source pmc-cloud` ingest from a moto S3 server (LocalS3Server) behind a
   proxy that corrupts or truncates 5% of response bodies (seeded); pass when it exits 0 and
   the archive equals a clean pmc-cloud ingest without the proxy (byte for byte).
4. growth: ingest a random half of a corpus, add the other half to the input folder, rerun;
   pass when the archive equals a clean build of the union (same samples, shard placement
   aside), the first build's files are byte-identical and every new sample sits in a unit
   after the first build's last unit.

Per scenario: tried (runs), survived (every check passed), lost (runs with samples missing,
wrong or doubled; the number of such samples in `samples lost`) and the reasons of failures
with how many runs each. A run that fails only a non-data check (an orphan process, a
leftover temporary file, an exit code) is neither survived nor lost. All randomness (kill
moments, which bodies are corrupted, which half comes first) derives from --seed.
Linux only (/proc).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import biomedica
from biomedica.testing.archive_compare import ArchiveContent, diff_archives, read_archive, samples_lost
from biomedica.testing.processes import cli_waiting_for, ready

SCENARIOS = ("kill", "concurrent", "cloud-faults", "growth")
ORPHAN_GRACE = 10.0  # seconds the processes of a killed run get to die
LOCK_NAME = ".biomedica.lock"


@dataclass(frozen=True)
class Sizes:
    """Corpus sizes: a kill/concurrent run should take 5-15 s so kills land mid-run."""

    articles: int = 160
    articles_per_unit: int = 2
    cloud_articles: int = 40
    cloud_articles_per_unit: int = 4
    growth_articles: int = 48
    growth_articles_per_unit: int = 4
    workers: int = 2


QUICK = Sizes(articles=40, cloud_articles=16, growth_articles=24)


@dataclass
class RunResult:
    run: int
    survived: bool
    lost: bool
    samples_lost: int
    reasons: list[str]
    details: dict = field(default_factory=dict)


@dataclass
class ScenarioResult:
    name: str
    runs: list[RunResult] = field(default_factory=list)
    seconds: float = 0.0
    setup_error: str | None = None

    @property
    def tried(self) -> int:
        return len(self.runs)

    @property
    def survived(self) -> int:
        return sum(r.survived for r in self.runs)

    @property
    def lost(self) -> int:
        return sum(r.lost for r in self.runs)

    def reasons(self) -> Counter[str]:
        return Counter(reason for r in self.runs for reason in dict.fromkeys(r.reasons))

    def to_dict(self) -> dict:
        return {
            "name": self.name, "tried": self.tried, "survived": self.survived, "lost": self.lost,
            "samples_lost": sum(r.samples_lost for r in self.runs), "reasons": dict(self.reasons()),
            "seconds": round(self.seconds, 1), "setup_error": self.setup_error,
            "runs": [asdict(r) for r in self.runs],
        }


# ---------------------------------------------------------------- processes (/proc, no psutil)


def _stat(pid: int) -> tuple[int, int, str] | None:
    """(ppid, start time in clock ticks, state) of a process, None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[1]), int(fields[19]), fields[0]


def process_tree(pid: int) -> dict[int, int]:
    """pid -> start time of `pid` and all its descendants now (the start time tells a reused pid apart)."""
    children: dict[int, list[int]] = {}
    starts: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None:
                children.setdefault(stat[0], []).append(int(entry.name))
                starts[int(entry.name)] = stat[1]
    tree, todo = {}, [pid]
    while todo:
        current = todo.pop()
        if current in starts and current not in tree:
            tree[current] = starts[current]
            todo += children.get(current, [])
    return tree


def alive(tree: dict[int, int]) -> list[int]:
    """The processes of `tree` still running (zombies count as dead)."""
    found = []
    for pid, start in tree.items():
        stat = _stat(pid)
        if stat is not None and stat[1] == start and stat[2] != "Z":
            found.append(pid)
    return found


def kill_all(tree: dict[int, int], timeout: float = 10.0) -> None:
    """SIGKILL the processes of `tree` that still run (processes this benchmark started), one by one."""
    for pid in alive(tree):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    while alive(tree) and time.monotonic() < deadline:
        time.sleep(0.05)


# ---------------------------------------------------------------- running the CLI


def _env() -> dict[str, str]:
    """The child imports the same biomedica sources as this process."""
    src = str(Path(biomedica.__file__).resolve().parents[1])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
    return env




@dataclass
class Cli:
    """One `biomedica` process with its output in files (orphans holding a pipe cannot block us)."""

    proc: subprocess.Popen
    stdout: Path
    stderr: Path
    started: float

    @classmethod
    def start(cls, args: list[str], logs: Path, name: str, go: Path | None = None) -> Cli:
        """Start `biomedica ARGS`; with `go`, the process imports everything first and runs when `go` exists."""
        logs.mkdir(parents=True, exist_ok=True)
        out, err = logs / f"{name}.out", logs / f"{name}.err"
        command = [sys.executable, "-m", "biomedica.cli"] if go is None else cli_waiting_for(go)
        with open(out, "wb") as o, open(err, "wb") as e:
            proc = subprocess.Popen([*command, *args], stdout=o, stderr=e,
                                    stdin=subprocess.DEVNULL, env=_env(), start_new_session=True)
        return cls(proc, out, err, time.monotonic())

    def wait(self, timeout: float = 600) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            kill_all(process_tree(self.proc.pid))
            self.proc.wait()
            return -9

    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.read_text(errors="replace").splitlines() if line.strip()]

    def last_error(self) -> str:
        """The end of what the process printed on stderr (its error line), at most 400 characters."""
        return " | ".join(self.error_lines()[-3:])[-400:]


def _wait_for(condition, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)


def ingest_args(src: Path | None, out: Path, sizes: Sizes, apu: int, *extra: str) -> list[str]:
    args = ["ingest"] + ([str(src)] if src is not None else [])
    return args + ["--out", str(out), "--workers", str(sizes.workers), "--articles-per-unit", str(apu),
                   "--no-progress", *extra]


def run_cli(args: list[str], logs: Path, name: str) -> tuple[int, Cli, float]:
    cli = Cli.start(args, logs, name)
    rc = cli.wait()
    return rc, cli, time.monotonic() - cli.started


def leftovers(root: Path) -> list[str]:
    """Temporary files (`*.tmp-*`) and lock files left in an archive after a run finished."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")
                  if ".tmp-" in p.name or p.name.startswith(LOCK_NAME))


def file_digests(root: Path) -> dict[str, str]:
    """sha256 of every unit's data file: shard tars and indexes, articles/ and errors/ parts (not markers)."""
    digests = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if path.is_file() and len(rel.parts) == 2 and rel.parts[0] != "_units" and not path.name.startswith(".") \
                and path.stem.removeprefix("part-").isdigit():
            digests[str(rel)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return digests


def check_archive(reference: ArchiveContent, out: Path, result: RunResult, same_units: bool = True) -> None:
    differences = diff_archives(reference, out, same_units=same_units)
    result.samples_lost = samples_lost(differences)
    result.lost = any(d.loss for d in differences)
    result.reasons += [f"archive differs: {d.what}" for d in differences]
    result.details["differences"] = [str(d) for d in differences]


# ---------------------------------------------------------------- corpora


def write_corpus(work: Path, n_articles: int, seed: int) -> Path:
    """The demo corpus of `n_articles` for `seed`, written once under the benchmark's shared folder."""
    from biomedica.testing.corpus.corpus import DemoCorpusConfig, write_demo_corpus

    folder = work.parent / "shared" / f"corpus-{n_articles}-{seed}"
    if not folder.is_dir():
        write_demo_corpus(folder, DemoCorpusConfig(n_articles=n_articles, seed=seed, image_size=128))
    return folder


_CLEAN: dict[Path, tuple[ArchiveContent, float, int]] = {}


def clean_build(src: Path, sizes: Sizes, apu: int) -> tuple[ArchiveContent, float, int]:
    """The reference: a clean build of `src` (content, wall seconds, units), made once per corpus and unit size."""
    out = src.parent / f"clean-{src.name}-{apu}"
    if out not in _CLEAN:
        rc, cli, seconds = run_cli(ingest_args(src, out, sizes, apu), src.parent / "logs", out.name)
        if rc != 0:
            raise RuntimeError(f"the clean build {out} failed (exit {rc}): {cli.last_error()}")
        _CLEAN[out] = read_archive(out), seconds, len(list((out / "_units").glob("*.json")))
    return _CLEAN[out]


def _units_done(out: Path) -> int:
    return len(list((out / "_units").glob("*.json"))) if (out / "_units").is_dir() else 0


# ---------------------------------------------------------------- 1. kill -9 of the main process


def scenario_kill(work: Path, runs: int, seed: int, sizes: Sizes) -> ScenarioResult:
    scenario = ScenarioResult("kill")
    src = write_corpus(work, sizes.articles, seed)
    reference, clean_seconds, units_total = clean_build(src, sizes, sizes.articles_per_unit)
    for run in range(runs):
        rng = random.Random(f"{seed}:kill:{run}")
        out = work / f"run{run:03d}"
        result = RunResult(run, False, False, 0, [])
        args = ingest_args(src, out, sizes, sizes.articles_per_unit)
        # a random moment of the run: after a random number of completed units, plus part of a unit's time
        after_units = rng.randrange(0, max(1, int(units_total * 0.7)))  # units finish in bursts: leave room
        extra = rng.uniform(0.0, 1.0) * clean_seconds / max(1, units_total)
        cli = Cli.start(args, work / "logs", f"kill{run:03d}")
        _wait_for(lambda: _units_done(out) >= after_units or cli.proc.poll() is not None)  # noqa: B023
        time.sleep(extra)
        tree = process_tree(cli.proc.pid)
        units_done, kill_after = _units_done(out), time.monotonic() - cli.started
        if cli.proc.poll() is None:
            os.kill(cli.proc.pid, signal.SIGKILL)  # the main process only, not its group
        rc = cli.proc.wait()
        killed_at = time.monotonic()
        while alive(tree) and time.monotonic() - killed_at < ORPHAN_GRACE:
            time.sleep(0.1)
        survivors = alive(tree)
        result.details.update({
            "kill_after_units": after_units, "kill_after_s": round(kill_after, 2), "killed_rc": rc, "processes_at_kill": len(tree),
            "units_done_at_kill": units_done, "units_total": units_total, "orphans_after_10s": len(survivors),
        })
        if rc != -signal.SIGKILL:
            result.reasons.append("the run ended before the kill (kill moment too late)")
        if survivors:
            result.reasons.append(f"processes of the killed run alive {ORPHAN_GRACE:.0f} s after the kill")
            result.details["units_done_after_10s"] = _units_done(out)
            kill_all(tree)
        rerun_rc, rerun, _ = run_cli(args, work / "logs", f"rerun{run:03d}")
        if rerun_rc != 0:
            result.reasons.append(f"rerun exit {rerun_rc}")
            result.details["rerun_error"] = rerun.last_error()
        check_archive(reference, out, result)
        if left := leftovers(out):
            result.reasons.append("temporary or lock files left after the rerun")
            result.details["leftovers"] = left[:10]
        _finish_run(scenario, result, out)
    return scenario


# ---------------------------------------------------------------- 2. two concurrent ingests


def scenario_concurrent(work: Path, runs: int, seed: int, sizes: Sizes) -> ScenarioResult:
    scenario = ScenarioResult("concurrent")
    src = write_corpus(work, sizes.articles, seed)
    reference, _, units_total = clean_build(src, sizes, sizes.articles_per_unit)
    for run in range(runs):
        rng = random.Random(f"{seed}:concurrent:{run}")
        out = work / f"run{run:03d}"
        result = RunResult(run, False, False, 0, [])
        args = ingest_args(src, out, sizes, sizes.articles_per_unit)
        if run == 0:  # both started at once: they race for the lock
            progress, overlapped = 0, True
            first = Cli.start(args, work / "logs", f"conc{run:03d}a")
            second = Cli.start(args, work / "logs", f"conc{run:03d}b")
        else:  # the second reaches the lock after a random number of the first's units
            progress = rng.randrange(0, max(1, units_total - 1))
            first, second, overlapped = _second_midway(args, work, run, out, progress)
        codes = [first.wait(), second.wait()]
        result.details.update({"second_after_units": progress, "exit_codes": codes, "overlapped": overlapped})
        if not overlapped:
            result.reasons.append("the first run ended before the second started (benchmark timing)")
        refused = [c for c, rc in zip((first, second), codes) if rc == 2]
        if sorted(codes) != [0, 2]:
            result.reasons.append(f"exit codes {codes[0]} and {codes[1]}, not 0 and 2")
            result.details["errors"] = [first.last_error(), second.last_error()]
        elif len(refused[0].error_lines()) != 1:
            result.reasons.append("the refused run printed more than one line")
            result.details["refusal"] = refused[0].error_lines()[:5]
        else:
            result.details["refusal"] = refused[0].error_lines()[0][:300]
        check_archive(reference, out, result)
        if left := leftovers(out):
            result.reasons.append("temporary or lock files left")
            result.details["leftovers"] = left[:10]
        _finish_run(scenario, result, out)
    return scenario


def _second_midway(args: list[str], work: Path, run: int, out: Path, units: int) -> tuple[Cli, Cli, bool]:
    """Start a run, then let a second one (imports done, waiting) go once the first completed `units` units."""
    go = work / f"go{run:03d}"
    second = Cli.start(args, work / "logs", f"conc{run:03d}b", go=go)
    _wait_for(lambda: ready(go) > 0 or second.proc.poll() is not None)
    first = Cli.start(args, work / "logs", f"conc{run:03d}a")

    _wait_for(lambda: ((out / LOCK_NAME).exists() and _units_done(out) >= units) or first.proc.poll() is not None)
    overlapped = first.proc.poll() is None
    go.touch()
    return first, second, overlapped


# ---------------------------------------------------------------- 3. pmc-cloud through a corrupting proxy


def corrupting_proxy(upstream: str, rate: float, seed: int):
    """The project's seeded proxy damaging (flip / truncate / cut) `rate` of object bodies."""
    from biomedica.testing.servers import corrupting_proxy as shared

    return shared(upstream, rate, seed=seed)


def proxy_counts(proxy) -> tuple[int, dict[str, int]]:
    """(requests forwarded, damaged bodies per fault)."""
    return len(proxy.log), dict(Counter(r.fault for r in proxy.log if getattr(r, "fault", None)))


def publish_corpus(s3, bucket: str, corpus: Path) -> None:
    """The demo corpus as a PMC Cloud layout bucket (one version per article) with an inventory."""
    from biomedica.testing.cloud_mirror import publish_inventory, publish_version

    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": "*", "Action": ["s3:GetObject", "s3:ListBucket"],
                       "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]}],
    }))
    for folder in sorted(p for p in corpus.iterdir() if p.is_dir()):
        xml = next(folder.glob("*.nxml")).read_bytes()
        media = {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.suffix != ".nxml"}
        publish_version(s3, bucket, folder.name, 1, xml, media)
    publish_inventory(s3, bucket, datetime(2026, 11, 20, 1, 0, tzinfo=timezone.utc))


def scenario_cloud_faults(work: Path, runs: int, seed: int, sizes: Sizes, rate: float = 0.05) -> ScenarioResult:
    from biomedica.testing.servers import LocalS3Server

    scenario = ScenarioResult("cloud-faults")
    corpus = write_corpus(work, sizes.cloud_articles, seed)
    bucket = "pmc-reliability"
    apu = sizes.cloud_articles_per_unit
    with LocalS3Server() as s3:
        publish_corpus(s3.admin_client(), bucket, corpus)

        def cloud(out: Path, endpoint: str) -> list[str]:
            return ingest_args(None, out, sizes, apu, "--source", "pmc-cloud", "--bucket", bucket,
                               "--endpoint-url", endpoint)

        rc, cli, _ = run_cli(cloud(work / "clean", s3.endpoint_url), work / "logs", "clean")
        if rc != 0:
            raise RuntimeError(f"the clean pmc-cloud build failed (exit {rc}): {cli.last_error()}")
        reference = read_archive(work / "clean")
        for run in range(runs):
            out = work / f"run{run:03d}"
            result = RunResult(run, False, False, 0, [])
            with corrupting_proxy(s3.endpoint_url, rate, seed=seed * 1_000_003 + run) as proxy:
                rc, cli, _ = run_cli(cloud(out, proxy.endpoint_url), work / "logs", f"cloud{run:03d}")
            requests, injected = proxy_counts(proxy)
            result.details.update({"requests": requests, "injected": injected, "rc": rc})
            if rc != 0:
                result.details["error"] = cli.last_error()
                kind = re.search(r"\b(\w+(?:Error|Exception))\b", result.details["error"])
                result.reasons.append(f"ingest exit {rc}" + (f" ({kind.group(1)})" if kind else ""))
            check_archive(reference, out, result)
            _finish_run(scenario, result, out)
    return scenario


# ---------------------------------------------------------------- 4. growth by added files


def scenario_growth(work: Path, runs: int, seed: int, sizes: Sizes) -> ScenarioResult:
    scenario = ScenarioResult("growth")
    corpus = write_corpus(work, sizes.growth_articles, seed)
    apu = sizes.growth_articles_per_unit
    reference, _, _ = clean_build(corpus, sizes, apu)
    articles = sorted(p.name for p in corpus.iterdir() if p.is_dir())
    for run in range(runs):
        rng = random.Random(f"{seed}:growth:{run}")
        first = set(rng.sample(articles, len(articles) // 2))
        src, out = work / f"input{run:03d}", work / f"run{run:03d}"
        result = RunResult(run, False, False, 0, [])
        for name in sorted(first):
            shutil.copytree(corpus / name, src / name)
        args = ingest_args(src, out, sizes, apu)
        rc, cli, _ = run_cli(args, work / "logs", f"half{run:03d}")
        if rc != 0:
            result.reasons.append(f"first build exit {rc}")
            result.details["error"] = cli.last_error()
        before = file_digests(out)
        old_units = {int(p.stem) for p in (out / "_units").glob("*.json")} if (out / "_units").is_dir() else set()
        old_keys = set(read_archive(out).samples) if old_units else set()
        for name in articles:
            if name not in first:
                shutil.copytree(corpus / name, src / name)
        rc, cli, _ = run_cli(args, work / "logs", f"grow{run:03d}")
        result.details.update({"first_half": len(first), "old_units": len(old_units), "rerun_rc": rc})
        if rc != 0:
            result.reasons.append(f"rerun exit {rc}")
            result.details["rerun_error"] = cli.last_error()
        check_archive(reference, out, result, same_units=False)
        after = file_digests(out)
        changed = sorted(f for f, digest in before.items() if after.get(f) != digest)
        if changed:
            result.reasons.append("files of the first build changed or removed")
            result.details["changed_files"] = changed[:10]
            result.lost = True
        try:
            grown = read_archive(out)
        except (OSError, ValueError):
            grown = ArchiveContent()
        last_old = max(old_units, default=-1)
        misplaced = sorted(k for k, s in grown.samples.items() if k not in old_keys and s.unit_id <= last_old)
        if misplaced:
            result.reasons.append("new samples not in units appended after the first build's")
            result.details["misplaced"] = misplaced[:10]
        _finish_run(scenario, result, out, src)
    return scenario


# ---------------------------------------------------------------- main


RUNNERS = {"kill": scenario_kill, "concurrent": scenario_concurrent, "cloud-faults": scenario_cloud_faults,
           "growth": scenario_growth}


def _finish_run(scenario: ScenarioResult, result: RunResult, *folders: Path) -> None:
    """Record a run (it survived when no check gave a reason), say it, and free its folders."""
    result.survived = not result.reasons
    scenario.runs.append(result)
    _progress(scenario, result)
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)


def _progress(scenario: ScenarioResult, result: RunResult) -> None:
    state = "survived" if result.survived else ("LOST" if result.lost else "failed")
    why = f": {'; '.join(dict.fromkeys(result.reasons))}" if result.reasons else ""
    print(f"  {scenario.name} run {result.run}: {state}{why}", file=sys.stderr, flush=True)


def run_scenarios(names: list[str], runs: int, seed: int, sizes: Sizes, work: Path) -> list[ScenarioResult]:
    results = []
    for name in names:
        print(f"{name}: {runs} runs", file=sys.stderr, flush=True)
        started = time.monotonic()
        folder = work / name
        folder.mkdir(parents=True, exist_ok=True)
        try:
            result = RUNNERS[name](folder, runs, seed, sizes)
        except Exception as exc:  # noqa: BLE001 - a scenario that cannot set up is reported, the others still run
            result = ScenarioResult(name, setup_error=f"{type(exc).__name__}: {exc}")
        result.seconds = time.monotonic() - started
        results.append(result)
        shutil.rmtree(folder, ignore_errors=True)
    return results


def print_table(results: list[ScenarioResult], runs: int, seed: int) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"reliability ({runs} runs per scenario, seed {seed}, biomedica from "
                        f"{Path(biomedica.__file__).resolve().parents[1]})", show_lines=True)
    for col in ("scenario", "tried", "survived", "lost", "samples lost", "failure reasons (runs)", "s"):
        table.add_column(col, justify="left" if col in ("scenario", "failure reasons (runs)") else "right",
                         overflow="fold")
    for r in results:
        reasons = r.setup_error or "\n".join(f"{why} ({n})" for why, n in r.reasons().most_common())
        table.add_row(r.name, str(r.tried), str(r.survived), str(r.lost), str(sum(x.samples_lost for x in r.runs)),
                      reasons or "-", f"{r.seconds:.0f}")
    Console(width=160).print(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 runs per scenario and smaller corpora")
    parser.add_argument("--runs", type=int, help="runs per scenario (default 10; 2 with --quick)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scenario", action="append", choices=SCENARIOS,
                        help="run only this scenario (repeatable; default all)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--workdir", type=Path, help="folder for corpora and archives (default a temporary one)")
    args = parser.parse_args(argv)
    if sys.platform != "linux":
        parser.error("the reliability benchmark reads /proc: run it on Linux")
    runs = args.runs if args.runs is not None else (2 if args.quick else 10)
    if runs < 1:
        parser.error("--runs must be at least 1")
    sizes = QUICK if args.quick else Sizes()
    names = list(dict.fromkeys(args.scenario or SCENARIOS))
    with tempfile.TemporaryDirectory(prefix="biomedica-reliability-", dir=args.workdir) as tmp:
        results = run_scenarios(names, runs, args.seed, sizes, Path(tmp))
    print_table(results, runs, args.seed)
    if args.json:
        args.json.write_text(json.dumps({"runs": runs, "seed": args.seed, "quick": args.quick,
                                         "scenarios": [r.to_dict() for r in results]}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
