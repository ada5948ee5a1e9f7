#!/usr/bin/env python3
"""Fault: clock skew between the token issuer (control) and a verifier (bulwark-api).

A second bulwark-api (same configuration as the stack's, on another loopback port) runs with
its clock set back by libfaketime (Debian's `faketime`), so a token control has just issued
looks issued in the future to it. Passes when:

- within the leeway (60 s: `bulwark_pki::jwt::DEFAULT_LEEWAY`), 30 s behind, the fresh token
  is accepted;
- beyond it, 120 s behind, the token is refused with 401 and a message that says the token
  is not valid yet (a clock problem), not just "invalid";
- the stack's own API, on the true clock, accepts the same token throughout.

    tests/faults/clock_skew.py [--env .bulwark/env]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import ssl
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common import Runner, Skip, load_env, oauth_token, start_api, stop_process  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
PORT = 18444


def libfaketime() -> Path | None:
    for d in ("/usr/lib/x86_64-linux-gnu/faketime", "/usr/lib/aarch64-linux-gnu/faketime", "/usr/lib/faketime"):
        p = Path(d) / "libfaketime.so.1"
        if p.exists():
            return p
    return None


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--env")
    args = ap.parse_args()
    env = load_env(args.env)
    certs = Path(env["BULWARK_CERTS_DIR"])
    ca = certs / "ca.crt"
    control, api = env["BULWARK_CONTROL_URL"], env["BULWARK_API_URL"]
    op = json.loads(Path(env["BULWARK_OPERATOR_CREDENTIALS"]).read_text())
    ctx = ssl.create_default_context(cafile=str(ca))
    runner = Runner()

    def fresh_token() -> str:
        return oauth_token(control, certs, op["client_id"], op["client_secret"])

    def call(base: str, token: str) -> tuple[int, str]:
        req = urllib.request.Request(f"{base}/api/v1/workflows?limit=1")
        req.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=15) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode(errors="replace")

    lib = libfaketime()

    def skewed_api(offset_s: int) -> subprocess.Popen:
        if lib is None:
            raise Skip("libfaketime is not installed (Debian package faketime; scripts/install.sh installs it)")
        return start_api(env, PORT, f"bulwark-api-skewed{offset_s:+d}.log", {
            "LD_PRELOAD": str(lib), "FAKETIME": f"{offset_s:+d}",
            # Only the wall clock is skewed; timers and timeouts keep real time.
            "FAKETIME_DONT_FAKE_MONOTONIC": "1", "FAKETIME_NO_CACHE": "1",
        })

    async def through_skewed_api(offset_s: int) -> tuple[int, str, str]:
        """A fresh token sent to an api `offset_s` off; the stack's own api (true clock) must
        accept the same token, so a refusal can only come from the skew."""
        p = await asyncio.to_thread(skewed_api, offset_s)
        try:
            token = fresh_token()
            code, body = await asyncio.to_thread(call, f"https://127.0.0.1:{PORT}", token)
            true_code, _ = await asyncio.to_thread(call, api, token)
            assert true_code == 200, f"the stack's api (true clock) refused the token: {true_code}"
            return code, body, token
        finally:
            stop_process(p)

    async def within_leeway() -> str:
        code, body, _ = await through_skewed_api(-30)
        assert code == 200, f"30 s of skew (leeway 60 s) refused: {code} {body[:200]}"
        return "a fresh token accepted by an api 30 s behind"

    async def beyond_leeway() -> str:
        code, body, token = await through_skewed_api(-120)
        assert code == 401, f"120 s of skew (leeway 60 s) not refused: {code} {body[:200]}"
        message = json.loads(body).get("message", "")
        assert "not valid yet" in message and "clock" in message, f"the refusal does not say why: {message!r}"
        assert token not in body, "the refusal echoes the token"
        return f"401: {message[:120]}"

    if lib is None and shutil.which("faketime") is None:
        print("note: libfaketime missing; the checks below are skipped")
    await runner.run("clock 30 s behind the issuer (within the leeway): token accepted", within_leeway)
    await runner.run("clock 120 s behind the issuer (beyond the leeway): refused, saying why", beyond_leeway)
    return runner.summary()


if __name__ == "__main__":
    code = asyncio.run(main())
    sys.stdout.flush()
    os._exit(code)
