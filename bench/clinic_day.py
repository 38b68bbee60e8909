#!/usr/bin/env python3
"""clinic_day.py — the forms benchmark (issue 4): a clinic day entered through the HTTP API.

For each of RUNS rounds: a new node in a temp data directory, served on a free loopback port; a
clinician registers PATIENTS patients, opens 3 encounters each (triage, consultation, follow-up) and
submits 4 form entries in each (triage, vitals, consultation with a coded diagnosis, prescription), one
keep-alive connection, one request at a time, as a clinic's tablets would. Measured: total time of the day,
latency of every entry submission (p50/p95/p99), and in the same run the latency of GET /healthz (the
baseline: the HTTP round trip with no work) so the ratio says what the forms engine and the write cost.
Prints medians over the rounds. Never decides pass or fail; the target is p95 <= 5 ms per entry.

Usage: bench/clinic_day.py [--patients 300] [--runs 3] [--sanad ./sanad]
"""
import argparse
import http.client
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

PASSWORD = "bench-password-0123"


def pct(values, p):
    values = sorted(values)
    if not values:
        return float("nan")
    k = (len(values) - 1) * p / 100.0
    lo, hi = int(k), min(int(k) + 1, len(values) - 1)
    return values[lo] + (values[hi] - values[lo]) * (k - lo)


class Client:
    def __init__(self, port):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.token = None

    def call(self, method, path, body=None):
        headers = {}
        if self.token:
            headers["Authorization"] = "Bearer " + self.token
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        t0 = time.perf_counter()
        self.conn.request(method, path, body=data, headers=headers)
        resp = self.conn.getresponse()
        raw = resp.read()
        ms = (time.perf_counter() - t0) * 1000.0
        return resp.status, (json.loads(raw) if raw else None), ms


