#!/usr/bin/env python3
"""Emergency revoke of the JWT signing key through the admin page, against the running stack:
the old key leaves the JWKS at once, tokens it signed are refused by bulwark-api and by
Temporal, the static tokens are re-issued with the new key, and bulwark-api and
bulwark-worker fetch fresh tokens by themselves (no restart): a workflow started after the
revoke completes.

    tests/rotation/revoke.py [--env .bulwark/env]

Prints one line per check and a final `N passed, N failed` like the other suites.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import re
import ssl
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common import DENIED, Runner, Stack, load_env, token_tls_context  # noqa: E402
from temporalio.service import RPCError  # noqa: E402
from under_load import Admin, jwt_kid  # noqa: E402


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--env")
    args = ap.parse_args()
    env = load_env(args.env)
    certs = Path(env["BULWARK_CERTS_DIR"])
    creds = Path(env["BULWARK_OPERATOR_CREDENTIALS"]).parent
    logs = Path(env["BULWARK_LOGS_DIR"])
    control, api = env["BULWARK_CONTROL_URL"].rstrip("/"), env["BULWARK_API_URL"].rstrip("/")
    ca = certs / "ca.crt"
    admin = Admin(env["BULWARK_ADMIN_URL"].rstrip("/"), ca)
    ctx = ssl.create_default_context(cafile=str(ca))
    op = json.loads(Path(env["BULWARK_OPERATOR_CREDENTIALS"]).read_text())
    api_secret = json.loads((creds / "deployment-secrets-api.json").read_text())["api_client_secret"]
    stack = Stack(env)
    runner = Runner()

    def call(method: str, url: str, body: bytes | None = None, headers: dict | None = None,
             context: ssl.SSLContext | None = None) -> tuple[int, bytes]:
        req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, context=context or ctx, timeout=90) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def oauth_token(client_id: str, secret: str) -> str:
        # A Temporal token (api) is bound to the client certificate presented here.
        status, body = call(
            "POST", f"{control}/oauth/token", urllib.parse.urlencode({"grant_type": "client_credentials"}).encode(),
            {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode(),
             "Content-Type": "application/x-www-form-urlencoded"},
            context=token_tls_context(certs, client_id),
        )
        assert status == 200, f"token endpoint answered {status}: {body[:200]!r}"
        return json.loads(body)["access_token"]

    def published_kids() -> set[str]:
        status, body = call("GET", f"{control}/.well-known/jwks.json")
        assert status == 200, f"JWKS answered {status}"
        return {k["kid"] for k in json.loads(body)["keys"]}

    async def temporal_accepts(token: str) -> bool:
        try:
            client = await stack.client(token, identity="client-api")
            await client.count_workflows("WorkflowType='Greeting'")
            return True
        except RPCError as e:
            if e.status in DENIED:
                return False
            raise
        except RuntimeError as e:
            # The SDK's connect calls get_system_info, refused the same way.
            if "PermissionDenied" in str(e) or "Unauthenticated" in str(e):
                return False
            raise

    admin.login("admin", (creds / "admin-password").read_text().strip())
    old_op = oauth_token(op["client_id"], op["client_secret"])
    old_api = oauth_token("api", api_secret)
    old_kid = jwt_kid(old_op)
    old_static = (certs / "system-token.jwt").read_text().strip()
    offsets = {n: (logs / f"{n}.log").stat().st_size for n in ("bulwark-api", "bulwark-worker")}
    state: dict[str, str] = {}

    async def before() -> str:
        assert old_kid in published_kids(), "the current kid is not published"
        assert await temporal_accepts(old_api), "Temporal refuses the current token before the revoke"
        status, _ = call("GET", f"{api}/api/v1/workflows?limit=1", headers={"Authorization": f"Bearer {old_op}"})
        assert status == 200, f"bulwark-api answered {status} before the revoke"
        return f"kid {old_kid[:12]} published and accepted"

    async def revoke() -> str:
        def run() -> str:
            _, page = admin._open("/confirm?" + urllib.parse.urlencode({"action": "revoke-jwt", "target": "jwt-key"}))
            url, page = admin._open("/revoke/jwt", {"csrf": admin._csrf(page), "confirm": "yes", "target": "jwt-key"})
            assert "/admin/jobs/" in url, f"revoke did not start a job: {url}"
            deadline = time.monotonic() + 180
            while True:
                m = re.search(r'id="job-state">([a-z]+)<', page)
                assert m, f"no job state on {url}"
                if m.group(1) in ("succeeded", "failed"):
                    assert m.group(1) == "succeeded", f"revoke job failed: {re.sub('<[^>]+>', ' ', page)[-600:]}"
                    return url
                assert time.monotonic() < deadline, "revoke job still running after 180 s"
                time.sleep(1)
                _, page = admin._open(url[len(admin.base):])

        url = await asyncio.to_thread(run)
        return f"job {url.rsplit('/', 1)[-1]} succeeded"

    async def jwks_after() -> str:
        kids = published_kids()
        on_disk = {k["kid"] for k in json.loads((certs / "jwks.json").read_text())["keys"]}
        assert old_kid not in kids and old_kid not in on_disk, "the revoked kid is still published"
        assert len(kids) == 1 and kids == on_disk, f"JWKS should hold only the new key: {kids} / {on_disk}"
        state["new_kid"] = next(iter(kids))
        return f"only {state['new_kid'][:12]} published"

    async def old_tokens_refused() -> str:
        status, _ = call("GET", f"{api}/api/v1/workflows?limit=1", headers={"Authorization": f"Bearer {old_op}"})
        assert status == 401, f"bulwark-api accepted a token of the revoked key ({status})"
        deadline = time.monotonic() + 45  # Temporal re-reads jwks.json every 30 s
        while await temporal_accepts(old_api):
            assert time.monotonic() < deadline, "Temporal still accepts a token of the revoked key after 45 s"
            await asyncio.sleep(2)
        return "bulwark-api 401; Temporal PermissionDenied"

    async def static_tokens_reissued() -> str:
        fresh = (certs / "system-token.jwt").read_text().strip()
        assert fresh != old_static and jwt_kid(fresh) == state["new_kid"], "system-token.jwt not re-issued with the new key"
        # The gate re-reads jwks.json every 2 s, Temporal every 30 s: the old token is refused
        # (by the gate) before Temporal knows the new key, so its acceptance is waited for.
        deadline = time.monotonic() + 45
        while True:
            try:
                client = await stack.client(fresh, identity="client-admin")
                await client.count_workflows("WorkflowType='Greeting'")
                break
            except RuntimeError as e:  # the SDK's connect error when Temporal refuses the token
                assert time.monotonic() < deadline, f"Temporal still refuses the re-issued token after 45 s: {e}"
                await asyncio.sleep(2)
        return f"system-token.jwt kid {state['new_kid'][:12]}, accepted by Temporal"

    async def services_recover() -> str:
        # The services notice the kid is gone within their watch interval (10 s) and fetch new
        # tokens; a workflow started now needs both api (start) and worker (poll) to have them.
        new_op = oauth_token(op["client_id"], op["client_secret"])
        assert jwt_kid(new_op) == state["new_kid"], "control still signs with the revoked key"
        deadline = time.monotonic() + 90
        last = ""
        while time.monotonic() < deadline:
            body = json.dumps({"workflow_type": "Greeting", "input": {"name": "after-revoke"}}).encode()
            status, out = call("POST", f"{api}/api/v1/workflows", body,
                               {"Authorization": f"Bearer {new_op}", "Content-Type": "application/json"})
            if status == 201:
                wid = json.loads(out)["workflow_id"]
                status, out = call("GET", f"{api}/api/v1/workflows/{wid}/result?timeout=60s",
                                   headers={"Authorization": f"Bearer {new_op}"})
                if status == 200:
                    break
            last = f"{status}: {out[:200]!r}"
            await asyncio.sleep(2)
        else:
            raise AssertionError(f"no workflow completed within 90 s of the revoke (last {last})")
        for name in ("bulwark-api", "bulwark-worker"):
            with open(logs / f"{name}.log", "rb") as f:
                f.seek(offsets[name])
                text = f.read().decode(errors="replace")
            assert "no longer published" in text, f"{name} did not log noticing the revoked key"
        return "a workflow started after the revoke completed; api and worker fetched new tokens (logs)"

    await runner.run("before: current kid published, accepted by Temporal and bulwark-api", before)
    await runner.run("revoke through the admin page (confirm, CSRF, job)", revoke, timeout=200)
    if runner.failed == 0:
        await runner.run("JWKS holds only the new key at once", jwks_after)
        await runner.run("tokens of the revoked key refused by bulwark-api and Temporal", old_tokens_refused, timeout=60)
        await runner.run("static tokens re-issued with the new key", static_tokens_reissued)
        await runner.run("api and worker recover without a restart", services_recover, timeout=120)
    return runner.summary()


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
