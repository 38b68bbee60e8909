#!/usr/bin/env python3
"""bench/sync_run.py — "sync now" in a running node for bench/sync.sh: POST /api/v1/sync/run?wait=30 on a
`sanad serve` at 127.0.0.1:PORT, timed around the request (connect to last byte of the answer).

Usage: sync_run.py login PORT PASSWORD     prints a session token of the node's "admin"
       sync_run.py run PORT TOKEN           syncs; prints "WALL_S RECEIVED APPLIED ROUND_MS BYTES_IN"

It fails (exit 1, message on stderr) unless the answer is 200 with one successful session.
"""
import http.client
import json
import sys
import time


def request(port, method, path, body=None, token=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = "Bearer " + token
    t0 = time.perf_counter()
    conn.request(method, path, body=body, headers=headers)
    resp = conn.getresponse()
    data = resp.read()
    t1 = time.perf_counter()
    conn.close()
    return resp.status, data, t1 - t0


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in ("login", "run"):
        sys.exit(__doc__)
    port = int(sys.argv[2])
    if sys.argv[1] == "login":
        status, data, _ = request(port, "POST", "/api/v1/session",
                                  json.dumps({"username": "admin", "password": sys.argv[3]}))
        if status != 201:
            sys.exit("sync_run: login answered %d: %s" % (status, data[:300]))
        print(json.loads(data)["token"])
        return
    status, data, wall = request(port, "POST", "/api/v1/sync/run?wait=30", token=sys.argv[3])
    if status != 200:
        sys.exit("sync_run: POST /api/v1/sync/run answered %d: %s" % (status, data[:300]))
    rnd = json.loads(data)["round"]
    peers = rnd["peers"]
    if len(peers) != 1 or not peers[0]["ok"]:
        sys.exit("sync_run: the round did not sync with one peer: %s" % json.dumps(peers)[:500])
    p = peers[0]
    print("%.6f %d %d %d %d" % (wall, p["pulled"]["received"], p["pulled"]["applied"],
                                rnd["finished_at"] - rnd["started_at"], p["bytes_in"]))


if __name__ == "__main__":
    main()
