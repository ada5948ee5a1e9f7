#!/usr/bin/env python3
"""Recovery from the command line after a leaf expired, with the admin page unreachable.

Against the native stack (scripts/up.sh): bulwark-control is stopped (no page), the Temporal
server certificate is re-issued with a lifetime just over Temporal's TLS refresh interval
and allowed to expire; fresh
connections are then refused and `bulwark-init verify` names the expired item. `bulwark-init
rotate temporal-server` restores service: the new certificate is served on a fresh handshake,
a fresh client works again and `verify` is clean. Control is started again at the end.

    tests/rotation/recovery.py [--env .bulwark/env]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import ssl
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common import ROOT, Runner, Stack, load_env, manifest_item, server_fingerprint  # noqa: E402


def refresh_seconds(value: str) -> int:
    """Temporal's TLS refreshInterval as the stack was started with it (`10s`, `1m`, `90`)."""
    units = {"s": 1, "m": 60, "h": 3600}
    return int(value[:-1]) * units[value[-1]] if value[-1] in units else int(value)


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--env")
    args = ap.parse_args()
    env = load_env(args.env)
    certs = Path(env["BULWARK_CERTS_DIR"])
    address, server_name = env["BULWARK_TEMPORAL_ADDRESS"], env["BULWARK_TEMPORAL_SERVER_NAME"]
    init = Path(os.environ.get("BULWARK_BIN_DIR", ROOT / "target" / "debug")) / "bulwark-init"
    # The settings the stack was generated with, so only the lifetime differs.
    base_env = {**os.environ, "BULWARK_TEMPORAL_ADDRESS": address,
                "BULWARK_NAMESPACES": env.get("BULWARK_NAMESPACES", "default")}
    stack, runner = Stack(env), Runner()
    system_token = (certs / "system-token.jwt").read_text().strip()

    def cli(*argv: str, **extra: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(init), *argv], env={**base_env, **extra}, capture_output=True, text=True)

    async def fresh_client_lists() -> None:
        client = await stack.client(system_token, identity="client-admin")
        await client.count_workflows()

    async def served(fingerprint: str, within: float) -> None:
        deadline = time.monotonic() + within
        while True:
            try:
                if server_fingerprint(address, server_name, certs) == fingerprint:
                    return
            except (ssl.SSLError, OSError):
                pass
            assert time.monotonic() < deadline, f"{fingerprint[:12]} not served within {within:.0f}s"
            await asyncio.sleep(1)

    stopped = subprocess.run([str(ROOT / "scripts" / "down.sh"), "control"], capture_output=True, text=True)
    try:
        async def expire() -> str:
            assert stopped.returncode == 0, f"down.sh control: {stopped.stderr[-300:]}"
            # Long enough for Temporal to load it (its TLS refresh interval) before it expires.
            lifetime = refresh_seconds(env.get("BULWARK_TLS_REFRESH_INTERVAL", "1m")) + 40
            out = cli("rotate", "temporal-server", "--dir", str(certs), BULWARK_LEAF_LIFETIME=f"{lifetime}s")
            assert out.returncode == 0, out.stderr[-500:]
            short = manifest_item(certs, "temporal-server")
            await served(short["fingerprint"], lifetime - 10)
            await fresh_client_lists()  # valid for now
            not_after = datetime.fromisoformat(short["not_after"].replace("Z", "+00:00"))
            await asyncio.sleep(max(0.0, (not_after - datetime.now(timezone.utc)).total_seconds()) + 2)
            try:
                server_fingerprint(address, server_name, certs)
                raise AssertionError("a handshake with the expired certificate succeeded")
            except ssl.SSLCertVerificationError as e:
                assert "expired" in str(e), str(e)
                refusal = e.verify_message
            try:
                await fresh_client_lists()
                raise AssertionError("a fresh client connected to a server with an expired certificate")
            except AssertionError:
                raise
            except Exception as e:  # noqa: BLE001 - the SDK's connection error is the expected outcome
                client_error = type(e).__name__
            v = cli("verify", "--dir", str(certs))
            assert v.returncode != 0 and "temporal-server" in v.stdout + v.stderr and "expired" in v.stdout + v.stderr, \
                f"verify did not name the expired item: {v.returncode} {v.stdout[-300:]}"
            return f"control stopped; a {lifetime} s certificate served, then expired: handshake '{refusal}', SDK {client_error}, verify exit {v.returncode} naming temporal-server"

        async def restore() -> str:
            before = manifest_item(certs, "temporal-server")["fingerprint"]
            out = cli("rotate", "temporal-server", "--dir", str(certs))
            assert out.returncode == 0, out.stderr[-500:]
            fresh = manifest_item(certs, "temporal-server")
            assert fresh["fingerprint"] != before
            t0 = time.monotonic()
            await served(fresh["fingerprint"], 120)
            await fresh_client_lists()
            v = cli("verify", "--dir", str(certs))
            assert v.returncode == 0, f"verify after recovery: {v.stdout[-300:]}"
            return f"bulwark-init rotate temporal-server: new certificate (until {fresh['not_after']}) served after {time.monotonic() - t0:.0f}s, fresh client works, verify clean"

        await runner.run("a leaf left to expire takes the frontend down for new connections", expire, timeout=240)
        await runner.run("the command line restores service with the page unreachable", restore, timeout=240)
    finally:
        up = subprocess.run([str(ROOT / "scripts" / "up.sh"), "control"], capture_output=True, text=True)
        if up.returncode != 0:
            print(f"warning: restarting control failed: {up.stderr[-300:]}", flush=True)
    return runner.summary()


if __name__ == "__main__":
    code = asyncio.run(main())
    sys.stdout.flush()
    os._exit(code)
