#!/usr/bin/env python3
"""The API contract: bulwark-api's OpenAPI document against the running server.

Runs schemathesis (its own venv, version pinned in scripts/versions.env) with every check
against a second bulwark-api on 127.0.0.1:18445 that has the stack's configuration except a
2 s BULWARK_API_MAX_WAIT, so `/result` on a workflow that never runs answers within the
client's timeout. Passes when schemathesis finds nothing: no 5xx, no status the document does
not list, no body or header unlike the document, no schema-valid request refused, no
schema-invalid request accepted, no route that ignores a missing token. Before that, the
document's pattern for secret-looking input keys is checked against the live server key by key
(both sides must agree, or generated inputs would be refused).

    tests/contract/contract.py [--env .bulwark/env] [--max-examples N]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common import load_env, oauth_token, start_api, stop_process  # noqa: E402

HERE = Path(__file__).resolve().parent
PORT = 18445


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--env")
    ap.add_argument("--max-examples", type=int, default=None, help="override the config's per-operation bound")
    ap.add_argument("--st", default=os.environ.get("BULWARK_SCHEMATHESIS"), help="the schemathesis CLI (st)")
    args = ap.parse_args()
    if not args.st or not Path(args.st).exists():
        print(f"FAILED: schemathesis CLI not found ({args.st!r}); scripts/install.sh installs it")
        return 1
    env = load_env(args.env)
    certs = Path(env["BULWARK_CERTS_DIR"])
    ca = certs / "ca.crt"
    op = json.loads(Path(env["BULWARK_OPERATOR_CREDENTIALS"]).read_text())
    token = oauth_token(env["BULWARK_CONTROL_URL"], certs, op["client_id"], op["client_secret"])
    base = f"https://127.0.0.1:{PORT}"
    ctx = ssl.create_default_context(cafile=str(ca))

    def call(method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        req = urllib.request.Request(f"{base}{path}", method=method,
                                     data=None if body is None else json.dumps(body).encode())
        req.add_header("Authorization", f"Bearer {token}")
        if body is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=20) as r:
                return r.status, json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")

    failures = 0
    api = start_api(env, PORT, "bulwark-api-contract.log", {"BULWARK_API_MAX_WAIT": "2s"})
    try:
        status, doc = call("GET", "/api/v1/openapi.json")
        assert status == 200, f"openapi.json: {status}"
        pattern = doc["components"]["schemas"]["InputObject"]["propertyNames"]["not"]["pattern"]
        # Keys on both sides of the rule: exact names, suffixes after _ or -, any case, and
        # near misses that must be accepted (no separator, a plural, a trailing newline).
        keys = ["password", "Password", "db_password", "db-PASSWORD", "API-Key", "x_api_key", "apikey",
                "access_token", "client_secret", "private_key", "authorization", "bearer",
                "name", "mytoken", "passwords", "tokenizer", "password\n", "key", "publickey"]
        t0 = time.monotonic()
        for k in keys:
            code, body = call("POST", "/api/v1/workflows", {"workflow_type": "Greeting", "input": {"n": {k: "x"}}})
            server_refuses = code == 422
            schema_refuses = re.search(pattern, k) is not None
            ok = server_refuses == schema_refuses and code in (201, 422)
            print(f"{'ok  ' if ok else 'FAIL'} - input key {k!r}: server {code}, document {'refuses' if schema_refuses else 'allows'}")
            failures += not ok
        print(f"secret-key pattern checked against the server for {len(keys)} keys in {time.monotonic() - t0:.1f}s")

        with tempfile.TemporaryDirectory(prefix="bulwark-contract-") as tmp:
            report = Path(tmp) / "report.ndjson"
            cmd = [args.st, "--config-file", str(HERE / "schemathesis.toml"), "run", f"{base}/api/v1/openapi.json",
                   "--tls-verify", str(ca), "--checks", "all", "--report", "ndjson",
                   "--report-ndjson-path", str(report), "--no-color"]
            if args.max_examples:
                cmd += ["--max-examples", str(args.max_examples)]
            t0 = time.monotonic()
            # The token reaches schemathesis through its config's ${BULWARK_CONTRACT_TOKEN},
            # not argv, where any local user could read it.
            r = subprocess.run(cmd, env={**os.environ, "BULWARK_CONTRACT_TOKEN": token}, timeout=900,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            out = r.stdout.replace(token, "<token>")
            print(out[-6000:])
            statuses: dict[int, int] = {}
            if report.exists():
                for line in report.read_text().splitlines():
                    for m in re.finditer(r'"status_code":\s*(\d{3})', line):
                        statuses[int(m.group(1))] = statuses.get(int(m.group(1)), 0) + 1
            total = sum(statuses.values())
            print(f"schemathesis: exit {r.returncode} in {time.monotonic() - t0:.0f}s; responses by status: "
                  + ", ".join(f"{s}: {n}" for s, n in sorted(statuses.items())))
            server_errors = sum(n for s, n in statuses.items() if s >= 500)
            if r.returncode != 0:
                print("FAIL - schemathesis found contract violations (above)")
                failures += 1
            if server_errors:
                print(f"FAIL - {server_errors} server errors")
                failures += 1
            if total < 100:
                print(f"FAIL - only {total} responses recorded; the run did not exercise the API")
                failures += 1
    finally:
        stop_process(api)
    print(f"{'0 failures' if not failures else f'{failures} failures'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
