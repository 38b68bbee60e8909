#!/usr/bin/env python3
"""registry_queries.py — the query side of bench/registry.sh: derive mixed registry queries from a sample
of the database, run them through the HTTP API and as a naive LIKE scan, and summarise the timings.

Subcommands (all output is deterministic for the same sample and seed, except the timings):
  generate SAMPLE.json --seed S --queries N --matches M --out-queries Q.jsonl --out-drafts D.jsonl
      SAMPLE.json is `sqlite3 -json` output of patients rows (see registry.sh); every query keeps the id
      of the patient it came from.
  run --port P --token-file F --pid PID --db DB --queries Q.jsonl --drafts D.jsonl --out-dir DIR [--no-like]
      Runs, in this order: one unmeasured warm-up request per kind of query (DIR/warmup.txt); every
      search query through GET /api/v1/patients?q=..&limit=5 on one keep-alive
      connection, each followed by the same query as a naive LIKE scan of the same database file
      (read-only, in this process, so both see the same machine at the same moment); then every draft
      through POST /api/v1/patients/match. Writes DIR/search.txt, DIR/like.txt, DIR/match.txt (one line a
      request: category subcategory latency_ms found same_name) and DIR/server.txt (server CPU time, RSS).
  report --out-dir DIR
      Prints the latency percentiles and found@5 per category, and writes DIR/summary.txt (key value
      lines for the summary table of registry.sh).
The tool never decides pass or fail; registry.sh prints the figures next to their targets.
"""
import argparse
import http.client
import json
import math
import os
import random
import sqlite3
import sys
import time
import urllib.parse

# query mix of the issue: ~40 % Latin names, 15 % original script, 15 % misspellings,
# 15 % identifiers, 15 % phones
MIX = [("name", 40), ("script", 15), ("misspelt", 15), ("identifier", 15), ("phone", 15)]
CATEGORIES = ["name", "script", "misspelt", "identifier", "phone"]
VOWEL_SWAPS = {"o": "u", "u": "o", "e": "i", "i": "e", "O": "U", "U": "O", "E": "I", "I": "E"}


def die(msg):
    print("registry_queries: " + msg, file=sys.stderr)
    sys.exit(1)


# ---- generate ----

def misspell(word, rng):
    """One typing or transcription slip in word: drop, double or swap a letter, or o/u e/i."""
    if len(word) < 4:
        return word + word[-1]
    kinds = ["drop", "double", "swap", "vowel"]
    vowels = [i for i in range(1, len(word)) if word[i] in VOWEL_SWAPS]
    for _ in range(8):
        kind = rng.choice(kinds)
        i = rng.randrange(1, len(word) - 1)     # keep the first letter: people rarely get it wrong
        if kind == "drop":
            out = word[:i] + word[i + 1:]
        elif kind == "double":
            out = word[:i] + word[i] + word[i:]
        elif kind == "swap":
            out = word[:i] + word[i + 1] + word[i] + word[i + 2:]
        else:
            if not vowels:
                continue
            j = rng.choice(vowels)
            out = word[:j] + VOWEL_SWAPS[word[j]] + word[j + 1:]
        if out != word and " " not in out.strip():
            return out
    return word[:-1]


def misspell_name(name, rng):
    """Misspell one word (of at least 4 letters if any) of a multi-word name."""
    words = name.split(" ")
    long_words = [i for i, w in enumerate(words) if len(w) >= 4] or list(range(len(words)))
    i = rng.choice(long_words)
    words[i] = misspell(words[i], rng)
    return " ".join(words)


def local_phone(stored):
    """A stored phone ("+963955123456") as typed locally: 0 + the last 9 digits, with spaces."""
    digits = "".join(c for c in stored if c.isdigit())[-9:]
    return "0%s %s %s" % (digits[:3], digits[3:6], digits[6:])


