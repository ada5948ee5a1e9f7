#!/usr/bin/env python3
"""Rotation under load: while workflows are started through bulwark-api continuously (25/s by
default) and the worker runs them, rotate through the admin page, in turn, the Temporal server
certificate, every client certificate, the JWT signing key and an OAuth client secret. Passes
when no start failed, every started workflow completed, and the new material is seen in use:
the server's new fingerprint on a fresh handshake, each reloaded client certificate in the
api/worker logs, the new kid on a token from control that Temporal accepts, and the worker's
new OAuth secret accepted by the token endpoint.

    tests/rotation/under_load.py [--env .bulwark/env] [--rate 25]

Prints one row per rotation and a final `N passed, N failed` like the other suites.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import html
import http.cookiejar
import json
import os
import re
import ssl
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common import Runner, Stack, load_env, manifest_item, server_fingerprint, token_tls_context  # noqa: E402


class Admin:
    """A logged-in admin session on control's page (cookies, CSRF), over verified HTTPS.

    `base` is BULWARK_ADMIN_URL: the admin listener's URL including `/admin`."""

    def __init__(self, base: str, ca: Path):
        self.base = base
        ctx = ssl.create_default_context(cafile=str(ca))
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), urllib.request.HTTPSHandler(context=ctx)
        )

    def _open(self, path: str, form: dict | None = None) -> tuple[str, str]:
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        with self.opener.open(urllib.request.Request(self.base + path, data=data), timeout=60) as r:
            return r.geturl(), r.read().decode()

    @staticmethod
    def _csrf(page: str) -> str:
        m = re.search(r'name="csrf" value="([^"]+)"', page)
        assert m, "no CSRF field on the page"
        return html.unescape(m.group(1))

    def login(self, user: str, password: str) -> None:
        _, page = self._open("/login")
        url, _ = self._open("/login", {"csrf": self._csrf(page), "username": user, "password": password})
        assert not url.endswith("/admin/login"), "login refused"

    def rotate(self, action: str, target: str = "", extra: dict | None = None) -> str:
        """Confirm and post one rotation; wait for its job; return the job's final page."""
        _, page = self._open("/confirm?" + urllib.parse.urlencode({"action": action, "target": target}))
        form = {"csrf": self._csrf(page), "confirm": "yes", "target": target, **(extra or {})}
        url, page = self._open(f"/rotate/{action}", form)
        if "/admin/jobs/" not in url:
            return page  # immediate actions (OAuth secret) answer with their result page
        deadline = time.monotonic() + 300
        while True:
            state = re.search(r'id="job-state">([a-z]+)<', page)
            assert state, f"no job state on {url}"
            if state.group(1) in ("succeeded", "failed"):
                assert state.group(1) == "succeeded", f"job {url} failed: {re.sub('<[^>]+>', ' ', page)[-600:]}"
                return page
            assert time.monotonic() < deadline, f"job {url} still {state.group(1)} after 300 s"
            time.sleep(1)
            _, page = self._open(url[len(self.base):])


class Load:
    """Starts Greeting workflows through bulwark-api at a steady rate from a thread pool."""

    def __init__(self, api: str, ca: Path, token: callable, rate: float, threads: int = 12):
        self.api, self.token, self.rate, self.threads = api, token, rate, threads
        self.ctx = ssl.create_default_context(cafile=str(ca))
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.started: list[str] = []
        self.failures: list[str] = []
        self.seq = 0
        self.t0 = 0.0

    def _next_slot(self) -> float | None:
        with self.lock:
            if self.stop.is_set():
                return None
            self.seq += 1
            return self.t0 + self.seq / self.rate

    def _run(self) -> None:
        while (slot := self._next_slot()) is not None:
            delay = slot - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            n = self.seq
            body = json.dumps({"workflow_type": "Greeting", "input": {"name": f"load-{n}"}}).encode()
            req = urllib.request.Request(f"{self.api}/api/v1/workflows", data=body, method="POST")
            req.add_header("Content-Type", "application/json")
            req.add_header("Authorization", f"Bearer {self.token()}")
            try:
                with urllib.request.urlopen(req, context=self.ctx, timeout=30) as r:
                    wid = json.loads(r.read())["workflow_id"]
                with self.lock:
                    self.started.append(wid)
            except urllib.error.HTTPError as e:
                with self.lock:
                    self.failures.append(f"HTTP {e.code}: {e.read()[:200]!r}")
            except Exception as e:  # noqa: BLE001 - every failed start is counted and shown
                with self.lock:
                    self.failures.append(f"{type(e).__name__}: {e}")

    def start(self) -> None:
        self.t0 = time.monotonic()
        self.pool = [threading.Thread(target=self._run, daemon=True) for _ in range(self.threads)]
        for t in self.pool:
            t.start()

    def finish(self) -> float:
        self.stop.set()
        for t in self.pool:
            t.join()
        return len(self.started) / max(time.monotonic() - self.t0, 1e-9)


