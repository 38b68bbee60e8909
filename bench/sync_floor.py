#!/usr/bin/env python3
"""bench/sync_floor.py — the floor for bench/sync.sh: a plain sqlite3 bulk insert of the rows a sync
stores, timed with nothing else in the way (no network, no JSON merge, no change log).

Usage: sync_floor.py BASE_JSONL ALL_JSONL TERMS_TSV OUT_DIR [--repeat N] [--inc 100]

  BASE_JSONL  `sanad export patients --format jsonl` of the hub before the incremental runs: the rows of
              the initial sync
  ALL_JSONL   the same export after them: the first --inc patients in it that are not in BASE_JSONL are
              the rows of the incremental floor
  TERMS_TSV   `SELECT term, patient_id FROM patient_terms` of the hub (tab-separated): the secondary
              index rows Sanad writes, inserted as they are so that the floor writes as many index
              entries, with the same keys, as Sanad does
  OUT_DIR     where the floor databases are made (one fresh file per run, removed afterwards)

Each run opens a fresh database with Sanad's own settings (WAL, synchronous=FULL), creates
  docs(id TEXT PRIMARY KEY, doc TEXT)  and  terms(term TEXT, id TEXT, PRIMARY KEY (term, id)) WITHOUT ROWID
and inserts every base row and its terms in ONE transaction (timed: connect to commit and close), then
the incremental rows and their terms in a second transaction (timed apart). Rows are read and split
before the clock starts: the floor is the cost of storing them, not of reading a file.
Prints one line of JSON: {"rows", "terms", "inc_rows", "inc_terms", "runs": [..], "inc_runs": [..],
"cpu_runs": [..], "median_s", "inc_median_s", "cpu_median_s", "doc_bytes"} (seconds; cpu = this
process's user + system time over the bulk insert, less sensitive than wall time to other load).
"""
import argparse
import json
import os
import sqlite3
import statistics
import sys
import time


def read_jsonl(path):
    """[(id, line)] of a JSON-lines export, in file order."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if line:
                rows.append((json.loads(line)["id"], line))
    return rows


def read_terms(path):
    """{patient id: [(term, id), ...]} from a tab-separated term, patient_id dump."""
    by_id = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            term, pid = line.rsplit("\t", 1)
            by_id.setdefault(pid, []).append((term, pid))
    return by_id


def open_db(path):
    """A fresh database with the settings Sanad opens its own with (src/store/db.c)."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA cache_size=-8192")
    conn.execute("CREATE TABLE docs (id TEXT PRIMARY KEY, doc TEXT NOT NULL)")
    conn.execute("CREATE TABLE terms (term TEXT NOT NULL, id TEXT NOT NULL, PRIMARY KEY (term, id)) WITHOUT ROWID")
    return conn


def insert(conn, docs, terms):
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO docs (id, doc) VALUES (?, ?)", docs)
    conn.executemany("INSERT INTO terms (term, id) VALUES (?, ?)", terms)
    conn.execute("COMMIT")


def main():
    ap = argparse.ArgumentParser(description="plain sqlite3 bulk-insert floor for bench/sync.sh")
    ap.add_argument("base_jsonl")
    ap.add_argument("all_jsonl")
    ap.add_argument("terms_tsv")
    ap.add_argument("out_dir")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--inc", type=int, default=100)
    a = ap.parse_args()

    base = read_jsonl(a.base_jsonl)
    base_ids = {i for i, _ in base}
    inc = [r for r in read_jsonl(a.all_jsonl) if r[0] not in base_ids][: a.inc]
    terms = read_terms(a.terms_tsv)
    base_terms = [t for i, _ in base for t in terms.get(i, [])]
    inc_terms = [t for i, _ in inc for t in terms.get(i, [])]
    if not base:
        sys.exit("sync_floor: no rows in %s" % a.base_jsonl)

    path = os.path.join(a.out_dir, "floor.db")
    runs, inc_runs, cpu = [], [], []
    for _ in range(a.repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        conn = open_db(path)
        insert(conn, base, base_terms)
        conn.close()
        runs.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        if inc:
            conn = sqlite3.connect(path, isolation_level=None)
            conn.execute("PRAGMA synchronous=FULL")
            t0 = time.perf_counter()
            insert(conn, inc, inc_terms)
            inc_runs.append(time.perf_counter() - t0)
            conn.close()
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    print(json.dumps({
        "rows": len(base), "terms": len(base_terms), "inc_rows": len(inc), "inc_terms": len(inc_terms),
        "doc_bytes": sum(len(d.encode("utf-8")) for _, d in base),
        "runs": runs, "inc_runs": inc_runs, "cpu_runs": cpu,
        "median_s": statistics.median(runs), "cpu_median_s": statistics.median(cpu),
        "inc_median_s": statistics.median(inc_runs) if inc_runs else None,
    }))


if __name__ == "__main__":
    main()