def start_node(sanad, work):
    data = os.path.join(work, "node")
    pw = os.path.join(work, "pw")
    with open(pw, "w") as f:
        f.write(PASSWORD + "\n")
    subprocess.run([sanad, "init", "--data", data, "--admin", "admin", "--admin-password-file", pw],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = open(os.path.join(work, "server.log"), "w")
    proc = subprocess.Popen([sanad, "serve", "--data", data, "--listen", "127.0.0.1:0"], stdout=log, stderr=log)
    port = None
    for _ in range(200):
        with open(os.path.join(work, "server.log")) as f:
            m = re.search(r"listening on 127\.0\.0\.1:(\d+)", f.read())
        if m:
            port = int(m.group(1))
            break
        if proc.poll() is not None:
            sys.exit("clinic_day: the server exited while starting")
        time.sleep(0.05)
    if port is None:
        proc.terminate()
        sys.exit("clinic_day: no 'listening on' line from the server")
    return proc, port


def one_day(sanad, patients, seed):
    work = tempfile.mkdtemp(prefix="sanad-clinic-day.")
    proc, port = start_node(sanad, work)
    try:
        c = Client(port)
        st, body, _ = c.call("POST", "/api/v1/session", {"username": "admin", "password": PASSWORD})
        assert st == 201, (st, body)
        c.token = body["token"]
        st, body, _ = c.call("POST", "/api/v1/users", {"username": "clin", "role": "clinician",
                                                       "password": "clinician-password-0123"})
        assert st == 201, (st, body)
        st, body, _ = c.call("POST", "/api/v1/session", {"username": "clin", "password": "clinician-password-0123"})
        c.token = body["token"]
        rnd = random.Random(seed)
        dx = ["J06.9", "A09", "B86", "I10", "E11.9", "R50.9", "K29.7", "L08.9", "N39.0", "J18.9"]
        drugs = ["paracetamol_500mg_tab", "amoxicillin_500mg_cap", "metformin_500mg_tab", "amlodipine_5mg_tab",
                 "ors_sachet", "ferrous_folic_tab"]
        entry_ms, base_ms = [], []
        t0 = time.perf_counter()
        for i in range(patients):
            st, body, _ = c.call("POST", "/api/v1/patients", {
                "given_name": "Day%d" % i, "family_name": rnd.choice(["Hassan", "Ali", "Haddad", "Nour"]),
                "sex": rnd.choice(["female", "male"]), "birth_date": "%d-0%d-1%d" % (rnd.randint(1950, 2020),
                                                                                     rnd.randint(1, 9), rnd.randint(0, 9))})
            assert st == 201, (st, body)
            pid = body["id"]
            for etype in ("triage", "consultation", "follow_up"):
                st, body, _ = c.call("POST", "/api/v1/patients/%s/encounters" % pid, {"type": etype})
                assert st == 201, (st, body)
                eid = body["id"]
                entries = [
                    {"form": "triage", "values": {"chief_complaint": rnd.choice(["fever", "cough", "pain"]), "emergency_signs": [],
                                                  "priority_signs": rnd.choice([[], ["severe_pain"]])}},
                    {"form": "vitals", "values": {"temp_c": round(rnd.uniform(36, 39.5), 1), "heart_rate": rnd.randint(60, 120),
                                                  "systolic_bp": rnd.randint(95, 170), "diastolic_bp": rnd.randint(55, 100),
                                                  "weight_kg": round(rnd.uniform(8, 95), 1), "height_cm": rnd.randint(70, 190)}},
                    {"form": "consultation", "values": {"complaints": [rnd.choice(["fever", "cough", "headache"])],
                                                        "diagnoses": [{"diagnosis": rnd.choice(dx), "certainty": "suspected",
                                                                       "new_or_follow_up": "new"}]}},
                    {"form": "prescription", "values": {"allergies_checked": True, "items": [{
                        "medication": rnd.choice(drugs), "dose": 1, "dose_unit": "tablet", "route": "oral",
                        "frequency": "three_times_daily", "duration_days": rnd.randint(3, 30)}]}},
                ]
                for entry in entries:
                    st, body, ms = c.call("POST", "/api/v1/encounters/%s/entries" % eid, entry)
                    if st != 201:
                        sys.exit("clinic_day: entry rejected: %d %s" % (st, json.dumps(body)[:400]))
                    entry_ms.append(ms)
                    st, _, ms = c.call("GET", "/healthz")
                    base_ms.append(ms)
        total = time.perf_counter() - t0
        return total, entry_ms, base_ms
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=int(os.environ.get("BENCH_PATIENTS", 300)))
    ap.add_argument("--runs", type=int, default=int(os.environ.get("REPEAT", 3)))
    ap.add_argument("--sanad", default=os.environ.get("SANAD_BIN", os.path.join(os.path.dirname(__file__), "..", "sanad")))
    a = ap.parse_args()
    rows = []
    for r in range(a.runs):
        total, entry_ms, base_ms = one_day(a.sanad, a.patients, 42 + r)
        row = (total, pct(entry_ms, 50), pct(entry_ms, 95), pct(entry_ms, 99), pct(base_ms, 95), len(entry_ms))
        rows.append(row)
        print("run %d: %d entries, day %.1f s, entry p50 %.2f ms p95 %.2f ms p99 %.2f ms; /healthz p95 %.2f ms"
              % (r + 1, row[5], row[0], row[1], row[2], row[3], row[4]))
    med = [statistics.median(x[i] for x in rows) for i in range(5)]
    print("clinic day (%d patients x 3 encounters x 4 forms = %d entries), medians of %d runs:"
          % (a.patients, rows[0][5], a.runs))
    print("  whole day (registration, encounters, entries): %.1f s" % med[0])
    print("  entry submission p50 %.2f ms, p95 %.2f ms (target <= 5 ms), p99 %.2f ms" % (med[1], med[2], med[3]))
    print("  baseline GET /healthz p95 %.2f ms; entry p95 / baseline p95 = %.1fx" % (med[4], med[2] / med[4]))


if __name__ == "__main__":
    main()