def jwt_kid(token: str) -> str:
    head = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))["kid"]


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--env")
    ap.add_argument("--rate", type=float, default=25.0, help="workflow starts per second (at least 20)")
    args = ap.parse_args()
    env = load_env(args.env)
    certs = Path(env["BULWARK_CERTS_DIR"])
    creds = Path(env["BULWARK_OPERATOR_CREDENTIALS"]).parent
    control, api, logs = env["BULWARK_CONTROL_URL"], env["BULWARK_API_URL"], Path(env["BULWARK_LOGS_DIR"])
    ca = certs / "ca.crt"
    op = json.loads(Path(env["BULWARK_OPERATOR_CREDENTIALS"]).read_text())

    def oauth_token(client_id: str, secret: str, scope: str | None = None) -> str:
        form = {"grant_type": "client_credentials", **({"scope": scope} if scope else {})}
        req = urllib.request.Request(f"{control}/oauth/token", data=urllib.parse.urlencode(form).encode())
        req.add_header("Authorization", "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode())
        # A Temporal token (api, worker) is bound to the client certificate presented here; the
        # context is built per request, so a rotated certificate is the one presented.
        with urllib.request.urlopen(req, context=token_tls_context(certs, client_id), timeout=30) as r:
            return json.loads(r.read())["access_token"]

    token_cache = {"value": oauth_token(op["client_id"], op["client_secret"]), "at": time.monotonic()}
    token_lock = threading.Lock()

    def operator_token() -> str:
        # Access tokens live 15 minutes; take a new one well before, as a real client would.
        with token_lock:
            if time.monotonic() - token_cache["at"] > 600:
                token_cache.update(value=oauth_token(op["client_id"], op["client_secret"]), at=time.monotonic())
            return token_cache["value"]
    admin = Admin(env["BULWARK_ADMIN_URL"].rstrip("/"), ca)
    admin.login("admin", (creds / "admin-password").read_text().strip())
    stack = Stack(env)
    runner = Runner()
    rows: list[tuple[str, str, str, str]] = []
    log_offsets = {n: (logs / f"{n}.log").stat().st_size for n in ("bulwark-api", "bulwark-worker")}

    def new_log(name: str) -> str:
        with open(logs / f"{name}.log", "rb") as f:
            f.seek(log_offsets[name])
            return f.read().decode(errors="replace")

    load = Load(api, ca, operator_token, args.rate)
    # Visibility queries below select this run's workflows by start time (whole seconds).
    load_began = time.time() - 1
    load.start()
    await asyncio.sleep(5)  # load running before the first rotation

    async def rotate_server() -> str:
        before = manifest_item(certs, "temporal-server")["fingerprint"]
        await asyncio.to_thread(admin.rotate, "cert", "temporal-server")
        after = manifest_item(certs, "temporal-server")["fingerprint"]
        seen = server_fingerprint(env["BULWARK_TEMPORAL_ADDRESS"], env["BULWARK_TEMPORAL_SERVER_NAME"], certs)
        assert after != before and seen == after, f"manifest {before[:12]} -> {after[:12]}, handshake {seen[:12]}"
        rows.append(("temporal-server", before[:16], after[:16], "fresh handshake to the frontend"))
        return f"{before[:12]} -> {after[:12]}, served on a fresh handshake"

    async def rotate_client(item: str, consumer: str | None) -> str:
        before = manifest_item(certs, item)["fingerprint"]
        await asyncio.to_thread(admin.rotate, "cert", item)
        after = manifest_item(certs, item)["fingerprint"]
        assert after != before
        where = "issued; read by its user at next use"
        if consumer:
            deadline = time.monotonic() + 60  # services re-read certificates every few seconds
            while after not in new_log(consumer):
                assert time.monotonic() < deadline, f"{consumer} never logged reloading {after[:12]}"
                await asyncio.sleep(0.5)
            where = f"{consumer} reloaded it (log)"
        rows.append((item, before[:16], after[:16], where))
        return f"{before[:12]} -> {after[:12]}; {where}"

    async def rotate_jwt() -> str:
        before = jwt_kid(oauth_token(op["client_id"], op["client_secret"]))
        await asyncio.to_thread(admin.rotate, "jwt")
        secret = json.loads((creds / "deployment-secrets-api.json").read_text())["api_client_secret"]
        fresh = oauth_token("api", secret)
        after = jwt_kid(fresh)
        assert after != before, "control still signs with the old kid"
        client = await stack.client(fresh, identity="client-api")
        await client.count_workflows("WorkflowType='Greeting'")  # Temporal accepts the new kid
        rows.append(("jwt-key", before[:16], after[:16], "token with the new kid accepted by Temporal"))
        return f"kid {before[:12]} -> {after[:12]}, accepted by Temporal"

    async def rotate_oauth() -> str:
        path = creds / "deployment-secrets-worker.json"
        before = json.loads(path.read_text())["worker_client_secret"]
        await asyncio.to_thread(admin.rotate, "oauth", "worker", {"grace_hours": "1"})
        after = json.loads(path.read_text())["worker_client_secret"]
        assert after != before, "deployment secret store not updated"
        oauth_token("worker", after)  # the new secret works...
        oauth_token("worker", before)  # ...and the old one until the grace window ends
        rows.append(("oauth:worker", hashlib.sha256(before.encode()).hexdigest()[:16],
                     hashlib.sha256(after.encode()).hexdigest()[:16], "new secret accepted; old in grace"))
        return "new secret accepted by the token endpoint, old one still in grace (digests in the table)"

    await runner.run("rotate temporal-server under load", rotate_server, timeout=400)
    consumers = {"client-api": "bulwark-api", "client-worker": "bulwark-worker"}
    items = ["client-api", "client-worker", "client-control", "client-admin", "client-ui", "temporal-client"]
    # Behind bulwark-gate: its upstream identity too (every call of the load crosses it).
    if env.get("BULWARK_TEMPORAL_UPSTREAM_ADDRESS"):
        items.append("gate-client")
    for item in items:
        await runner.run(f"rotate {item} under load", lambda i=item: rotate_client(i, consumers.get(i)), timeout=120)
    await runner.run("rotate the JWT signing key under load", rotate_jwt, timeout=400)
    await runner.run("rotate the worker's OAuth client secret under load", rotate_oauth, timeout=60)
    await asyncio.sleep(5)  # load running after the last rotation
    achieved = await asyncio.to_thread(load.finish)

    async def no_failed_start() -> str:
        assert args.rate >= 20, "the load must be at least 20 starts per second"
        assert achieved >= 0.9 * args.rate, f"only {achieved:.1f} starts/s of {args.rate}"
        assert not load.failures, f"{len(load.failures)} failed starts, e.g. {load.failures[:3]}"
        return f"{len(load.started)} starts at {achieved:.1f}/s, 0 failed"

    async def every_workflow_completed() -> str:
        client = await stack.client(env.get("BULWARK_SYSTEM_TOKEN") or (certs / "system-token.jwt").read_text().strip(),
                                    identity="client-admin")
        started = set(load.started)
        since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(load_began))
        window = f"WorkflowType = 'Greeting' AND StartTime >= '{since}'"
        # Generous for a slow machine: a minute plus 50 ms per workflow.
        wait = 60 + 0.05 * len(started)
        deadline = time.monotonic() + wait
        # One visibility count per second, not one describe per workflow per second: on a slow
        # machine thousands of describes a second take the CPU the worker needs to drain them.
        while time.monotonic() < deadline:
            running = (await client.count_workflows(f"{window} AND ExecutionStatus = 'Running'")).count
            if running == 0:
                break
            await asyncio.sleep(1)
        # Then account for every started workflow by its own status (visibility lags the
        # history a little, so a workflow not listed yet is looked up directly).
        status: dict[str, str] = {}
        async for wf in client.list_workflows(window):
            status[wf.id] = wf.status.name if wf.status else "UNKNOWN"
        gate = asyncio.Semaphore(16)

        async def describe(wid: str) -> None:
            async with gate:
                desc = await client.get_workflow_handle(wid).describe()
            status[wid] = desc.status.name if desc.status else "UNKNOWN"

        await asyncio.gather(*(describe(w) for w in started if status.get(w, "RUNNING") == "RUNNING"))
        pending = sorted(w for w in started if status[w] == "RUNNING")
        failed = sorted(f"{w}: {status[w]}" for w in started if status[w] not in ("RUNNING", "COMPLETED"))
        assert not failed, f"{len(failed)} workflows did not complete, e.g. {failed[:3]}"
        assert not pending, f"{len(pending)} workflows still running after {wait:.0f} s"
        return f"{len(started)} workflows completed, 0 failed"

    await runner.run("no workflow start failed during the rotations", no_failed_start)
    await runner.run("every workflow started during the rotations completed", every_workflow_completed, timeout=1200)

    print("\n| item | before | after | observed |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} |")
    print(f"\nload: {len(load.started)} starts at {achieved:.1f}/s, {len(load.failures)} failed starts\n")
    return runner.summary()


if __name__ == "__main__":
    code = asyncio.run(main())
    sys.stdout.flush()
    os._exit(code)  # the SDK's runtime threads would otherwise keep the process alive
