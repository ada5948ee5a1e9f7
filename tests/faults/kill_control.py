#!/usr/bin/env python3
"""Fault: `kill -9` of bulwark-control in the middle of a JWT signing-key rotation and of a
server-CA overlap, under load.

Each is started on the admin page while 25 workflow starts/s run through the API; control is
killed while the JWT job waits for Temporal's JWKS refresh (the next key published, not yet
signing), and while the CA job waits for Temporal to present its re-issued certificate (the
new CA issued, everything it signs re-issued). Passes when, for each:

- `bulwark-init verify` is clean with control dead, and Temporal still accepts the static
  system token;
- after control is started again the job is shown `interrupted` with a Resume link (JWT) or
  form (CA);
- resuming finishes with the material the interrupted run made (the same kid; the same new
  CA, no third one), `verify` is clean, and Temporal accepts the current token; the CA job then
  waits for the operator, and ending the overlap succeeds with `verify` clean;
- no start failed and every accepted workflow completed (tokens already held stay valid
  while control is down).

    tests/faults/kill_control.py [--env .bulwark/env] [--rate 25]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Awaitable, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common import OperatorToken, Runner, Stack, account, load_env, manifest_item  # noqa: E402
from rotation.under_load import Admin, Load  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def main_sync(args: argparse.Namespace) -> int:
    env = load_env(args.env)
    certs = Path(env["BULWARK_CERTS_DIR"])
    ca = certs / "ca.crt"
    api = env["BULWARK_API_URL"]
    state = Path(env["BULWARK_LOGS_DIR"]).parent
    creds = Path(env["BULWARK_OPERATOR_CREDENTIALS"]).parent
    init = Path(os.environ.get("BULWARK_BIN_DIR", ROOT / "target" / "debug")) / "bulwark-init"
    stack, runner = Stack(env), Runner()

    # Renewed every 10 minutes, the last one kept while control is dead (as a real client).
    token = OperatorToken(env)

    def verify() -> subprocess.CompletedProcess:
        return subprocess.run([str(init), "verify", "--dir", str(certs)], capture_output=True, text=True,
                              env={**os.environ, "BULWARK_TEMPORAL_ADDRESS": env["BULWARK_TEMPORAL_ADDRESS"],
                                   "BULWARK_NAMESPACES": env.get("BULWARK_NAMESPACES", "default")})

    async def temporal_accepts_system_token() -> None:
        client = await stack.client((certs / "system-token.jwt").read_text().strip(), identity="client-admin")
        await client.count_workflows()

    admin = Admin(env["BULWARK_ADMIN_URL"].rstrip("/"), ca)
    admin.login("admin", (creds / "admin-password").read_text().strip())

    def start_rotation() -> tuple[str, str]:
        """Confirm and post a JWT rotation; return the job's path and first page, without waiting."""
        _, page = admin._open("/confirm?" + urllib.parse.urlencode({"action": "jwt", "target": "jwt-key"}))
        url, page = admin._open("/rotate/jwt", {"csrf": admin._csrf(page), "confirm": "yes", "target": "jwt-key"})
        assert "/admin/jobs/" in url, f"no job page after starting the rotation: {url}"
        return url[len(admin.base):], page

    def job(path: str) -> tuple[str, str, str]:
        _, page = admin._open(path)
        st = re.search(r'id="job-state">([a-z]+)<', page)
        stage = re.search(r'id="job-stage">([^<]*)<', page)
        assert st and stage, f"no job state on {path}"
        return st.group(1), stage.group(1), page

    def ca_fingerprint() -> str:
        return manifest_item(certs, "server-ca")["fingerprint"]

    def wait_job(path: str, until: str | None = None, seconds: float = 300) -> tuple[str, str, str]:
        """Poll a job page until it leaves `running` (or reaches stage `until` while running)."""
        deadline = time.monotonic() + seconds
        while True:
            j = job(path)
            if (until and j[1] == until) or j[0] != "running":
                return j
            assert time.monotonic() < deadline, f"job {path} still {j[0]} at {j[1]} after {seconds:.0f} s"
            time.sleep(0.2 if until else 1)

    def kill_and_restart(prefix: str) -> None:
        """kill -9 control; with it dead, run verify and ask Temporal; after 10 s start it again."""
        pid = int((state / "run" / "bulwark-control.pid").read_text().strip())
        os.kill(pid, signal.SIGKILL)
        facts["killed"] = True
        killed_at = time.monotonic()
        time.sleep(1)
        facts[f"{prefix}verify_dead"] = verify()
        try:
            asyncio.run(temporal_accepts_system_token())
            facts[f"{prefix}temporal_dead"] = "accepted"
        except Exception as e:  # noqa: BLE001 - reported by the check below
            facts[f"{prefix}temporal_dead"] = f"{type(e).__name__}: {e}"
        time.sleep(max(0.0, 10 - (time.monotonic() - killed_at)))  # down for 10 s under load
        subprocess.run([str(ROOT / "scripts" / "up.sh"), "control"], check=True, stdout=subprocess.DEVNULL, timeout=180)
        facts["killed"] = False

    def published_kid(page: str) -> str:
        m = re.search(r"new key kid (\S+) published", page)
        assert m, "the job log does not name the published key"
        return m.group(1)

    load = Load(api, ca, token, args.rate)
    load.start()
    facts: dict[str, object] = {"killed": False}
    try:
        time.sleep(3)
        path, _ = start_rotation()
        j = wait_job(path, until="propagating", seconds=60)
        assert j[0] == "running", f"job ended before the kill: {j[0]} at {j[1]}"
        facts["kid"] = published_kid(j[2])
        kill_and_restart("")
        facts["after_restart"] = job(path)
        m = re.search(r'id="resume-job" href="/admin([^"]+)"', facts["after_restart"][2])
        facts["resume"] = None
        if m:
            _, page = admin._open(m.group(1).replace("&amp;", "&"))
            url, page = admin._open("/rotate/jwt", {"csrf": admin._csrf(page), "confirm": "yes", "target": "jwt-key"})
            rpath = url[len(admin.base):]
            deadline = time.monotonic() + 300
            while (r := job(rpath))[0] == "running":
                assert time.monotonic() < deadline, "the resumed job never finished"
                time.sleep(1)
            facts["resume"] = r
            facts["interrupted_after_resume"] = job(path)
        facts["verify_after"] = verify()

        # The server CA: killed while Temporal is being watched for its re-issued certificate.
        # (Sessions live in Postgres: the one logged in above survives the restarts.)
        facts["ca_before"] = ca_fingerprint()
        _, page = admin._open("/confirm?" + urllib.parse.urlencode({"action": "ca", "target": "server-ca"}))
        url, _ = admin._open("/rotate/ca", {"csrf": admin._csrf(page), "confirm": "yes", "target": "server-ca"})
        assert "/admin/jobs/" in url, f"no job page after starting the CA rotation: {url}"
        cpath = url[len(admin.base):]
        j = wait_job(cpath, until="propagating", seconds=120)
        assert j[0] == "running", f"CA job ended before the kill: {j[0]} at {j[1]}"
        facts["ca_issued"] = ca_fingerprint()
        kill_and_restart("ca_")
        facts["ca_after_restart"] = page_job = job(cpath)
        facts["ca_resume"] = None
        if 'id="resume-ca"' in page_job[2]:
            admin._open("/rotate/ca/resume", {"csrf": admin._csrf(page_job[2]), "confirm": "yes",
                                              "job": cpath.rsplit("/", 1)[1]})
            facts["ca_resume"] = wait_job(cpath)
            facts["ca_after_resume"] = ca_fingerprint()
            facts["ca_verify_waiting"] = verify()
            if facts["ca_resume"][0] == "waiting":
                admin._open("/rotate/ca/finish", {"csrf": admin._csrf(facts["ca_resume"][2]), "confirm": "yes",
                                                  "job": cpath.rsplit("/", 1)[1]})
                facts["ca_finish"] = wait_job(cpath)
        facts["ca_verify_after"] = verify()
        time.sleep(3)
    finally:
        achieved = load.finish()
        if facts["killed"]:
            subprocess.run([str(ROOT / "scripts" / "up.sh"), "control"], stdout=subprocess.DEVNULL, timeout=180)

    def clean_while_dead(prefix: str) -> Callable[[], Awaitable[str]]:
        async def check() -> str:
            v = facts[f"{prefix}verify_dead"]
            assert v.returncode == 0, f"verify with control killed: rc {v.returncode}: {(v.stdout + v.stderr)[-400:]}"
            assert facts[f"{prefix}temporal_dead"] == "accepted", \
                f"Temporal refused the system token: {facts[f'{prefix}temporal_dead']}"
            return "verify clean, Temporal accepts the system token"
        return check

    async def ca_shown_interrupted() -> str:
        st, stage, page = facts["ca_after_restart"]
        assert st == "interrupted", f"CA job state after restart: {st}"
        assert 'id="resume-ca"' in page, "no Resume form on the interrupted CA job"
        return f"interrupted at stage {stage}, Resume offered"

    async def ca_resumed() -> str:
        assert facts["ca_resume"], "not resumed"
        st, _, page = facts["ca_resume"]
        assert st == "waiting", f"resumed CA job {st}: {re.sub('<[^>]+>', ' ', page)[-400:]}"
        assert "had begun the overlap" in page, "the resume did not continue the begun overlap"
        assert facts["ca_issued"] != facts["ca_before"], "the CA was not rotated before the kill"
        assert facts["ca_after_resume"] == facts["ca_issued"], "the resume issued another CA"
        v = facts["ca_verify_waiting"]
        assert v.returncode == 0, f"verify during the resumed overlap: rc {v.returncode}: {(v.stdout + v.stderr)[-400:]}"
        st, _, page = facts.get("ca_finish", ("-", "", ""))
        assert st == "succeeded", f"ending the overlap: {st}: {re.sub('<[^>]+>', ' ', page)[-400:]}"
        v = facts["ca_verify_after"]
        assert v.returncode == 0, f"verify after the overlap: rc {v.returncode}: {(v.stdout + v.stderr)[-400:]}"
        await temporal_accepts_system_token()
        return f"CA {str(facts['ca_issued'])[:12]} kept (no third CA); overlap ended; verify clean"

    async def shown_interrupted() -> str:
        st, stage, page = facts["after_restart"]
        assert st == "interrupted", f"job state after restart: {st}"
        assert 'id="resume-job"' in page, "no Resume link on the interrupted job"
        return f"interrupted at stage {stage}, Resume offered"

    async def resumed() -> str:
        assert facts["resume"], "not resumed"
        st, _, page = facts["resume"]
        assert st == "succeeded", f"resumed job {st}: {re.sub('<[^>]+>', ' ', page)[-400:]}"
        assert published_kid(page) == facts["kid"], "the resumed job generated another key instead of resuming"
        v = facts["verify_after"]
        assert v.returncode == 0, f"verify after resume: rc {v.returncode}: {(v.stdout + v.stderr)[-400:]}"
        await temporal_accepts_system_token()
        st_old, _, old_page = facts["interrupted_after_resume"]
        assert st_old == "interrupted" and 'id="resume-job"' not in old_page, \
            "the interrupted job still offers Resume after the resumed run finished"
        return f"kid {str(facts['kid'])[:12]} now signs; verify clean; re-issued token accepted"

    async def no_failed_start() -> str:
        assert not load.failures, f"{len(load.failures)} failed starts, e.g. {load.failures[:3]}"
        return f"{len(load.started)} starts at {achieved:.1f}/s, 0 failed"

    async def accounted() -> str:
        done, pending = await asyncio.to_thread(account, api, ca, token, load.started, 120 + 0.05 * len(load.started))
        other = {w: st for w, st in done.items() if st != "completed"}
        assert not pending, f"{len(pending)} accepted workflows never finished, e.g. {pending[:3]}"
        assert not other, f"{len(other)} did not complete: {list(other.items())[:3]}"
        return f"{len(load.started)} accepted workflows, all completed"

    async def go() -> None:
        await runner.run("verify clean and Temporal accepting tokens with control killed mid JWT rotation",
                         clean_while_dead(""))
        await runner.run("the job is shown interrupted after the restart", shown_interrupted)
        await runner.run("resuming finishes the rotation with the published key", resumed, timeout=60)
        await runner.run("verify clean and Temporal accepting tokens with control killed mid CA overlap",
                         clean_while_dead("ca_"))
        await runner.run("the CA job is shown interrupted after the restart", ca_shown_interrupted)
        await runner.run("resuming the CA job continues its overlap; ending it succeeds", ca_resumed, timeout=60)
        await runner.run("no start failed while control was killed", no_failed_start)
        await runner.run("every accepted workflow completed", accounted, timeout=600)

    asyncio.run(go())
    print("\n| fault | starts during it | failed starts | lost workflows | time to recover |")
    print("|---|---|---|---|---|")
    print(f"| kill -9 of control mid JWT rotation, then mid server-CA overlap | {len(load.started)} | {len(load.failures)} "
          f"| {'0' if runner.failed == 0 else 'see above'} | control down 10 s each; both resumed |")
    return runner.summary()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--env")
    ap.add_argument("--rate", type=float, default=25.0)
    code = main_sync(ap.parse_args())
    sys.stdout.flush()
    os._exit(code)
