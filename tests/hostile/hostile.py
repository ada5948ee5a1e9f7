#!/usr/bin/env python3
"""Hostile clients against the running native stack: what an attacker on the network can do
without credentials, from other loopback addresses, must not exhaust bulwark-control or
bulwark-api, lock the admin out, or slow down the real clients.

    tests/hostile/hostile.py [--env .bulwark/env] [--only a,b,...]

Each probe is bounded in count and time, plays its attackers from distinct 127.x source
addresses (in separate processes, so the attackers' GIL never delays the measuring client),
and prints one line; the suite ends with `N passed, N failed`:

  a  wrong-secret flood for `worker` from 3 addresses for 10 s while the real worker gets a
     token every 0.5 s: every real request succeeds, and the flood is throttled
  b  1,500 unique 60 KB client ids (Basic header and form body): refused with 4xx, control's
     RSS grows < 20 MB
  d  1,000 half-sent requests to control and to the API: each closed by the server within
     15 s, while real requests are served
  f  1,000 refused logins add <= 10 audit rows
  e  repeated wrong passwords for `admin` from one address: the admin logs in from another
  c  100 concurrent admin logins (100 addresses) for 10 s: control's RSS grows < 100 MB and
     a real client's token requests succeed with p99 < 200 ms
"""

from __future__ import annotations

import argparse
import asyncio
import html
import http.client
import json
import multiprocessing
import os
import re
import resource
import selectors
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.parse
from base64 import b64encode
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common import Runner, load_env  # noqa: E402

ENV: dict[str, str] = {}
CA = ""


def ctx(identity: str | None = None) -> ssl.SSLContext:
    """Verified TLS; with `identity`, presenting that client certificate (control binds the
    worker's Temporal tokens to it, and refuses to issue one without)."""
    c = ssl.create_default_context(cafile=CA)
    c.set_alpn_protocols(["http/1.1"])
    if identity:
        certs = Path(ENV["BULWARK_CERTS_DIR"])
        c.load_cert_chain(certs / f"{identity}.crt", certs / f"{identity}.key")
    return c


def origin(url: str) -> tuple[str, int]:
    u = urllib.parse.urlsplit(url)
    return u.hostname or "127.0.0.1", u.port or 443


class Http:
    """One keep-alive HTTPS connection from a chosen source address; reconnects on close."""

    def __init__(self, base: str, source: str, timeout: float = 10, identity: str | None = None):
        self.host, self.port = origin(base)
        self.source, self.timeout, self.identity = source, timeout, identity
        self.conn: http.client.HTTPSConnection | None = None

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        """(status, headers, body) or raises after one reconnect attempt."""
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPSConnection(
                    self.host, self.port, context=ctx(self.identity), timeout=self.timeout, source_address=(self.source, 0)
                )
            try:
                self.conn.request(method, path, body=body, headers=headers or {})
                r = self.conn.getresponse()
                data = r.read()
                if r.getheader("connection", "").lower() == "close":
                    self.close()
                return r.status, r.headers, data
            except (OSError, http.client.HTTPException):
                self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


def form(d: dict) -> bytes:
    return urllib.parse.urlencode(d).encode()


FORM = {"content-type": "application/x-www-form-urlencoded"}


def basic(user: str, secret: str) -> dict:
    q = urllib.parse.quote
    return {"authorization": "Basic " + b64encode(f"{q(user, safe='')}:{q(secret, safe='')}".encode()).decode()}


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


def control_pid() -> int:
    """bulwark-control's pid: BULWARK_CONTROL_PID (e.g. a container's main process, from
    `podman inspect`), else the native stack's pid file."""
    if ENV.get("BULWARK_CONTROL_PID"):
        pid = int(ENV["BULWARK_CONTROL_PID"])
        os.kill(pid, 0)
        return pid
    run = Path(ENV["BULWARK_LOGS_DIR"]).parent / "run" / "bulwark-control.pid"
    pid = int(run.read_text().strip())
    os.kill(pid, 0)
    return pid