def birth_input(row):
    """The draft's birth fields from the stored (date, precision)."""
    bd, prec = row.get("birth_date"), row.get("birth_precision")
    if not bd:
        return {}
    if prec == "year":
        return {"birth_date": bd[:4]}
    if prec == "month":
        return {"birth_date": bd[:7]}
    if prec == "estimated":
        return {"birth_date": bd, "birth_precision": "estimated"}
    return {"birth_date": bd}


def make_query(cat, row, rng):
    """(query text, subcategory, same-name fields) for one sampled row, or None if the row cannot give it."""
    given, family = row["given_name"], row["family_name"]
    ids = json.loads(row["identifiers"] or "{}")
    phones = json.loads(row["phones"] or "[]")
    names = {"given_name": given, "family_name": family}
    if cat == "name":
        r = rng.random()
        if r < 0.55:
            return "%s %s" % (given, family), "full", names
        if r < 0.75:
            return given, "given", {"given_name": given}
        # a name being typed: the given name and the start of the family name, or only the start of
        # the given name
        n = rng.randint(3, 5)
        if rng.random() < 0.5 and len(family) > n:
            return "%s %s" % (given, family[:n]), "prefix", names
        return given[:n], "prefix_given", {"given_name_prefix": given[:n]}
    if cat == "script":
        if not row["name_original"]:
            return None
        return row["name_original"], "script", {"name_original": row["name_original"]}
    if cat == "misspelt":
        return misspell_name("%s %s" % (given, family), rng), "misspelt", names
    if cat == "identifier":
        if not ids:
            return None
        value = ids[rng.choice(sorted(ids))]
        r = rng.random()
        if r < 0.34:
            return value, "id_stored", None
        if r < 0.67:
            return value.replace("-", "").replace(" ", ""), "id_compact", None
        return value.lower(), "id_lower", None
    if cat == "phone":
        if not phones:
            return None
        if rng.random() < 0.5:
            return phones[0], "phone_stored", None
        return local_phone(phones[0]), "phone_local", None
    raise ValueError(cat)


def cmd_generate(a):
    with open(a.sample, encoding="utf-8") as f:
        text = f.read().strip()
    rows = json.loads(text) if text else []
    if len(rows) < 20:
        die("the sample has %d patients; need at least 20" % len(rows))
    rng = random.Random(a.seed)
    total = sum(w for _, w in MIX)
    slots = []
    for cat, weight in MIX:
        slots += [cat] * round(a.queries * weight / total)
    slots = slots[:a.queries]
    while len(slots) < a.queries:
        slots.append("name")
    rng.shuffle(slots)
    # each category walks the sample from its own start, so that no two queries of one category share a
    # source patient while the sample lasts
    cursor = {cat: (i * len(rows)) // len(CATEGORIES) for i, cat in enumerate(CATEGORIES)}
    queries = []
    for cat in slots:
        for _ in range(len(rows)):
            row = rows[cursor[cat] % len(rows)]
            cursor[cat] += 1
            got = make_query(cat, row, rng)
            if got:
                break
        else:
            die("no sampled patient can give a '%s' query" % cat)
        text, sub, same = got
        queries.append({"cat": cat, "sub": sub, "q": text, "id": row["id"], "same": same})
    drafts = []
    for i in range(a.matches):
        row = rows[(i * 7919 + 13) % len(rows)]
        d = {"given_name": row["given_name"], "family_name": row["family_name"], "sex": row["sex"]}
        d.update(birth_input(row))
        kind = "exact"
        if rng.random() < 0.25:
            which = rng.choice(["given_name", "family_name"])
            d[which] = misspell_name(d[which], rng)
            kind = "misspelt"
        phones = json.loads(row["phones"] or "[]")
        if phones and rng.random() < 0.3:
            d["phones"] = [local_phone(phones[0])]
            kind += "+phone"
        drafts.append({"cat": kind, "id": row["id"], "draft": d})
    with open(a.out_queries, "w", encoding="utf-8") as f:
        for q in queries:
            f.write(json.dumps(q, ensure_ascii=False) + "\n")
    with open(a.out_drafts, "w", encoding="utf-8") as f:
        for d in drafts:
            f.write(json.dumps(d, ensure_ascii=False) + "\n")
    counts = {}
    for q in queries:
        counts[q["sub"]] = counts.get(q["sub"], 0) + 1
    print("  %d queries (%s), %d duplicate drafts" % (len(queries),
          ", ".join("%s %d" % (k, counts[k]) for k in sorted(counts)), len(drafts)))


# ---- run ----

def same_name(items, same):
    """Does one of the returned patients carry the source's name (the fields in same, case-insensitive)?"""
    if not same:
        return False
    for it in items:
        ok = True
        for field, want in same.items():
            if field == "given_name_prefix":
                ok = (it.get("given_name") or "").lower().startswith(want.lower())
            else:
                ok = (it.get(field) or "").lower() == want.lower()
            if not ok:
                break
        if ok:
            return True
    return False


def proc_status(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])     # kB
    return 0


