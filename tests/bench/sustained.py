#!/usr/bin/env python3
"""Benchmark (not a test): the start rate the native stack sustains through bulwark-api and
bulwark-gate, and where the CPU goes.

For each rate in --rates, Greeting workflows are started through the API at that rate for
--duration seconds; then the run waits (bounded) for every started workflow to finish. A rate
is *held* when it had 0 failed starts, reached 95 % of the target, and every workflow
completed within 60 s of the load ending. Per step it prints the CPU share of Temporal,
Postgres (all backends), each Bulwark process and the load generator itself (share of the
whole machine, so 100 % = every core busy), the CPU milliseconds each costs per start, and
each step's cost per start against the first step (the baseline of this run). The process
with the largest share at the highest held rate is named as the bottleneck.

    tests/bench/sustained.py [--env .bulwark/env] [--rates 25,40,60] [--duration 600]

The issue's figure is `--duration 600`; shorter steps are for a quick look.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common import OperatorToken, Stack, load_env  # noqa: E402
from rotation.under_load import Load  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
CORES = os.cpu_count() or 1


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime
    except (OSError, IndexError, ValueError):
        return 0.0


def postgres_seconds() -> float:
    total = 0.0
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if (p / "comm").read_text().strip() == "postgres":
                    total += cpu_seconds(int(p.name))
            except OSError:
                continue
    return total


def sample(pids: dict[str, int]) -> dict[str, float]:
    s = {name: cpu_seconds(pid) for name, pid in pids.items()}
    s["postgres"] = postgres_seconds()
    s["load generator"] = cpu_seconds(os.getpid())
    return s


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--env")
    ap.add_argument("--rates", default="25,40,60")
    ap.add_argument("--duration", type=float, default=600.0)
    args = ap.parse_args()
    env = load_env(args.env)
    certs = Path(env["BULWARK_CERTS_DIR"])
    run = Path(env["BULWARK_LOGS_DIR"]).parent / "run"
    api = env["BULWARK_API_URL"]
    pids = {p.stem: int(p.read_text().strip()) for p in sorted(run.glob("*.pid")) if p.stem != "postgres"}

    token = OperatorToken(env)
    client = await Stack(env).client((certs / "system-token.jwt").read_text().strip(), identity="client-admin")
    rows = []
    for rate in [float(r) for r in args.rates.split(",")]:
        began = time.time() - 1
        load = Load(api, certs / "ca.crt", token, rate, threads=max(12, int(rate)))
        before, t0 = sample(pids), time.monotonic()
        load.start()
        await asyncio.sleep(args.duration)
        achieved = await asyncio.to_thread(load.finish)
        after, elapsed = sample(pids), time.monotonic() - t0
        since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(began))
        query = f"WorkflowType = 'Greeting' AND StartTime >= '{since}' AND ExecutionStatus = 'Running'"
        deadline, running = time.monotonic() + 60, -1
        while time.monotonic() < deadline:
            running = (await client.count_workflows(query)).count
            if running == 0:
                break
            await asyncio.sleep(1)
        started = max(len(load.started), 1)
        share = {k: (after[k] - before.get(k, 0.0)) / (elapsed * CORES) for k in after}
        per_start = {k: 1000 * (after[k] - before.get(k, 0.0)) / started for k in after}
        held = not load.failures and achieved >= 0.95 * rate and running == 0
        rows.append((rate, achieved, len(load.failures), running, held, share, per_start))
        print(f"rate {rate:.0f}/s: achieved {achieved:.1f}/s, {len(load.failures)} failed, "
              f"{running} still running 60 s after, {'held' if held else 'NOT held'}", flush=True)
        if not held:
            break

    names = list(rows[0][5])
    print("\n| target/s | achieved/s | failed | held | " + " | ".join(f"{n} CPU %" for n in names) + " |")
    print("|---" * (4 + len(names)) + "|")
    for rate, achieved, failed, _, held, share, _ in rows:
        print(f"| {rate:.0f} | {achieved:.1f} | {failed} | {'yes' if held else 'no'} | "
              + " | ".join(f"{100 * share[n]:.1f}" for n in names) + " |")
    base = rows[0][6]
    print("\nCPU ms per start (x vs the first step):")
    for rate, *_, per_start in rows:
        print(f"  {rate:.0f}/s: " + ", ".join(
            f"{n} {per_start[n]:.1f} ({per_start[n] / base[n]:.2f}x)" if base[n] else f"{n} {per_start[n]:.1f}"
            for n in names))
    held_rows = [r for r in rows if r[4]]
    if held_rows:
        top = held_rows[-1]
        bottleneck = max(top[5], key=top[5].get)
        print(f"\nhighest held rate: {top[0]:.0f}/s for {args.duration:.0f} s on {CORES} cores; "
              f"largest CPU share there: {bottleneck} ({100 * top[5][bottleneck]:.0f} % of the machine)")
    else:
        print("\nno rate held")
    return 0


if __name__ == "__main__":
    code = asyncio.run(main())
    sys.stdout.flush()
    os._exit(code)
