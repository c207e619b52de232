"""Benchmark evidence refresh: N candidates through real Celery workers against the local fake APIs.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/portal REDIS_URL=redis://127.0.0.1:6379/0 \\
        python scripts/bench_refresh.py --candidates 1000 --rate 50     # or --rate auto

Creates a scratch database (`portal_bench_refresh_<pid>_<time>` unless --database names one, on the
server DATABASE_URL names: two runs never share it) and migrates it; starts the fake APIs of
tests/fakeapi.py in a process of its own (each candidate: 2 trial pages, PubMed esearch + esummary; each
drug: RxNorm + openFDA label, so every source carries load); creates N candidates of N drugs; then
runs, with one Celery worker (prefork, --concurrency) on the Redis broker:
  1. baseline: --baseline candidates with the rate limits lifted (100000/s): what the workers, the
     database and the fake manage without a limiter, so that the limit is the bottleneck below;
  2. the benchmark: N candidates with every source limited to --rate requests per second. With
     `--rate auto` the limit is 50/s, or 80 % of the slowest source's baseline rate when the machine
     cannot do more: a limit above what the machine manages measures the machine, not the limiter.
For each source it prints requests, achieved rate as seen by the fake server, rate / limit (goal
>= 0.9; the limiter spaces slots 8 % wider than the limit, SPACING_MARGIN in dossiers/sources/ratelimit.py,
so about 0.925 is the ceiling) and limit violations: sliding one-second windows holding more than the
limit (goal 0). The scratch database and the rate-limit keys (`portal:ratelimit:<source>` and
`portal:ratelimit:<source>:sent` on REDIS_URL) are removed at the end; real data is never touched.
The broker queues and those keys live in REDIS_URL's database: run one benchmark per Redis database.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SOURCES = {
    "clinicaltrials": "/api/v2/studies",
    "pubmed": "/entrez/eutils",
    "openfda": "/drug/label.json",
    "rxnav": "/REST/",
}
UNLIMITED = "100000/s"
AUTO_RATE = 50
WORKER_LOG = Path(tempfile.gettempdir()) / "bench_refresh_worker.log"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--candidates", type=int, default=1000)
    parser.add_argument("--baseline", type=int, default=200, help="Candidates of the unlimited baseline run.")
    parser.add_argument("--rate", default="auto", help="Requests per second allowed per source, or auto.")
    parser.add_argument("--concurrency", type=int, default=8, help="Worker processes.")
    parser.add_argument(
        "--database",
        default=f"portal_bench_refresh_{os.getpid()}_{int(time.time())}",
        help="Scratch database, created and dropped (default: unique to this run).",
    )
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL", "")
    if urlsplit(url).scheme not in {"postgres", "postgresql", "pgsql"}:
        sys.exit("bench_refresh needs PostgreSQL: set DATABASE_URL=postgres://user@host:port/db")
    if not os.environ.get("REDIS_URL"):
        sys.exit("bench_refresh needs Redis for the broker and the shared rate limiter: set REDIS_URL")
    scratch = urlunsplit(urlsplit(url)._replace(path=f"/{args.database}"))
    _admin(url, f'DROP DATABASE IF EXISTS "{args.database}"')
    _admin(url, f'CREATE DATABASE "{args.database}"')
    os.environ["DATABASE_URL"] = scratch
    try:
        _bench(args, scratch)
    finally:
        _admin(url, f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')


def _chosen_rate(wanted: str, base: Phase) -> int:
    """The limit to benchmark: `wanted`, or for "auto" 50/s capped at 80 % of the slowest baseline source."""
    if wanted != "auto":
        if not wanted.isdigit() or int(wanted) < 1:
            sys.exit(f"--rate {wanted!r}: give a whole number of requests per second, or auto")
        return int(wanted)
    rates = [_rate(times) for times in base.arrivals.values() if len(times) > 1]
    capacity = min(rates) if rates else AUTO_RATE
    rate = max(1, min(AUTO_RATE, int(0.8 * capacity)))
    if rate < AUTO_RATE:
        print(f"auto: the baseline managed {capacity:.1f} req/s on its slowest source, so the limit is {rate}/s "
              f"(not {AUTO_RATE}/s: this machine is too busy or small for that)")  # fmt: skip
    return rate


def _rate(times: Sequence[float]) -> float:
    return (len(times) - 1) / (max(times) - min(times))


def _admin(url: str, statement: str) -> None:
    import psycopg

    with psycopg.connect(urlunsplit(urlsplit(url)._replace(path="/postgres")), autocommit=True) as conn:
        conn.execute(statement)


def _bench(args: argparse.Namespace, scratch: str) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    import django

    django.setup()
    from django.core.management import call_command

    from portal.celery import app

    started = time.perf_counter()
    call_command("migrate", verbosity=0)
    print(f"migrated the scratch database in {time.perf_counter() - started:.1f} s")
    app.conf.task_always_eager = False
    fake = FakeProcess()
    try:
        baseline_ids = _make_candidates(args.baseline, prefix="Base")
        bench_ids = _make_candidates(args.candidates, prefix="Bench")
        print(f"created {args.baseline + args.candidates} candidates of as many drugs")
        base = _phase(fake, baseline_ids, scratch, UNLIMITED, args.concurrency, "baseline (no limit)")
        rate = _chosen_rate(args.rate, base)
        main_run = _phase(fake, bench_ids, scratch, f"{rate}/s", args.concurrency, f"limit {rate}/s")
    finally:
        fake.stop()
    _report(base, None)
    ok = _report(main_run, rate)
    print("PASS" if ok else "FAIL: a source stayed under 0.9 of its limit, exceeded it, or a run failed")
    sys.exit(0 if ok else 1)


@dataclass
class Phase:
    """One timed refresh of a set of candidates: per-source arrival times and the runs' outcome."""

    name: str
    candidates: int
    seconds: float
    arrivals: dict[str, list[float]]
    statuses: dict[str, int]