def proc_cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Api:
    """One keep-alive HTTP/1.1 connection to the node, signed in with a bearer token."""

    def __init__(self, port, token):
        self.port, self.token = port, token
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)

    def call(self, method, path, body=None):
        """(status, parsed JSON, seconds); the time covers sending the request and reading the whole reply."""
        headers = {"Authorization": "Bearer " + self.token}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        t0 = time.perf_counter()
        self.conn.request(method, path, body=data, headers=headers)
        resp = self.conn.getresponse()
        raw = resp.read()
        dt = time.perf_counter() - t0
        if resp.getheader("Connection", "").lower() == "close":
            self.conn.close()
            self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=600)
        return resp.status, json.loads(raw) if raw else None, dt


LIKE_SQL = ("SELECT id, given_name, family_name, name_original FROM patients"
            " WHERE given_name LIKE ?1 OR family_name LIKE ?1 OR name_original LIKE ?1"
            " OR identifiers LIKE ?1 OR phones LIKE ?1 LIMIT 5")


def cmd_run(a):
    try:
        run_all(a)
    except (OSError, http.client.HTTPException) as exc:
        die("the server stopped answering (%s: %s)" % (type(exc).__name__, exc))


def run_all(a):
    queries = [json.loads(l) for l in open(a.queries, encoding="utf-8")]
    drafts = [json.loads(l) for l in open(a.drafts, encoding="utf-8")]
    api = Api(a.port, open(a.token_file).read().strip())
    like = None
    if not a.no_like:
        like = sqlite3.connect("file:%s?mode=ro" % urllib.parse.quote(a.db), uri=True, check_same_thread=False)
    os.makedirs(a.out_dir, exist_ok=True)
    rss_peak = proc_status(a.pid, "VmRSS")

    # warm-up, not measured: the first query of each kind pays one-time costs of the worker thread
    # (statements prepared, an ICU transliterator opened per script), which are start-up costs, not search
    seen, slowest = set(), 0.0
    for q in queries:
        if q["sub"] in seen:
            continue
        seen.add(q["sub"])
        status, body, dt = api.call("GET", "/api/v1/patients?" + urllib.parse.urlencode({"q": q["q"], "limit": 5}))
        slowest = max(slowest, dt)
    for d in drafts[:3]:
        status, body, dt = api.call("POST", "/api/v1/patients/match", d["draft"])
        slowest = max(slowest, dt)
    with open(os.path.join(a.out_dir, "warmup.txt"), "w") as f:
        f.write("searches %d\nmatches %d\n" % (len(seen), min(3, len(drafts))))
    print("  warm-up: %d requests (one per kind of query), slowest %.1f ms" % (len(seen) + min(3, len(drafts)),
          slowest * 1000), file=sys.stderr)

    # search, each query followed by its LIKE twin
    cpu0 = proc_cpu_seconds(a.pid)
    like_s = 0.0
    # line-buffered, so that the figures of a run cut short still count
    fs = open(os.path.join(a.out_dir, "search.txt"), "w", buffering=1)
    fl = open(os.path.join(a.out_dir, "like.txt"), "w", buffering=1)
    t_start = time.perf_counter()
    for i, q in enumerate(queries):
        path = "/api/v1/patients?" + urllib.parse.urlencode({"q": q["q"], "limit": 5})
        status, body, dt = api.call("GET", path)
        if status != 200:
            die("search %r answered %d: %s" % (q["q"], status, json.dumps(body)[:300]))
        items = body["items"]
        found = any(it["id"] == q["id"] for it in items)
        fs.write("%s %s %.4f %d %d\n" % (q["cat"], q["sub"], dt * 1000, found, found or same_name(items, q["same"])))
        if like is not None:
            c0 = time.perf_counter()
            rows = like.execute(LIKE_SQL, ("%" + q["q"] + "%",)).fetchall()
            lt = time.perf_counter() - c0
            like_s += lt
            litems = [{"id": r[0], "given_name": r[1], "family_name": r[2], "name_original": r[3]} for r in rows]
            lfound = any(r[0] == q["id"] for r in rows)
            fl.write("%s %s %.4f %d %d\n" % (q["cat"], q["sub"], lt * 1000, lfound,
                                             lfound or same_name(litems, q["same"])))
        if i % 25 == 0:
            rss_peak = max(rss_peak, proc_status(a.pid, "VmRSS"))
            if i % 200 == 0:
                print("\r  %d / %d queries" % (i, len(queries)), end="", file=sys.stderr, flush=True)
    print("\r  %d / %d queries" % (len(queries), len(queries)), file=sys.stderr)
    search_wall = time.perf_counter() - t_start - like_s
    cpu1 = proc_cpu_seconds(a.pid)
    fs.close()
    fl.close()

    # duplicate checks
    fm = open(os.path.join(a.out_dir, "match.txt"), "w", buffering=1)
    for i, d in enumerate(drafts):
        status, body, dt = api.call("POST", "/api/v1/patients/match", d["draft"])
        if status != 200:
            die("match %r answered %d: %s" % (d["draft"], status, json.dumps(body)[:300]))
        ids = [it["patient"]["id"] for it in body["items"]]
        fm.write("%s %s %.4f %d %d\n" % (d["cat"], d["cat"], dt * 1000, d["id"] in ids[:5], d["id"] in ids))
        if i % 25 == 0:
            rss_peak = max(rss_peak, proc_status(a.pid, "VmRSS"))
    fm.close()
    cpu2 = proc_cpu_seconds(a.pid)
    rss_peak = max(rss_peak, proc_status(a.pid, "VmRSS"))
    with open(os.path.join(a.out_dir, "server.txt"), "w") as f:
        f.write("search_cpu_ms %.3f\n" % ((cpu1 - cpu0) * 1000 / len(queries)))
        f.write("match_cpu_ms %.3f\n" % ((cpu2 - cpu1) * 1000 / max(1, len(drafts))))
        f.write("search_wall_s %.3f\n" % search_wall)
        f.write("rss_sampled_peak_mb %.1f\n" % (rss_peak / 1024))
        f.write("hwm_mb %.1f\n" % (proc_status(a.pid, "VmHWM") / 1024))


