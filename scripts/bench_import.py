"""Benchmark `import_predictions` against a plain COPY of the same file, in a scratch PostgreSQL database.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/portal python scripts/bench_import.py --rows 2200000

Creates a fresh database (default `portal_bench_<pid>`, on the server DATABASE_URL names), migrates it,
generates a synthetic TxGNN score CSV of N rows (about N/300 drugs, 300 diseases each), then times
  1. a fresh import, 2. a re-import of the same file (must change nothing),
  3. `COPY` of the same file into an unindexed table: the physical limit.
The scratch database is dropped at the end, also after Ctrl-C or SIGTERM; real data is never touched, and
the name is per run, so that two benchmarks at once (or an existing database) are never dropped by another.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import signal
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
DISEASES_PER_DRUG = 300
DISEASE_POOL = 17_080  # diseases in TxGNN's knowledge graph
HEADER = "drugbank_id,drug_name,potential_indication,txgnn_score,rank,source\n"
SYLLABLES = [consonant + vowel for consonant in "bcdflmnprstvz" for vowel in "aeio"]
SUFFIXES = ["mab", "nib", "pril", "sartan", "statin", "olol", "azole", "cillin", "mycin", "vir", "parin", "dronate"]
ORGANS = ["hepatic", "renal", "pulmonary", "cardiac", "cerebral", "cutaneous", "gastric", "ocular", "neural", "bone"]
KINDS = ["carcinoma", "fibrosis", "syndrome", "disease", "insufficiency", "dystrophy", "lymphoma", "infection"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=2_200_000)
    parser.add_argument(
        "--database",
        default=f"portal_bench_{os.getpid()}",
        help="Scratch database, created and dropped; must not exist yet (default: portal_bench_<pid>).",
    )
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL", "")
    if urlsplit(url).scheme not in {"postgres", "postgresql", "pgsql"}:
        sys.exit(NEEDS_POSTGRES.format(found=f"DATABASE_URL is {url!r}" if url else "DATABASE_URL is not set"))
    if args.rows < DISEASES_PER_DRUG:
        sys.exit(f"--rows must be at least {DISEASES_PER_DRUG}")
    scratch = _scratch_url(url, args.database)
    # SIGTERM (kill, a CI timeout) unwinds like Ctrl-C, so that the finally below drops the scratch database.
    signal.signal(signal.SIGTERM, _interrupt)
    created = False
    try:
        _create_database(url, args.database)
        created = True
        with tempfile.TemporaryDirectory(prefix="bench_import_") as tmp:
            path = Path(tmp) / f"bench-{args.rows}.csv"
            started = time.perf_counter()
            _write_csv(path, args.rows, random.Random(args.seed))
            size = path.stat().st_size / 1e6
            print(f"generated {args.rows:,} rows ({size:.0f} MB) in {time.perf_counter() - started:.1f} s")
            _run(scratch, path, args.rows)
    except KeyboardInterrupt:
        sys.exit("interrupted")
    finally:
        if created:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean-up short
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            _close_django_connections()
            _drop_database(url, args.database)
            print(f"dropped the scratch database {args.database}", file=sys.stderr)


NEEDS_POSTGRES = """bench_import needs PostgreSQL (SQLite has no COPY), and {found}.
Point DATABASE_URL at any database of a PostgreSQL server; a scratch database is created beside it and dropped:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres make bench-import N=2200000

or, without make:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python scripts/bench_import.py --rows 2200000

(pg_isready -h 127.0.0.1 -p 5432 says whether a server answers there.)"""


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _close_django_connections() -> None:
    """Close the connection the imports used, if Django was set up, so that the database can be dropped."""
    if "django.db" in sys.modules:
        from django.db import connections

        connections.close_all()


def _scratch_url(url: str, database: str) -> str:
    parts = urlsplit(url)
    if parts.path.lstrip("/") == database:
        sys.exit(f"--database {database} is the database DATABASE_URL names; choose a scratch name.")
    return urlunsplit(parts._replace(path=f"/{database}"))


def _admin(url: str) -> psycopg.Connection:
    return psycopg.connect(_scratch_url(url, "postgres") if not url.endswith("/postgres") else url, autocommit=True)


def _create_database(url: str, database: str) -> None:
    """Create the scratch database; refuse a name that exists, which may be another run's or real data."""
    with _admin(url) as conn:
        try:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
        except psycopg.errors.DuplicateDatabase:
            sys.exit(f"database {database} already exists: choose another --database (it is created and dropped)")