class FakeProcess:
    """The fake APIs in their own process (own interpreter lock, raised priority where allowed), so that the
    arrival times it stamps are not delayed by this process's polling; arrivals come back at `stop()`.
    CLOCK_MONOTONIC is system-wide on Linux, so its stamps compare with this process's."""

    def __init__(self) -> None:
        import multiprocessing

        context = multiprocessing.get_context("fork")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_serve_fake, args=(child,), daemon=True)
        self._process.start()
        self.url: str = self._conn.recv()

    def arrivals(self) -> list[tuple[str, float]]:
        """(path, monotonic arrival time) of every request so far."""
        self._conn.send("arrivals")
        return self._conn.recv()

    def stop(self) -> None:
        self._conn.send("stop")
        self._process.join(timeout=10)


def _serve_fake(conn) -> None:  # type: ignore[no-untyped-def]
    with contextlib.suppress(OSError):  # not allowed here: stamps are a little less exact under load
        os.nice(-5)
    fake = _routed_fake()
    conn.send(fake.url)
    while True:
        message = conn.recv()
        if message == "arrivals":
            conn.send([(seen.path, seen.mono) for seen in fake.seen()])
        else:
            fake.stop()
            return


def _routed_fake():  # type: ignore[no-untyped-def]
    # type: ignore[no-untyped-def]
    from tests.fakeapi import APPROXIMATE, CTGOV, EUTILS, OPENFDA_LABEL, RXCUI, FakeApi, json_reply, raw_reply

    fake = FakeApi().start()
    fake.route(CTGOV, json_reply(_studies("NCT90000001", token="p2", total=2)))
    fake.route(CTGOV, json_reply(_studies("NCT90000002")), query={"pageToken": "p2"})
    ids = ["91000001", "91000002"]
    fake.route(
        f"{EUTILS}/esearch.fcgi",
        raw_reply(
            "<eSearchResult><Count>2</Count><RetMax>2</RetMax><RetStart>0</RetStart><IdList>"
            + "".join(f"<Id>{i}</Id>" for i in ids)
            + "</IdList></eSearchResult>",
            content_type="text/xml",
        ),
    )
    summary = {
        i: {"uid": i, "title": f"Paper {i}", "pubdate": "2025 Jan", "pubtype": ["Journal Article"], "authors": []}
        for i in ids
    }
    fake.route(f"{EUTILS}/esummary.fcgi", json_reply({"result": {"uids": ids, **summary}}))
    articles = "".join(
        f"<PubmedArticle><MedlineCitation><PMID>{i}</PMID><Article><ArticleTitle>Paper {i}</ArticleTitle>"
        f"<Abstract><AbstractText>Abstract {i}</AbstractText></Abstract></Article></MedlineCitation></PubmedArticle>"
        for i in ids
    )
    fake.route(
        f"{EUTILS}/efetch.fcgi", raw_reply(f"<PubmedArticleSet>{articles}</PubmedArticleSet>", content_type="text/xml")
    )
    label = {"set_id": "bench-label", "effective_time": "20250101", "boxed_warning": ["WARNING: bench"]}
    fake.route(OPENFDA_LABEL, json_reply({"meta": {"results": {"total": 1}}, "results": [label]}))
    fake.route(RXCUI, json_reply({"idGroup": {"name": "bench", "rxnormId": ["12345"]}}))
    fake.route(APPROXIMATE, json_reply({"approximateGroup": {"candidate": []}}))
    return fake


