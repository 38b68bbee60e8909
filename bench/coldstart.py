#!/usr/bin/env python3
"""coldstart.py — time from exec of `sanad serve` to its first 200 on /healthz, once per run.

Usage: coldstart.py SANAD_BIN DATA_DIR RUNS
Prints one line per run, "coldstart_ms N.NNN", then nothing else; exits 1 with a message on failure.
The port comes from the server's own "listening on 127.0.0.1:PORT" log line (it listens on port 0), so
the figure includes everything a real start does: option parsing, opening and checking the database,
binding, the thread pool, and the first request's per-thread database connection.
"""
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time

LISTEN_RE = re.compile(rb"listening on 127\.0\.0\.1:(\d+)")
TIMEOUT_S = 10.0


def healthz_ok(port):
    """One HTTP/1.0 GET /healthz; True on a 200, False when the server is not answering yet."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as s:
            s.sendall(b"GET /healthz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            head = s.recv(64)
            return head.startswith(b"HTTP/1.0 200") or head.startswith(b"HTTP/1.1 200")
    except OSError:
        return False


def one_run(binary, data):
    """Start the server, wait for its port and its first 200, stop it; return elapsed milliseconds."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([binary, "serve", "--data", data, "--listen", "127.0.0.1:0"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        port, seen = None, b""
        fd = proc.stderr.fileno()
        while port is None:
            if time.perf_counter() - t0 > TIMEOUT_S:
                raise RuntimeError("no 'listening on' line within %.0f s" % TIMEOUT_S)
            ready, _, _ = select.select([fd], [], [], 0.5)
            if not ready:
                continue
            chunk = os.read(fd, 4096)
            if not chunk:
                raise RuntimeError("server exited before listening: %s" % seen.decode(errors="replace"))
            seen += chunk
            m = LISTEN_RE.search(seen)
            if m:
                port = int(m.group(1))
        while not healthz_ok(port):
            if time.perf_counter() - t0 > TIMEOUT_S:
                raise RuntimeError("no 200 from /healthz within %.0f s" % TIMEOUT_S)
        elapsed = (time.perf_counter() - t0) * 1000.0
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            # drain stderr so the server never blocks writing its shutdown lines
            proc.communicate(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.returncode != 0:
        raise RuntimeError("server exited %d after SIGTERM" % proc.returncode)
    return elapsed


def main():
    if len(sys.argv) != 4:
        sys.stderr.write("usage: coldstart.py SANAD_BIN DATA_DIR RUNS\n")
        return 2
    binary, data, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
    try:
        for _ in range(runs):
            print("coldstart_ms %.3f" % one_run(binary, data), flush=True)
    except RuntimeError as exc:
        sys.stderr.write("coldstart: %s\n" % exc)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
