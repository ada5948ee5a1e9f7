#!/usr/bin/env python3
"""Fault: bulwark-control down for longer than the access-token lifetime, under load.

Control is restarted with a 45 s access-token lifetime (BULWARK_ACCESS_TOKEN_TTL), api and
worker restarted so that they hold such tokens, and 25 workflow starts/s run through the API.
Then control is stopped for longer than a token lives. Passes when:

- api and worker stay ready while their tokens are still valid, then report not ready with a
  reason that names the token (never a bare 500);
- once control is back, both are ready again within 10 s without being restarted;
- every workflow the API accepted completes (failed starts during the outage are counted and
  shown, never lost).

Control is restored with its normal token lifetime at the end, whatever happened.

    tests/faults/control_down.py [--env .bulwark/env] [--rate 25]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common import OperatorToken, Runner, account, load_env  # noqa: E402
from rotation.under_load import Load  # noqa: E402

TTL_S = 45
RECOVERY_BOUND_S = 10.0


def main_sync(args: argparse.Namespace) -> int:
    env = load_env(args.env)
    root = Path(__file__).resolve().parents[2]
    certs = Path(env["BULWARK_CERTS_DIR"])
    ca = certs / "ca.crt"
    api, worker = env["BULWARK_API_URL"], env["BULWARK_WORKER_HEALTH_URL"]
    api_ctx = ssl.create_default_context(cafile=str(ca))

    def sh(*cmd: str, ttl: str | None = None) -> None:
        e = dict(os.environ)
        e.pop("BULWARK_ACCESS_TOKEN_TTL", None)
        if ttl:
            e["BULWARK_ACCESS_TOKEN_TTL"] = ttl
        subprocess.run([str(root / "scripts" / cmd[0]), *cmd[1:]], check=True, env=e,
                       stdout=subprocess.DEVNULL, timeout=180)

    def ready(url: str, ctx: ssl.SSLContext | None) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"{url}/readyz", context=ctx, timeout=5) as r:
                return r.status, r.read().decode().strip()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode(errors="replace").strip()
        except (urllib.error.URLError, OSError) as e:
            return 0, f"unreachable: {e}"

    runner = Runner()
    figures: dict[str, object] = {}
    try:
        sh("restart.sh", "control", ttl=f"{TTL_S}s")
        sh("restart.sh", "api")
        sh("restart.sh", "worker")
        for name, url, ctx in (("api", api, api_ctx), ("worker", worker, None)):
            deadline = time.monotonic() + 60
            while ready(url, ctx)[0] != 200:
                assert time.monotonic() < deadline, f"{name} not ready after its restart"
                time.sleep(0.5)
        # The load's own client: renewed every 15 s (tokens live 45 s now), the last one kept
        # while control is down, as a real client would; its failed starts are in the figures.
        client_token = OperatorToken(env, renew_after=15)
        load = Load(api, ca, client_token, args.rate)
        load.start()
        time.sleep(5)
        before = len(load.started)

        sh("down.sh", "control")
        down_at = time.monotonic()
        not_ready: dict[str, tuple[float, str]] = {}
        # Down for longer than a token lives, and until both have noticed (bounded).
        while time.monotonic() - down_at < TTL_S + 10 or len(not_ready) < 2:
            assert time.monotonic() - down_at < 120, f"still ready 120 s into the outage: {not_ready}"
            for name, url, ctx in (("api", api, api_ctx), ("worker", worker, None)):
                code, body = ready(url, ctx)
                if code != 200 and name not in not_ready:
                    not_ready[name] = (time.monotonic() - down_at, f"{code} {body}")
            time.sleep(1)
        outage_s = time.monotonic() - down_at
        during = len(load.started) - before
        failed_during = len(load.failures)

        sh("up.sh", "control")
        back_at = time.monotonic()
        recovered: dict[str, float] = {}
        while len(recovered) < 2 and time.monotonic() - back_at < 60:
            for name, url, ctx in (("api", api, api_ctx), ("worker", worker, None)):
                if name not in recovered and ready(url, ctx)[0] == 200:
                    recovered[name] = time.monotonic() - back_at
            time.sleep(0.2)
        time.sleep(5)
        achieved = load.finish()
        figures.update(outage_s=outage_s, during=during, failed=failed_during, not_ready=not_ready,
                       recovered=recovered, achieved=achieved, started=len(load.started),
                       failures=load.failures)

        async def reasons() -> str:
            assert set(not_ready) == {"api", "worker"}, f"not ready seen for {sorted(not_ready)} only"
            for name, (at, why) in not_ready.items():
                assert "token" in why or "authenticate" in why, f"{name}'s reason does not name the token: {why}"
                # Ready while the token it held was still valid (it was at most 45 s old).
                assert at > 5, f"{name} went not ready {at:.0f} s into the outage, before its token expired"
            return "; ".join(f"{n} after {a:.0f} s: {w[:90]}" for n, (a, w) in sorted(not_ready.items()))

        async def recovery() -> str:
            assert set(recovered) == {"api", "worker"}, f"not ready 60 s after control returned: {recovered}"
            slow = {n: t for n, t in recovered.items() if t > RECOVERY_BOUND_S}
            assert not slow, f"recovered after more than {RECOVERY_BOUND_S:.0f} s: {slow}"
            return ", ".join(f"{n} {t:.1f} s" for n, t in sorted(recovered.items()))

        async def no_500() -> str:
            five = [f for f in load.failures if f.startswith("HTTP 500")]
            assert not five, f"{len(five)} starts answered 500, e.g. {five[:2]}"
            kinds: dict[str, int] = {}
            for f in load.failures:
                kinds[f.split(":")[0]] = kinds.get(f.split(":")[0], 0) + 1
            return f"failed starts by kind: {kinds or 'none'}"

        async def accounted() -> str:
            done, pending = await asyncio.to_thread(account, api, ca, client_token, load.started,
                                                    120 + 0.05 * len(load.started))
            other = {w: st for w, st in done.items() if st != "completed"}
            assert not pending, f"{len(pending)} accepted workflows never finished, e.g. {pending[:3]}"
            assert not other, f"{len(other)} did not complete: {list(other.items())[:3]}"
            return f"{len(load.started)} accepted workflows, all completed"

        async def go() -> None:
            await runner.run("api and worker report not ready, naming the token", reasons)
            await runner.run(f"api and worker ready within {RECOVERY_BOUND_S:.0f} s of control's return", recovery)
            await runner.run("no start answered 500 during the outage", no_500)
            await runner.run("every accepted workflow completed", accounted, timeout=600)

        asyncio.run(go())
    finally:
        # Control back with its normal token lifetime; api and worker renew from it by themselves.
        # Always a restart: a control still running with 45 s tokens must not outlive this suite.
        try:
            sh("restart.sh", "control")
        except subprocess.SubprocessError as e:
            print(f"could not restore control: {e}", file=sys.stderr)

    if figures:
        rec = figures["recovered"]
        print("\n| fault | starts during it | failed starts | lost workflows | time to recover |")
        print("|---|---|---|---|---|")
        print(f"| control down {figures['outage_s']:.0f} s (token lifetime {TTL_S} s) | {figures['during']} "
              f"| {figures['failed']} | {'0' if runner.failed == 0 else 'see above'} "
              f"| api {rec.get('api', float('nan')):.1f} s, worker {rec.get('worker', float('nan')):.1f} s |")
    return runner.summary()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--env")
    ap.add_argument("--rate", type=float, default=25.0)
    code = main_sync(ap.parse_args())
    sys.stdout.flush()
    os._exit(code)