def _studies(nct_id: str, *, token: str | None = None, total: int | None = None) -> dict:
    study = {
        "protocolSection": {
            "identificationModule": {"nctId": nct_id, "briefTitle": f"Trial {nct_id}"},
            "statusModule": {"overallStatus": "COMPLETED", "lastUpdatePostDateStruct": {"date": "2025-01-01"}},
            "designModule": {"phases": ["PHASE2"], "enrollmentInfo": {"count": 40}},
        },
        "hasResults": False,
    }
    page: dict = {"studies": [study]}
    if token:
        page["nextPageToken"] = token
    if total is not None:
        page["totalCount"] = total
    return page


def _make_candidates(count: int, *, prefix: str) -> list[int]:
    from dossiers.models import Candidate, Dossier, Drug, Market

    market, _ = Market.objects.get_or_create(code="BM", defaults={"name": "Bench market"})
    drugs = Drug.objects.bulk_create([Drug(name=f"{prefix}drug {n:05d}") for n in range(count)])
    dossiers = Dossier.objects.bulk_create([Dossier(drug=d, market=market) for d in drugs])
    candidates = Candidate.objects.bulk_create(
        [Candidate(dossier=d, disease=f"{prefix} disease {n:05d}") for n, d in enumerate(dossiers)]
    )
    return [c.pk for c in candidates]


def _phase(
    fake: FakeProcess, candidate_ids: Sequence[int], scratch: str, rate: str, concurrency: int, name: str
) -> Phase:
    from dossiers.models import RefreshRun
    from dossiers.services import refresh
    from dossiers.sources import ratelimit

    for source in ratelimit.RATE_SETTINGS:
        ratelimit.reset(source)
    worker = _start_worker(fake.url, scratch, rate, concurrency)
    try:
        seen_before = len(fake.arrivals())
        started = time.monotonic()
        request = refresh.candidates_refresh_request(candidate_ids=candidate_ids)
        runs = RefreshRun.objects.filter(request_id=request.request_id)
        total = runs.count()
        while runs.filter(status__in=["pending", "running"]).exists():
            if worker.poll() is not None:
                sys.exit(f"the worker died; see {WORKER_LOG}")
            time.sleep(0.5)
        seconds = time.monotonic() - started
        statuses: dict[str, int] = {}
        for status in runs.values_list("status", flat=True):
            statuses[status] = statuses.get(status, 0) + 1
    finally:
        _stop_worker(worker)
        for source in ratelimit.RATE_SETTINGS:
            ratelimit.reset(source)
    arrivals: dict[str, list[float]] = {source: [] for source in SOURCES}
    for path, mono in fake.arrivals()[seen_before:]:
        for source, prefix in SOURCES.items():
            if path.startswith(prefix):
                arrivals[source].append(mono)
    print(f"{name}: {len(candidate_ids)} candidates, {total} runs in {seconds:.1f} s")
    return Phase(name=name, candidates=len(candidate_ids), seconds=seconds, arrivals=arrivals, statuses=statuses)