# ---- report ----

def pct(values, p):
    """Nearest-rank percentile of a non-empty list."""
    v = sorted(values)
    return v[max(0, math.ceil(p / 100 * len(v)) - 1)]


def load(path):
    out = []
    if not os.path.exists(path):
        return out
    for line in open(path):
        cat, sub, ms, found, same = line.split()
        out.append((cat, sub, float(ms), int(found), int(same)))
    return out


def lat_line(rows):
    ms = [r[2] for r in rows]
    return "p50 %7.2f  p95 %7.2f  p99 %7.2f  max %8.2f ms" % (pct(ms, 50), pct(ms, 95), pct(ms, 99), max(ms))


def cmd_report(a):
    search = load(os.path.join(a.out_dir, "search.txt"))
    like = load(os.path.join(a.out_dir, "like.txt"))
    match = load(os.path.join(a.out_dir, "match.txt"))
    summary = {}
    if not search:
        die("no search results in " + a.out_dir)

    def table(title, groups, rows, found_label, same_label):
        print(title)
        print("  %-22s %5s  %-49s %9s %11s" % ("queries", "n", "latency (client side, ms)", found_label, same_label))
        for name, sel in groups:
            rs = [r for r in rows if sel(r)]
            if not rs:
                continue
            print("  %-22s %5d  %s %8.1f%% %10.1f%%" % (name, len(rs), lat_line(rs),
                  100 * sum(r[3] for r in rs) / len(rs), 100 * sum(r[4] for r in rs) / len(rs)))

    groups = [("all", lambda r: True)]
    for cat in CATEGORIES:
        groups.append((cat, lambda r, c=cat: r[0] == c))
        subs = sorted({r[1] for r in search if r[0] == cat})
        if len(subs) > 1:
            groups += [("  " + s, lambda r, s=s: r[1] == s) for s in subs]
    table("search through the API (GET /api/v1/patients?q=..&limit=5):", groups, search, "found@5", "same-name@5")
    if like:
        print()
        table("naive scan (SELECT .. WHERE any column LIKE '%q%' LIMIT 5, sqlite3 module, same file):",
              groups, like, "found@5", "same-name@5")
    print("  (found@5: the patient the query came from is among the first 5; same-name@5: it is, or a patient")
    print("   with the same name spelled the same way is: with a few hundred names, thousands share one)")
    if match:
        print()
        mgroups = [("all", lambda r: True)] + [(k, lambda r, k=k: r[0] == k) for k in sorted({r[0] for r in match})]
        table("duplicate check (POST /api/v1/patients/match):", mgroups, match, "found@5", "found@10")
        print("  (the patient the draft came from among the first 5 / all (at most 10) candidates)")

    ms = [r[2] for r in search]
    summary.update(search_p50=pct(ms, 50), search_p95=pct(ms, 95), search_p99=pct(ms, 99), search_max=max(ms),
                   search_found=100 * sum(r[3] for r in search) / len(search),
                   search_same=100 * sum(r[4] for r in search) / len(search))
    for cat in CATEGORIES:
        rs = [r for r in search if r[0] == cat]
        if rs:
            summary["search_p95_" + cat] = pct([r[2] for r in rs], 95)
            summary["search_found_" + cat] = 100 * sum(r[3] for r in rs) / len(rs)
    if like:
        lm = [r[2] for r in like]
        summary.update(like_p50=pct(lm, 50), like_p95=pct(lm, 95), like_p99=pct(lm, 99), like_max=max(lm),
                       like_found=100 * sum(r[3] for r in like) / len(like),
                       like_same=100 * sum(r[4] for r in like) / len(like))
    if match:
        mm = [r[2] for r in match]
        summary.update(match_p50=pct(mm, 50), match_p95=pct(mm, 95), match_p99=pct(mm, 99), match_max=max(mm),
                       match_found=100 * sum(r[4] for r in match) / len(match),
                       match_found5=100 * sum(r[3] for r in match) / len(match))
    with open(os.path.join(a.out_dir, "summary.txt"), "w") as f:
        for k in sorted(summary):
            f.write("%s %.3f\n" % (k, summary[k]))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("generate")
    g.add_argument("sample")
    g.add_argument("--seed", type=int, default=42)
    g.add_argument("--queries", type=int, default=1000)
    g.add_argument("--matches", type=int, default=300)
    g.add_argument("--out-queries", required=True)
    g.add_argument("--out-drafts", required=True)
    r = sub.add_parser("run")
    r.add_argument("--port", type=int, required=True)
    r.add_argument("--token-file", required=True)
    r.add_argument("--pid", type=int, required=True)
    r.add_argument("--db", required=True)
    r.add_argument("--queries", required=True)
    r.add_argument("--drafts", required=True)
    r.add_argument("--out-dir", required=True)
    r.add_argument("--no-like", action="store_true")
    s = sub.add_parser("report")
    s.add_argument("--out-dir", required=True)
    a = p.parse_args()
    {"generate": cmd_generate, "run": cmd_run, "report": cmd_report}[a.cmd](a)


if __name__ == "__main__":
    main()
