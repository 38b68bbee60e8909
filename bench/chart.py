#!/usr/bin/env python3
"""chart.py — the patient chart benchmark (issue 5): summary and first timeline page latency.

A node with PATIENTS demo patients (`sanad demo`), then through the HTTP API one patient with 100 visits of
3 entries each (300 entries: vitals, consultation, prescription) plus problems, allergies and immunizations.
Then, on one keep-alive connection, REQUESTS alternating calls of GET /api/v1/patients/{id}/summary and
GET /api/v1/patients/{id}/timeline (first page), and in the same run GET /api/v1/patients/{id} (the
baseline: one audited read of one record). Prints p50/p95/p99 per call (medians over RUNS rounds) and the
ratios to the baseline. The target is p95 <= 5 ms each. Never decides pass or fail.

Usage: bench/chart.py [--patients 100000] [--runs 3] [--requests 500] [--sanad ./sanad]
"""
import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from clinic_day import Client, PASSWORD, pct  # noqa: E402


def run(sanad, patients, requests, seed):
    work = tempfile.mkdtemp(prefix="sanad-chart.")
    try:
        data = os.path.join(work, "node")
        with open(os.path.join(work, "pw"), "w") as f:
            f.write(PASSWORD + "\n")
        subprocess.run([sanad, "init", "--data", data, "--admin", "admin", "--admin-password-file",
                        os.path.join(work, "pw")], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        t0 = time.perf_counter()
        subprocess.run([sanad, "demo", "--data", data, "--patients", str(patients), "--seed", str(seed)], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        made = time.perf_counter() - t0
        # start_node inits again: serve the node made above instead
        log = open(os.path.join(work, "server.log"), "w")
        proc = subprocess.Popen([sanad, "serve", "--data", data, "--listen", "127.0.0.1:0"], stdout=log, stderr=log)
        port = None
        for _ in range(400):
            with open(os.path.join(work, "server.log")) as f:
                text = f.read()
            if "listening on 127.0.0.1:" in text:
                port = int(text.split("listening on 127.0.0.1:")[1].split()[0])
                break
            time.sleep(0.05)
        if port is None:
            proc.terminate()
            sys.exit("chart bench: the server did not start")
        try:
            c = Client(port)
            st, body, _ = c.call("POST", "/api/v1/session", {"username": "admin", "password": PASSWORD})
            c.token = body["token"]
            st, body, _ = c.call("POST", "/api/v1/patients", {"given_name": "Chart", "family_name": "Bench",
                                                              "sex": "female", "birth_date": "1985-03-02"})
            pid = body["id"]
            for k in range(100):
                st, body, _ = c.call("POST", "/api/v1/patients/%s/encounters" % pid,
                                     {"type": "consultation", "started_at": "2026-%02d-%02dT09:00Z" % (1 + k % 10, 1 + k % 28)})
                eid = body["id"]
                for entry in ({"form": "vitals", "values": {"temp_c": 37.0, "systolic_bp": 120 + k % 30, "diastolic_bp": 80,
                                                            "weight_kg": 60.5, "height_cm": 162}},
                              {"form": "consultation", "values": {"complaints": ["headache"], "history": "Follow-up visit %d" % k,
                                                                  "diagnoses": [{"diagnosis": "I10", "certainty": "confirmed",
                                                                                 "new_or_follow_up": "follow_up"}]}},
                              {"form": "prescription", "values": {"allergies_checked": True, "items": [{
                                  "medication": "amlodipine_5mg_tab", "dose": 1, "dose_unit": "tablet", "route": "oral",
                                  "frequency": "once_daily", "duration_days": 30}]}}):
                    st, body, _ = c.call("POST", "/api/v1/encounters/%s/entries" % eid, entry)
                    if st != 201:
                        sys.exit("chart bench: entry refused: %s" % body)
            c.call("POST", "/api/v1/patients/%s/problems" % pid, {"code": "I10", "onset": "2020"})
            c.call("POST", "/api/v1/patients/%s/allergies" % pid, {"substance": "Sulfa", "verification": "reported"})
            c.call("POST", "/api/v1/patients/%s/immunizations" % pid, {"vaccine": "td", "dose": 1, "given_on": "2024-05-01"})
            summary, timeline, base = [], [], []
            for i in range(requests + 20):
                st1, b1, ms1 = c.call("GET", "/api/v1/patients/%s/summary" % pid)
                st2, b2, ms2 = c.call("GET", "/api/v1/patients/%s/timeline" % pid)
                st3, b3, ms3 = c.call("GET", "/api/v1/patients/%s" % pid)
                if st1 != 200 or st2 != 200 or st3 != 200:
                    sys.exit("chart bench: %d %d %d %s" % (st1, st2, st3, (b1, b2)))
                if i >= 20:     # warm-up
                    summary.append(ms1)
                    timeline.append(ms2)
                    base.append(ms3)
            assert len(b2["items"]) == 20, b2
            return made, summary, timeline, base
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=int(os.environ.get("BENCH_PATIENTS", 100000)))
    ap.add_argument("--runs", type=int, default=int(os.environ.get("REPEAT", 3)))
    ap.add_argument("--requests", type=int, default=500)
    ap.add_argument("--sanad", default=os.environ.get("SANAD_BIN", os.path.join(os.path.dirname(__file__), "..", "sanad")))
    a = ap.parse_args()
    rows = []
    for r in range(a.runs):
        made, s, t, b = run(a.sanad, a.patients, a.requests, 42 + r)
        row = [pct(s, 50), pct(s, 95), pct(s, 99), pct(t, 50), pct(t, 95), pct(t, 99), pct(b, 50), pct(b, 95)]
        rows.append(row)
        print("run %d (%d patients made in %.1f s): summary p50 %.2f p95 %.2f p99 %.2f ms; timeline p50 %.2f p95 %.2f "
              "p99 %.2f ms; GET patient p50 %.2f p95 %.2f ms" % (r + 1, a.patients, made, *row))
    med = [statistics.median(x[i] for x in rows) for i in range(8)]
    print("chart (one patient with 300 entries among %d patients), medians of %d runs of %d requests each:"
          % (a.patients + 1, a.runs, a.requests))
    print("  summary        p50 %.2f ms, p95 %.2f ms (target <= 5 ms), p99 %.2f ms" % (med[0], med[1], med[2]))
    print("  timeline page  p50 %.2f ms, p95 %.2f ms (target <= 5 ms), p99 %.2f ms" % (med[3], med[4], med[5]))
    print("  baseline GET /api/v1/patients/{id}: p50 %.2f ms, p95 %.2f ms; summary p95 / baseline %.1fx, timeline %.1fx"
          % (med[6], med[7], med[1] / med[7], med[4] / med[7]))


if __name__ == "__main__":
    main()