def _start_worker(fake_url: str, scratch: str, rate: str, concurrency: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "DATABASE_URL": scratch,
        "CLINICALTRIALS_BASE_URL": f"{fake_url}/api/v2",
        "NCBI_EUTILS_BASE_URL": f"{fake_url}/entrez/eutils",
        "OPENFDA_BASE_URL": fake_url,
        "RXNAV_BASE_URL": fake_url,
        "NCBI_API_KEY": "",
        "OPENFDA_API_KEY": "",
        "SOURCES_RATE_LIMIT_MAX_WAIT": "600",
        **{
            name: rate
            for name in ("CLINICALTRIALS_RATE_LIMIT", "NCBI_RATE_LIMIT", "OPENFDA_RATE_LIMIT", "RXNAV_RATE_LIMIT")
        },
    }
    log = open(WORKER_LOG, "wb")  # noqa: SIM115  (closed with the process)
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "portal", "worker", "--loglevel=WARNING", f"--concurrency={concurrency}",
         "-Q", "sources,celery", "--without-gossip", "--without-mingle", "--without-heartbeat",
         f"--hostname=bench-{os.getpid()}-{time.monotonic_ns()}@localhost"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    from portal.celery import app

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        replies = app.control.ping(timeout=0.5) or []
        if any(name.startswith("bench-") for reply in replies for name in reply):
            return worker
        if worker.poll() is not None:
            sys.exit(f"the worker exited; see {WORKER_LOG}")
    sys.exit("the worker did not answer a ping within 60 s")


def _stop_worker(worker: subprocess.Popen[bytes]) -> None:
    import signal

    if worker.poll() is None:
        os.killpg(worker.pid, signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(timeout=10)


def _violations(times: Sequence[float], limit: int, period: float = 1.0) -> tuple[int, int]:
    """(sliding windows [t, t + period) starting at a request that hold more than `limit`, the most in one)."""
    ordered, end, bad, most = sorted(times), 0, 0, 0
    for start, t in enumerate(ordered):
        while end < len(ordered) and ordered[end] < t + period:
            end += 1
        most = max(most, end - start)
        bad += end - start > limit
    return bad, most


def _report(phase: Phase, limit: int | None) -> bool:
    print(f"\n{phase.name}: {phase.candidates} candidates in {phase.seconds:.1f} s "
          f"= {phase.candidates / phase.seconds:.1f} candidates/s; runs {phase.statuses}")  # fmt: skip
    header = (
        f"{'source':<15}{'requests':>9}{'req/s':>9}{'limit':>7}{'rate/limit':>12}{'violations':>12}{'max in 1 s':>12}"
    )
    print(header)
    ok = set(phase.statuses) == {"success"}
    for source, times in phase.arrivals.items():
        if len(times) < 2:
            print(f"{source:<15}{len(times):>9}")
            continue
        rate = _rate(times)
        bad, most = _violations(times, limit or 10**9)
        if limit is None:
            print(f"{source:<15}{len(times):>9}{rate:>9.1f}{'none':>7}{'':>12}{'':>12}{most:>12}")
            continue
        fraction = rate / limit
        ok = ok and fraction >= 0.9 and bad == 0
        print(f"{source:<15}{len(times):>9}{rate:>9.1f}{limit:>7}{fraction:>12.3f}{bad:>12}{most:>12}")
    return ok


if __name__ == "__main__":
    main()