class RssSampler(threading.Thread):
    """Peak RSS of a process while a probe runs."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop = pid, rss_mb(pid), threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.1):
            try:
                self.peak = max(self.peak, rss_mb(self.pid))
            except (OSError, AssertionError):
                return

    def finish(self) -> float:
        self.stop.set()
        self.join()
        return self.peak


def worker_credentials() -> tuple[str, str]:
    path = Path(ENV["BULWARK_DEPLOYMENT_SECRETS_DIR"]) / "deployment-secrets-worker.json"
    doc = json.loads(path.read_text())
    return doc["worker_client_id"], doc["worker_client_secret"]


def operator_credentials() -> tuple[str, str]:
    doc = json.loads(Path(ENV["BULWARK_OPERATOR_CREDENTIALS"]).read_text())
    return doc["client_id"], doc["client_secret"]


def admin_base() -> str:
    """Origin of control's admin listener (BULWARK_ADMIN_URL ends in /admin)."""
    url = ENV["BULWARK_ADMIN_URL"].rstrip("/")
    return url[: -len("/admin")] if url.endswith("/admin") else url


def percentile(xs: list[float], p: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


# --- attackers (run in child processes) ---------------------------------------------------

def _attack(kind: str, sources: list[str], threads_per_source: int, seconds: float, arg: dict, out) -> None:
    """Run `threads_per_source` attacker threads per source address for `seconds`; put a
    status histogram on `out`."""
    counts: dict[str, int] = {}
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def note(k: str) -> None:
        with lock:
            counts[k] = counts.get(k, 0) + 1

    def loop(source: str, n: int) -> None:
        if kind == "token-flood":
            c = Http(ENV["BULWARK_CONTROL_URL"], source)
            body = form({"grant_type": "client_credentials"})
            hdr = {**FORM, **basic(arg["client_id"], "wrong-secret-" + source)}
            while time.monotonic() < deadline:
                try:
                    note(str(c.request("POST", "/oauth/token", body, hdr)[0]))
                except Exception as e:  # noqa: BLE001
                    note(type(e).__name__)
        elif kind == "big-ids":
            c = Http(ENV["BULWARK_CONTROL_URL"], source)
            for i in range(arg["count"]):
                if time.monotonic() > deadline:
                    break
                cid = f"{source}-{n}-{i}-".ljust(60 * 1024, "x")
                if i % 2:
                    req = (form({"grant_type": "client_credentials"}), {**FORM, **basic(cid, "s")})
                else:
                    req = (form({"grant_type": "client_credentials", "client_id": cid, "client_secret": "s"}), FORM)
                try:
                    note(str(c.request("POST", "/oauth/token", *req)[0]))
                except Exception as e:  # noqa: BLE001
                    note(type(e).__name__)
        elif kind == "logins":
            c = Http(admin_base(), source)
            n_sent = 0
            while time.monotonic() < deadline and n_sent < arg.get("count", 10**9):
                try:
                    cookie, csrf = login_pair(c)
                    body = form({"csrf": csrf, "username": arg.get("username", "admin"), "password": f"wrong-{n}-{n_sent}"})
                    status = c.request("POST", "/admin/login", body, {**FORM, "cookie": cookie})[0]
                    note(str(status))
                except Exception as e:  # noqa: BLE001
                    note(type(e).__name__)
                n_sent += 1
        c.close()

    ts = [threading.Thread(target=loop, args=(s, i)) for s in sources for i in range(threads_per_source)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    out.put(counts)


def attackers(kind: str, sources: list[str], threads_per_source: int, seconds: float, processes: int, arg: dict | None = None):
    """Start attacker processes (sources split between them); returns a join function that
    gives the merged status histogram."""
    mp = multiprocessing.get_context("fork")
    q = mp.Queue()
    chunks = [sources[i::processes] for i in range(processes)]
    procs = [mp.Process(target=_attack, args=(kind, ch, threads_per_source, seconds, arg or {}, q)) for ch in chunks if ch]
    for p in procs:
        p.start()

    def join() -> dict[str, int]:
        merged: dict[str, int] = {}
        for _ in procs:
            for k, v in q.get(timeout=seconds + 120).items():
                merged[k] = merged.get(k, 0) + v
        for p in procs:
            p.join(timeout=30)
        return merged

    return join


def login_pair(c: Http) -> tuple[str, str]:
    """A fresh login CSRF pair: (cookie header, form token)."""
    status, headers, body = c.request("GET", "/admin/login")
    assert status == 200, f"login page answered {status}"
    cookies = [v.split(";", 1)[0] for k, v in headers.items() if k.lower() == "set-cookie"]
    m = re.search(rb'name="csrf" value="([^"]+)"', body)
    assert m and cookies, "login page without CSRF field or cookie"
    return "; ".join(cookies), html.unescape(m.group(1).decode())


def token_request(c: Http, cid: str, secret: str) -> tuple[int, float]:
    start = time.monotonic()
    status = c.request("POST", "/oauth/token", form({"grant_type": "client_credentials"}), {**FORM, **basic(cid, secret)})[0]
    return status, time.monotonic() - start


def sql(query: str) -> str:
    """One value from the bulwark database, as the Postgres superuser (password via env)."""
    pw = Path(ENV["BULWARK_PG_SUPERUSER_PASSWORD_FILE"]).read_text().strip()
    out = subprocess.run(
        ["psql", "-h", ENV.get("BULWARK_PG_HOST", "127.0.0.1"), "-p", ENV["BULWARK_PG_PORT"], "-U", "postgres",
         "-d", "bulwark", "-Atq", "-c", query],
        env={**os.environ, "PGPASSWORD": pw}, capture_output=True, text=True, timeout=30, check=True,
    )
    return out.stdout.strip()


# --- probes -----------------------------------------------------------------------------

def probe_a() -> str:
    cid, secret = worker_credentials()
    join = attackers("token-flood", ["127.0.10.1", "127.0.10.2", "127.0.10.3"], 4, 10, 3, {"client_id": cid})
    real = Http(ENV["BULWARK_CONTROL_URL"], "127.0.10.20", identity="client-worker")
    results: list[tuple[int, float]] = []
    time.sleep(1)  # let the flood reach full rate first
    deadline = time.monotonic() + 9
    while time.monotonic() < deadline:
        t0 = time.monotonic()
        results.append(token_request(real, cid, secret))
        time.sleep(max(0, 0.5 - (time.monotonic() - t0)))
    flood = join()
    failed = [s for s, _ in results if s != 200]
    assert len(results) >= 15, f"only {len(results)} real requests"
    assert not failed, f"real worker refused {len(failed)}/{len(results)} times: {failed}"
    assert flood.get("429", 0) > 0, f"the flood was never throttled: {flood}"
    assert not any(k.startswith("2") for k in flood), f"a wrong secret got a token: {flood}"
    return f"real worker {len(results)}/{len(results)} ok; flood {sum(flood.values())} requests {flood}"


def probe_b() -> str:
    pid = control_pid()
    before = rss_mb(pid)
    sampler = RssSampler(pid)
    sampler.start()
    sources = [f"127.0.11.{i}" for i in range(1, 9)]
    flood = attackers("big-ids", sources, 1, 120, 4, {"count": 1500 // len(sources) + 1})()
    peak = sampler.finish()
    after = rss_mb(pid)
    total = sum(flood.values())
    assert total >= 1500, f"only {total} requests sent: {flood}"
    # The server answers 431/413 as soon as it sees the size and closes the connection; a
    # client still sending its 60 KB may then see the close (EOF, reset) before the answer.
    # That is a refusal too, but most answers must arrive as a 4xx.
    early = {"SSLEOFError", "ConnectionResetError", "BrokenPipeError", "SSLError", "RemoteDisconnected"}
    bad = {k: v for k, v in flood.items() if not k.startswith("4") and k not in early}
    assert not bad, f"answers other than 4xx or an early close: {bad}"
    answered = sum(v for k, v in flood.items() if k.startswith("4"))
    assert answered >= total * 0.8, f"only {answered}/{total} got a 4xx answer: {flood}"
    grew = after - before
    assert grew < 20, f"control RSS grew {grew:.1f} MB (before {before:.1f}, after {after:.1f}, peak {peak:.1f})"
    return f"{total} requests {flood}; RSS {before:.1f} -> {after:.1f} MB (+{grew:.1f}, peak {peak:.1f})"


def half_sent(base: str, path: str, n: int, label: str) -> str:
    """Open `n` TLS connections, each sending half a request header; every one must be closed
    by the server within 15 s of its last byte, while a real client keeps being served."""
    host, port = origin(base)
    sel = selectors.DefaultSelector()
    sent_at: dict[socket.socket, float] = {}
    closed_after: list[float] = []
    c = ctx()
    partial = f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-www-".encode()
    real = Http(base, "127.0.12.200")
    real_results: list[int] = []
    stop = threading.Event()

    def real_client() -> None:
        while not stop.wait(0.25):
            try:
                real_results.append(real.request("GET", "/healthz")[0])
            except Exception:  # noqa: BLE001
                real_results.append(0)

    rt = threading.Thread(target=real_client, daemon=True)
    rt.start()
    refused_at_connect = 0

    def drain(timeout: float) -> None:
        for key, _ in sel.select(timeout=timeout):
            s = key.fileobj
            try:
                data = s.recv(4096)
            except ssl.SSLWantReadError:
                continue
            except OSError:
                data = b""
            if not data:
                closed_after.append(time.monotonic() - sent_at.pop(s))
                sel.unregister(s)
                s.close()
            # An answer (408, say) before the close is fine; keep reading until EOF.

    for i in range(n):
        if i % 20 == 0:
            drain(0)  # opening 1,000 takes seconds: notice early closes as they happen
        src = f"127.0.12.{1 + i % 100}"
        try:
            raw = socket.create_connection((host, port), timeout=10, source_address=(src, 0))
            s = c.wrap_socket(raw, server_hostname=host)
            s.sendall(partial)
        except OSError:
            # A server that refuses or closes at once has not been held open: count it as closed.
            refused_at_connect += 1
            continue
        s.setblocking(False)
        sent_at[s] = time.monotonic()
        sel.register(s, selectors.EVENT_READ)
    deadline = time.monotonic() + 20
    while sent_at and time.monotonic() < deadline:
        drain(0.5)
    stop.set()
    rt.join()
    real.close()
    still_open = len(sent_at)
    for s in list(sent_at):
        s.close()
    ok_real = sum(1 for r in real_results if r == 200)
    assert still_open == 0, f"{label}: {still_open} of {n} half-sent connections still open after 20 s"
    worst = max(closed_after, default=0)
    assert worst <= 15, f"{label}: slowest close {worst:.1f} s"
    assert real_results and ok_real == len(real_results), f"{label}: real requests {ok_real}/{len(real_results)} ok"
    return f"{label}: {n} half-sent, all closed (slowest {worst:.1f} s, refused at connect {refused_at_connect}); real {ok_real}/{len(real_results)} ok"


def probe_d() -> str:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))
    a = half_sent(ENV["BULWARK_CONTROL_URL"], "/oauth/token", 1000, "control")
    b = half_sent(ENV["BULWARK_API_URL"], "/api/v1/workflows", 1000, "api")
    return f"{a}; {b}"


F_SOURCES = ["127.0.13.1", "127.0.13.2", "127.0.13.3", "127.0.13.4"]


def probe_f() -> str:
    where = "address IN (" + ",".join(f"'{s}'" for s in F_SOURCES) + ")"
    # Only rows written from now on (earlier runs used the same addresses).
    where += " AND id > " + sql("SELECT coalesce(max(id), 0) FROM admin_audit")
    before = 0
    per = 1000 // len(F_SOURCES)
    counts = attackers("logins", F_SOURCES, 1, 120, 2, {"count": per, "username": "nobody-here"})()
    sent = sum(counts.values())
    rows = int(sql(f"SELECT count(*) FROM admin_audit WHERE {where}")) - before
    assert sent >= 1000, f"only {sent} attempts: {counts}"
    assert not any(k in ("200", "302", "303") for k in counts), f"a wrong password logged in: {counts}"
    assert 1 <= rows <= 10, f"{sent} refused logins {counts} added {rows} audit rows"
    # The rest are counted in memory and written as one row per address when the window
    # closes: with a short window (test.sh starts its stack with 20 s), see those rows too.
    window = ENV.get("BULWARK_ADMIN_AUDIT_REFUSAL_WINDOW", "")
    m = re.fullmatch(r"(\d+)s", window)
    if not (m and int(m.group(1)) <= 60):
        return f"{sent} refused logins {counts} -> {rows} audit rows (window {window or 'unknown'}: count rows not awaited)"
    deadline = time.monotonic() + int(m.group(1)) + 20
    while True:
        total = int(sql(f"SELECT count(*) FROM admin_audit WHERE {where}")) - before
        counted = int(sql(f"SELECT coalesce(sum((regexp_match(detail, '^(\\d+) more'))[1]::int), 0) "
                          f"FROM admin_audit WHERE {where} AND detail ~ '^\\d+ more'"))
        if total > rows and counted + rows >= sent or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert total <= 10, f"{sent} refused logins added {total} audit rows once the window closed"
    assert counted + rows >= sent, f"the count rows account for {counted} + {rows} first rows of {sent} refusals"
    return f"{sent} refused logins {counts} -> {rows} audit rows at once, {total} after the {window} window (counts sum to {counted + rows})"


def admin_login(source: str, password: str) -> int:
    c = Http(admin_base(), source)
    try:
        cookie, csrf = login_pair(c)
        body = form({"csrf": csrf, "username": "admin", "password": password})
        return c.request("POST", "/admin/login", body, {**FORM, "cookie": cookie})[0]
    finally:
        c.close()


def probe_e() -> str:
    password = Path(ENV["BULWARK_ADMIN_PASSWORD_FILE"]).read_text().strip()
    counts = attackers("logins", ["127.0.14.1"], 1, 60, 1, {"count": 30, "username": "admin"})()
    assert not any(k in ("302", "303") for k in counts), f"a wrong password logged in: {counts}"
    from_attacker = admin_login("127.0.14.1", password)
    other = admin_login("127.0.14.2", password)
    assert other == 303, f"admin from a clean address got {other} after 30 failures elsewhere"
    assert from_attacker != 303, "the failing address was not backed off (right password accepted at once)"
    return f"30 wrong passwords from 127.0.14.1 {counts}; right password there -> {from_attacker}, from 127.0.14.2 -> {other}"


def probe_c() -> str:
    pid = control_pid()
    before = rss_mb(pid)
    sampler = RssSampler(pid)
    sampler.start()
    cid, secret = operator_credentials()
    real = Http(ENV["BULWARK_CONTROL_URL"], "127.0.15.250")
    token_request(real, cid, secret)  # connection established before the storm
    sources = [f"127.0.15.{i}" for i in range(1, 101)]
    join = attackers("logins", sources, 1, 10, 4, {"username": "admin"})
    time.sleep(1)
    results: list[tuple[int, float]] = []
    deadline = time.monotonic() + 9
    while time.monotonic() < deadline:
        t0 = time.monotonic()
        results.append(token_request(real, cid, secret))
        time.sleep(max(0, 0.05 - (time.monotonic() - t0)))
    counts = join()
    peak = sampler.finish()
    real.close()
    lat = [d for _, d in results]
    failed = [s for s, _ in results if s != 200]
    p99 = percentile(lat, 99) * 1000
    grew = peak - before
    assert not failed, f"real token requests failed {len(failed)}/{len(results)}: {failed[:5]}"
    assert grew < 100, f"control RSS peak grew {grew:.1f} MB ({before:.1f} -> {peak:.1f})"
    assert p99 < 200, f"real token p99 {p99:.0f} ms (p50 {percentile(lat, 50) * 1000:.0f} ms)"
    assert not any(k in ("302", "303") for k in counts), f"a wrong password logged in: {counts}"
    return (f"{sum(counts.values())} logins {counts}; RSS {before:.1f} -> peak {peak:.1f} MB (+{grew:.1f}); "
            f"real tokens {len(results)} ok, p50 {percentile(lat, 50) * 1000:.0f} ms, p99 {p99:.0f} ms")


PROBES = [
    ("a", "wrong-secret flood for worker from 3 addresses; the real worker is served", probe_a),
    ("b", "1,500 unique 60 KB client ids: 4xx, control RSS +< 20 MB", probe_b),
    ("d", "1,000 half-sent requests to control and to the API closed within 15 s", probe_d),
    ("f", "1,000 refused logins add <= 10 audit rows", probe_f),
    ("e", "wrong passwords for admin from one address; admin logs in from another", probe_e),
    ("c", "100 concurrent admin logins: RSS +< 100 MB, real token p99 < 200 ms", probe_c),
]


async def main() -> int:
    global ENV, CA
    ap = argparse.ArgumentParser()
    ap.add_argument("--env")
    ap.add_argument("--only", help="comma-separated probe letters")
    args = ap.parse_args()
    ENV = load_env(args.env)
    CA = str(Path(ENV["BULWARK_CERTS_DIR"]) / "ca.crt")
    only = set(args.only.split(",")) if args.only else None
    r = Runner()
    for letter, name, fn in PROBES:
        if only and letter not in only:
            continue
        await r.run(f"({letter}) {name}", lambda fn=fn: asyncio.to_thread(fn), timeout=300)
    return r.summary()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