def _drop_database(url: str, database: str) -> None:
    """Drop the scratch database this run created; FORCE ends a connection an interrupted import left."""
    with _admin(url) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))


def _drug_names(count: int, rng: random.Random) -> list[str]:
    names: set[str] = set()
    while len(names) < count:
        stem = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3)))
        names.add((stem + rng.choice(SUFFIXES)).capitalize())
    return sorted(names)


def _disease_names(rng: random.Random) -> list[str]:
    names: set[str] = set()
    while len(names) < DISEASE_POOL:
        words = [rng.choice(ORGANS), rng.choice(KINDS)]
        eponym = "".join(rng.choice(SYLLABLES) for _ in range(2)).capitalize()
        names.add(f"{eponym} {' '.join(words)} type {rng.randint(1, 60)}")
    return sorted(names)


def _write_csv(path: Path, rows: int, rng: random.Random) -> None:
    """Shape (a): pairs in random order, scores falling with the global rank."""
    drugs = _drug_names(-(-rows // DISEASES_PER_DRUG), rng)
    diseases = _disease_names(rng)
    pairs = list(range(rows))
    rng.shuffle(pairs)
    step = 7919  # prime, so each drug's 300 diseases are distinct
    with path.open("w", encoding="utf-8", newline="") as fh:
        fh.write(HEADER)
        buffer = io.StringIO()
        for rank, pair in enumerate(pairs, start=1):
            drug, slot = divmod(pair, DISEASES_PER_DRUG)
            disease = diseases[(drug * 131 + slot * step) % DISEASE_POOL]
            score = 0.9999 - 0.9998 * rank / rows
            buffer.write(f"DB{drug + 1:05d},{drugs[drug]},{disease},{score:.6f},{rank},DL\n")
            if rank % 100_000 == 0:
                fh.write(buffer.getvalue())
                buffer = io.StringIO()
        fh.write(buffer.getvalue())


def _run(scratch_url: str, path: Path, rows: int) -> None:
    os.environ["DATABASE_URL"] = scratch_url
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    import django

    django.setup()
    from django.core.management import call_command

    from dossiers.models import Market

    call_command("migrate", verbosity=0)
    Market.objects.create(code="BENCH", name="Benchmark")
    fresh = _timed_import(path, "fresh import")
    again = _timed_import(path, "re-import")
    copy = _timed_copy(scratch_url, path)
    print()
    print(f"{'':14}{'rows':>12}{'seconds':>10}{'rows/s':>12}{'× COPY':>9}")
    for label, seconds in (("fresh import", fresh), ("re-import", again), ("plain COPY", copy)):
        print(f"{label:14}{rows:>12,}{seconds:>10.1f}{rows / seconds:>12,.0f}{seconds / copy:>9.1f}")


def _timed_import(path: Path, label: str) -> float:
    from django.core.management import call_command

    out = io.StringIO()
    started = time.perf_counter()
    call_command("import_predictions", str(path), market="BENCH", no_progress=True, verbosity=2, stdout=out)
    seconds = time.perf_counter() - started
    print(f"\n{label}:\n{out.getvalue().rstrip()}")
    return seconds


def _timed_copy(url: str, path: Path) -> float:
    """COPY the raw file into an unindexed, logged table in one transaction: what the disk and server allow."""
    with psycopg.connect(url) as conn:
        conn.execute(
            "CREATE TABLE bench_copy (drugbank_id text, drug_name text, potential_indication text,"
            " txgnn_score double precision, rank integer, source text)"
        )
        conn.commit()
        started = time.perf_counter()
        copy_sql = "COPY bench_copy FROM STDIN WITH (FORMAT csv, HEADER true)"
        with conn.cursor() as cur, cur.copy(copy_sql) as copy, path.open("rb") as fh:
            while chunk := fh.read(1 << 20):
                copy.write(chunk)
        conn.commit()
        seconds = time.perf_counter() - started
    print(f"\nplain COPY into an unindexed table: {seconds:.1f} s")
    return seconds


if __name__ == "__main__":
    main()
