#!/usr/bin/env python3
"""Workflows end to end through bulwark-api: each reference workflow started over HTTPS with
an operator token completes and its result comes back; no secret value reaches Temporal
history or any service log; the worker survives losing its OAuth client and being killed.

Usage: tests/workflows/workflows.py [--env FILE] [--only SUBSTRING]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common import Runner, Skip, load_env  # noqa: E402


class Http:
    def __init__(self, ca: Path):
        self.ctx = ssl.create_default_context(cafile=str(ca))

    def call(self, method: str, url: str, body=None, token: str | None = None, form: dict | None = None, basic=None, timeout=90):
        data = None
        req = urllib.request.Request(url, method=method)
        if body is not None:
            data = json.dumps(body).encode()
            req.add_header("Content-Type", "application/json")
        if form is not None:
            data = urllib.parse.urlencode(form).encode()
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        if basic:
            req.add_header("Authorization", "Basic " + base64.b64encode(f"{basic[0]}:{basic[1]}".encode()).decode())
        try:
            with urllib.request.urlopen(req, data=data, context=self.ctx if url.startswith("https") else None, timeout=timeout) as r:
                text = r.read().decode()
                return r.status, json.loads(text) if text.strip().startswith(("{", "[")) else text
        except urllib.error.HTTPError as e:
            text = e.read().decode()
            try:
                return e.code, json.loads(text)
            except ValueError:
                return e.code, text


async def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--env")
    ap.add_argument("--only")
    args = ap.parse_args()
    env = load_env(args.env)
    for k in ("BULWARK_API_URL", "BULWARK_CONTROL_URL", "BULWARK_OPERATOR_CREDENTIALS"):
        if k not in env:
            sys.exit(f"error: {k} missing; this suite needs bulwark-api and bulwark-control")
    certs = Path(env["BULWARK_CERTS_DIR"])
    http = Http(certs / "ca.crt")
    api = env["BULWARK_API_URL"].rstrip("/")
    control = env["BULWARK_CONTROL_URL"].rstrip("/")
    op = json.loads(Path(env["BULWARK_OPERATOR_CREDENTIALS"]).read_text())
    r = Runner()
    started: list[str] = []

    def token(client_id=op["client_id"], secret=op["client_secret"], scope=None) -> str:
        form = {"grant_type": "client_credentials"}
        if scope:
            form["scope"] = scope
        status, body = http.call("POST", f"{control}/oauth/token", form=form, basic=(client_id, secret))
        assert status == 200, f"token endpoint said {status}: {body}"
        return body["access_token"]

    def start_and_wait(body: dict, wait: str = "60s") -> dict:
        t = token()
        status, res = http.call("POST", f"{api}/api/v1/workflows", body=body, token=t)
        assert status == 201, f"start: {status} {res}"
        started.append(res["workflow_id"])
        status, out = http.call("GET", f"{api}/api/v1/workflows/{res['workflow_id']}/result?timeout={wait}", token=t)
        assert status == 200, f"result: {status} {out}"
        return out

    async def run(name, fn, timeout=180):
        if args.only and args.only not in name:
            return
        await r.run(name, fn, timeout)

    async def greeting():
        out = start_and_wait({"workflow_type": "Greeting", "input": {"name": "Ada"}})
        assert out["status"] == "completed" and "Ada" in json.dumps(out["result"]), out
        return f"result {out['result']}"

    async def database_query():
        out = start_and_wait({"workflow_type": "DatabaseQuery", "input": {"database": "demo", "query": "inventory_summary"},
                              "credentials": [{"name": "demo-db", "credential_type": "basic"}]})
        assert out["status"] == "completed", out
        return f"result {json.dumps(out['result'])[:120]}"

    async def http_call():
        # The URL the worker calls, as the worker sees the API (in compose, a service name).
        target = env.get("BULWARK_API_URL_FOR_WORKER", api).rstrip("/")
        out = start_and_wait({"workflow_type": "HttpCall", "input": {"url": f"{target}/api/v1/workflows?limit=1"},
                              "credentials": [{"name": "demo-oauth", "credential_type": "oauth_client"}]})
        assert out["status"] == "completed", out
        assert out["result"].get("status") == 200, out
        return f"result {json.dumps(out['result'])[:120]}"

    async def missing_credential():
        out = start_and_wait({"workflow_type": "DatabaseQuery", "input": {"database": "demo", "query": "inventory_summary"},
                              "credentials": [{"name": "no-such-credential", "credential_type": "basic"}]})
        assert out["status"] == "failed", out
        text = json.dumps(out)
        assert "no-such-credential" in text, out
        return f"failed fast: {out['failure']['type']}"

    async def api_refusals():
        t = token()
        s1, _ = http.call("GET", f"{api}/api/v1/workflows")
        s2, b2 = http.call("POST", f"{api}/api/v1/workflows", body={"workflow_type": "Greeting", "input": {"password": "x"}}, token=t)
        read_only = token(scope="workflows:read")
        s3, _ = http.call("POST", f"{api}/api/v1/workflows", body={"workflow_type": "Greeting"}, token=read_only)
        assert (s1, s2, s3) == (401, 422, 403), (s1, s2, s3, b2)
        return "anonymous 401, secret in input 422, read-only token starting 403"

    def planted_secrets() -> dict[str, str]:
        found = {}
        files = [Path(env["BULWARK_APP_SECRETS"])] if "BULWARK_APP_SECRETS" in env else []
        if "BULWARK_DEPLOYMENT_SECRETS_DIR" in env:
            files += sorted(Path(env["BULWARK_DEPLOYMENT_SECRETS_DIR"]).glob("deployment-secrets-*.json"))
        for path in files:
            doc = json.loads(path.read_text())
            for name, v in doc.items():
                if isinstance(v, dict):
                    for field, val in v.items():
                        if field in ("password", "client_secret", "api_key", "token") and len(str(val)) >= 8:
                            found[f"{name}.{field}"] = str(val)
                elif "secret" in name and len(str(v)) >= 8:
                    found[name] = str(v)
        found["operator.client_secret"] = op["client_secret"]
        return found

    async def no_secret_leaves():
        secrets = planted_secrets()
        assert len(secrets) >= 4, f"too few planted secrets to be meaningful: {sorted(secrets)}"
        if not started:
            raise Skip("no workflows were started")
        cli = env.get("BULWARK_TEMPORAL_CLI", "temporal")
        histories = ""
        for wid in started:
            p = subprocess.run([cli, "workflow", "show", "--output", "json", "-w", wid, "--address", env["BULWARK_TEMPORAL_ADDRESS"],
                                "--tls-cert-path", str(certs / "temporal-client.crt"), "--tls-key-path", str(certs / "temporal-client.key"),
                                "--tls-ca-path", str(certs / "ca.crt"), "--tls-server-name", env["BULWARK_TEMPORAL_SERVER_NAME"],
                                "--api-key", (certs / "client-token.jwt").read_text().strip()], capture_output=True, text=True, timeout=60)
            assert p.returncode == 0, p.stderr
            histories += p.stdout
            # Payloads are base64 in the JSON history: decode every "data" field too.
            def walk(node):
                nonlocal histories
                if isinstance(node, dict):
                    for k, v in node.items():
                        if k == "data" and isinstance(v, str):
                            try:
                                histories += "\n" + base64.b64decode(v).decode(errors="replace")
                            except ValueError:
                                pass
                        else:
                            walk(v)
                elif isinstance(node, list):
                    for v in node:
                        walk(v)
            try:
                walk(json.loads(p.stdout))
            except ValueError:
                pass
        hits = [name for name, v in secrets.items() if v in histories]
        assert not hits, f"secret values in Temporal history: {hits}"
        logs_dir = Path(env.get("BULWARK_LOGS_DIR", ""))
        logs = sorted(logs_dir.glob("*.log")) if logs_dir.is_dir() else []
        assert logs, "no service logs found to check"
        leaked = [f"{name} in {log.name}" for log in logs for name, v in secrets.items() if v in log.read_text(errors="replace")]
        assert not leaked, f"secret values in logs: {leaked}"
        assert "demo-db" in histories, "history does not even contain the credential reference; the check is vacuous"
        return f"{len(secrets)} planted secrets, {len(started)} histories, {len(logs)} logs: zero hits"

    restart = env.get("BULWARK_RESTART_CMD")
    worker_health = env.get("BULWARK_WORKER_HEALTH_URL")

    def readyz() -> int:
        status, _ = http.call("GET", f"{worker_health}/readyz", timeout=5)
        return status

    async def wait_ready(want: int, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while True:
            try:
                got = readyz()
            except (urllib.error.URLError, ConnectionError):
                got = 0
            if got == want:
                return
            assert time.monotonic() < deadline, f"worker /readyz stayed {got}, wanted {want}"
            await asyncio.sleep(1)

    def psql_bulwark(sql: str) -> None:
        pw = Path(env["BULWARK_BULWARK_DB_PASSWORD_FILE"]).read_text().strip()
        subprocess.run(["psql", "-h", env["BULWARK_PG_HOST"], "-p", env["BULWARK_PG_PORT"], "-U", "bulwark", "-d", "bulwark", "-v", "ON_ERROR_STOP=1", "-c", sql],
                       env={**os.environ, "PGPASSWORD": pw}, check=True, capture_output=True, timeout=30)

    async def worker_loses_its_client():
        if not (restart and worker_health and "BULWARK_BULWARK_DB_PASSWORD_FILE" in env):
            raise Skip("needs BULWARK_RESTART_CMD, BULWARK_WORKER_HEALTH_URL and database access")
        assert readyz() == 200, "worker not ready before the test"
        psql_bulwark("UPDATE oauth_clients SET enabled = false WHERE client_id = 'worker'")
        try:
            # A disabled client keeps only the token it already holds; a fresh process has none.
            proc = await asyncio.create_subprocess_exec(restart, "worker", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
            await proc.communicate()
            await wait_ready(503, 60)
        finally:
            psql_bulwark("UPDATE oauth_clients SET enabled = true WHERE client_id = 'worker'")
        await wait_ready(200, 120)
        out = start_and_wait({"workflow_type": "Greeting", "input": {"name": "recovered"}})
        assert out["status"] == "completed", out
        return "disabled: /readyz 503; re-enabled: ready again without a restart, workflows complete"

    async def worker_killed_mid_workflow():
        if not restart:
            raise Skip("needs BULWARK_RESTART_CMD")
        t = token()
        p = await asyncio.create_subprocess_exec(restart.replace("restart.sh", "down.sh"), "worker", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        await p.communicate()
        status, res = http.call("POST", f"{api}/api/v1/workflows", body={"workflow_type": "Greeting", "input": {"name": "survivor"}}, token=t)
        assert status == 201, res
        started.append(res["workflow_id"])
        status, out = http.call("GET", f"{api}/api/v1/workflows/{res['workflow_id']}/result?timeout=2s", token=t)
        assert status == 202, f"completed without a worker? {status} {out}"
        p = await asyncio.create_subprocess_exec(restart.replace("restart.sh", "up.sh"), "worker", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        await p.communicate()
        status, out = http.call("GET", f"{api}/api/v1/workflows/{res['workflow_id']}/result?timeout=60s", token=t)
        assert status == 200 and out["status"] == "completed" and "survivor" in json.dumps(out["result"]), (status, out)
        return "workflow waited while the worker was down and completed after it came back"

    await run("Greeting through the API completes with its result", greeting)
    await run("DatabaseQuery resolves a basic credential by reference and queries Postgres", database_query)
    await run("HttpCall resolves an oauth_client credential and calls an authenticated HTTPS endpoint", http_call)
    await run("a missing credential fails fast, non-retryable, naming the reference", missing_credential)
    await run("the API refuses anonymous calls, secrets in input and the wrong scope", api_refusals)
    await run("worker killed mid-workflow: the workflow completes after restart", worker_killed_mid_workflow)
    await run("worker's OAuth client disabled: not ready; re-enabled: recovers", worker_loses_its_client, timeout=300)
    await run("no planted secret in any workflow history or service log", no_secret_leaves)
    return r.summary()


if __name__ == "__main__":
    code = asyncio.run(main())
    sys.stdout.flush()
    os._exit(code)
