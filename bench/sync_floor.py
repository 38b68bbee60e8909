#!/usr/bin/env python3
"""bench/sync_floor.py — the floor for bench/sync.sh: a plain sqlite3 bulk insert of the rows a sync
stores, timed with nothing else in the way (no network, no JSON batch, no merge, no change log).

Usage: sync_floor.py BASE_DB INC_DB OUT_DIR [--repeat N] [--jsonl PATH]

  BASE_DB  a copy of the hub's sanad.db before the incremental runs: its patients, patient_terms,
           encounters and entries rows are the rows of the initial sync
  INC_DB   a copy of the same hub after the first increment: the rows it holds that BASE_DB does not
           (100 patients with their search terms, 300 encounters, 600 entries) are the rows of the
           incremental floor
  OUT_DIR  where the floor database is made (one fresh file per run, removed afterwards)
  --jsonl  also write the base rows there as JSON lines (one object per row, all four tables), for the
           data volume figures (JSON bytes, zstd -3 bytes)

Each run opens a fresh database with Sanad's own settings (WAL, synchronous=FULL), creates the four tables
with the hub's own definitions and indexes (read from BASE_DB's sqlite_master: the same columns, keys and
secondary indexes, so the floor writes as many B-tree entries with the same keys as Sanad does), then
inserts every base row of the four tables in ONE transaction (timed: connect to commit and close), then
the incremental rows in a second transaction (timed apart). Rows are read before the clock starts: the
floor is the cost of storing them, not of reading them. Rows go in in the hub's rowid order (the order
they were written there, which is the order a sync receives them).
Prints one line of JSON: {"rows": {table: n}, "inc_rows": {table: n}, "runs": [..], "inc_runs": [..],
"cpu_runs": [..], "median_s", "inc_median_s", "cpu_median_s"} (seconds; cpu = this process's user +
system time over the bulk insert, less sensitive than wall time to other load).
"""
import argparse
import json
import os
import sqlite3
import statistics
import sys
import time

# the tables a sync fills, with the columns that identify a row
TABLES = [
    ("patients", ["id"]),
    ("patient_terms", ["term", "patient_id"]),
    ("encounters", ["id"]),
    ("entries", ["id"]),
]


def schema(conn):
    """[DDL] of the four tables and their explicit indexes, tables first."""
    names = [t for t, _ in TABLES]
    marks = ",".join("?" * len(names))
    tables = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name IN (%s)" % marks,
                          names).fetchall()
    indexes = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
                           " AND tbl_name IN (%s)" % marks, names).fetchall()
    return [r[0] for r in tables] + [r[0] for r in indexes]


def read_rows(conn, table):
    """(column names, [rows]) of a table in rowid order (key order for a WITHOUT ROWID table)."""
    cur = conn.execute("SELECT * FROM %s" % table)
    cols = [d[0] for d in cur.description]
    return cols, cur.fetchall()


def open_db(path, ddl):
    """A fresh database with the settings Sanad opens its own with (src/store/db.c)."""
    for suffix in ("", "-wal", "-shm", "-journal"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA cache_size=-65536")
    for sql in ddl:
        conn.execute(sql)
    return conn


def insert(conn, data):
    conn.execute("BEGIN")
    for table, (cols, rows) in data.items():
        if rows:
            conn.executemany("INSERT INTO %s (%s) VALUES (%s)" % (table, ",".join(cols), ",".join("?" * len(cols))),
                             rows)
    conn.execute("COMMIT")


def main():
    ap = argparse.ArgumentParser(description="plain sqlite3 bulk-insert floor for bench/sync.sh")
    ap.add_argument("base_db")
    ap.add_argument("inc_db")
    ap.add_argument("out_dir")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--jsonl")
    a = ap.parse_args()

    src = sqlite3.connect("file:%s?mode=ro" % a.base_db, uri=True)
    ddl = schema(src)
    base = {t: read_rows(src, t) for t, _ in TABLES}
    src.close()
    src = sqlite3.connect("file:%s?mode=ro" % a.inc_db, uri=True)
    inc = {}
    for t, key in TABLES:
        cols, rows = read_rows(src, t)
        at = [cols.index(k) for k in key]
        bcols, brows = base[t]
        bat = [bcols.index(k) for k in key]
        held = {tuple(r[i] for i in bat) for r in brows}
        inc[t] = (cols, [r for r in rows if tuple(r[i] for i in at) not in held])
    src.close()
    if not base["patients"][1]:
        sys.exit("sync_floor: no patients in %s" % a.base_db)
    if a.jsonl:
        with open(a.jsonl, "w", encoding="utf-8") as f:
            for t, (cols, rows) in base.items():
                for r in rows:
                    f.write(json.dumps(dict(zip(cols, r)), ensure_ascii=False, separators=(",", ":")) + "\n")

    path = os.path.join(a.out_dir, "floor.db")
    runs, inc_runs, cpu = [], [], []
    for _ in range(a.repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        conn = open_db(path, ddl)
        insert(conn, base)
        conn.close()
        runs.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("PRAGMA synchronous=FULL")
        t0 = time.perf_counter()
        insert(conn, inc)
        inc_runs.append(time.perf_counter() - t0)
        conn.close()
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    print(json.dumps({
        "rows": {t: len(r) for t, (_, r) in base.items()},
        "inc_rows": {t: len(r) for t, (_, r) in inc.items()},
        "runs": runs, "inc_runs": inc_runs, "cpu_runs": cpu,
        "median_s": statistics.median(runs), "cpu_median_s": statistics.median(cpu),
        "inc_median_s": statistics.median(inc_runs),
    }))


if __name__ == "__main__":
    main()
