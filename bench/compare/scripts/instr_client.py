#!/usr/bin/env python3
"""Deterministic HTTP/1.1 client for instr.sh: K keep-alive connections, each first makes
its session with one GET /hit without a cookie, then exactly N GET ROUTE requests go out
over the K connections round-robin, one request in flight at a time.

  instr_client.py PORT ROUTE N K [bare]

Each connection keeps its own cookie jar, replaced by every Set-Cookie, so cookie stores
advance too. Checks (every answer must be 200):
  /hit, /incr  the connection's counter runs 2, 3, 4, ... (bare: a global counter that
               only increases)
  /load        always 1 (the value the priming /hit wrote); bare: increasing
  /set         an increasing number

Prints:  RESULT requests=N errors=E bad=B cookies=C last=L checks=ok|FAILED
"""
import http.client
import sys


def request(conn, path, jar):
    headers = {}
    if jar:
        headers["Cookie"] = "; ".join(f"{a}={b}" for a, b in jar.items())
    conn.request("GET", path, headers=headers)
    r = conn.getresponse()
    body = r.read().decode(errors="replace").strip()
    cookies = 0
    for name, value in r.getheaders():
        if name.lower() == "set-cookie":
            cookies += 1
            a, _, b = value.split(";", 1)[0].partition("=")
            jar[a.strip()] = b.strip()
    return r.status, body, cookies


def main():
    port, route, n, k = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    bare = len(sys.argv) > 5 and sys.argv[5] == "bare"
    conns = [http.client.HTTPConnection("127.0.0.1", int(port), timeout=300) for _ in range(k)]
    jars = [dict() for _ in range(k)]
    expect = [2] * k
    errors = bad = cookies = 0
    last = None
    prev = None
    for c in range(k):
        status, _, _ = request(conns[c], "/hit", jars[c])
        if status != 200:
            errors += 1
    for i in range(n):
        c = i % k
        status, body, got = request(conns[c], route, jars[c])
        cookies += got
        if status != 200:
            errors += 1
            continue
        last = body
        try:
            val = int(body)
        except ValueError:
            bad += 1
            continue
        if bare or route == "/set":
            if prev is not None and val <= prev:
                bad += 1
            prev = val
        elif route in ("/hit", "/incr"):
            if val != expect[c]:
                bad += 1
            expect[c] = val + 1
        elif route == "/load" and val != 1:
            bad += 1
    for c in conns:
        c.close()
    ok = "ok" if errors == 0 and bad == 0 else "FAILED"
    print(f"RESULT requests={n} errors={errors} bad={bad} cookies={cookies} last={last} checks={ok}")
    return 0 if ok == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
