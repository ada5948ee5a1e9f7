#!/usr/bin/env python3
"""Fault: the certs directory's file system is full.

The certs directory is copied (`cp -a`: same bytes, modes and owners) into a small tmpfs,
which is bind-mounted over it, so every service keeps reading identical files. A filler file
beside the copy (on the same tmpfs, not in the certs directory) takes every free page. Then,
as an operator would: the api server certificate and the JWT signing key are rotated on the
admin page, and the api server certificate with `bulwark-init rotate`. Passes when:

- each rotation fails, and its message (the job's error, the CLI's stderr) names the file
  under the certs directory it could not write and says the file system is full;
- every file of the certs directory is byte-identical to before (sha256, modes, owners), and
  no temporary file is left; `bulwark-init verify` is clean;
- Temporal (behind the gate, and its own frontend), api, control and the admin listener serve
  the certificates they served before, and Temporal accepts the current system token;
- with the filler removed the same two admin-page rotations succeed (the failure was the full
  disk, not a broken rotation): verify clean, the re-issued token accepted, the api serves
  its new certificate.

The certs directory is always restored (in a `finally`): the tmpfs's files are copied back
over the original directory file by file (atomic renames), then the mounts are removed and
the check is that the path is the original directory again, holding what services last read.

Skips (exit 0) when not run as root or when mounting is not permitted.

    tests/faults/disk_full.py [--env .bulwark/env]
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import fcntl
import hashlib
import html
import os
import re
import shutil
import signal
import socket
import ssl
import stat
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from common import Runner, Skip, Stack, load_env, manifest_item, server_fingerprint  # noqa: E402
from rotation.under_load import Admin  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
# The copy of the certs directory takes ~100 KiB; the rest is the filler's.
TMPFS_SIZE = "1m"
FILLER_MAX = 4 << 20  # stop filling at this many bytes even if writes still succeed
LOCK = ".lock"


def snapshot(d: Path) -> dict[str, tuple[str, int, int, int]]:
    """name -> (sha256, mode, uid, gid) of every entry, and of the directory itself as '.'."""
    out = {}
    for p in [d, *sorted(d.iterdir())]:
        st = p.lstat()
        digest = hashlib.sha256(p.read_bytes()).hexdigest() if stat.S_ISREG(st.st_mode) else "-"
        out["." if p == d else p.name] = (digest, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)
    return out


def diff(a: dict, b: dict) -> list[str]:
    return [f"{n}: {a.get(n)} -> {b.get(n)}" for n in sorted(set(a) | set(b)) if a.get(n) != b.get(n)]


def tls_fingerprint(url_or_address: str, ca: Path) -> str:
    """SHA-256 of the leaf an HTTPS listener presents on a fresh, verified handshake."""
    u = urllib.parse.urlsplit(url_or_address if "//" in url_or_address else f"//{url_or_address}")
    ctx = ssl.create_default_context(cafile=str(ca))
    with socket.create_connection((u.hostname, u.port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=u.hostname) as s:
            return hashlib.sha256(s.getpeercert(binary_form=True)).hexdigest()


def mount(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["mount", *args], capture_output=True, text=True, timeout=30)


def umount(path: Path, lazy: bool = False) -> str:
    """Unmount; lazily if asked or busy. A lazy unmount detaches the path at once: files opened
    by path afterwards are the original directory's; a descriptor a process still holds keeps
    reading the tmpfs's copy, which holds the same bytes (restore copies back before
    unmounting), and the tmpfs goes away when the last such descriptor is closed."""
    if lazy:
        r = subprocess.run(["umount", "-l", str(path)], capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise RuntimeError(f"umount -l {path}: {r.stderr.strip()}")
        return "lazily unmounted"
    r = subprocess.run(["umount", str(path)], capture_output=True, text=True, timeout=30)
    if r.returncode == 0:
        return "unmounted"
    r2 = subprocess.run(["umount", "-l", str(path)], capture_output=True, text=True, timeout=30)
    if r2.returncode != 0:
        raise RuntimeError(f"umount {path}: {r.stderr.strip()}; umount -l: {r2.stderr.strip()}")
    return f"busy ({r.stderr.strip()}), lazily unmounted"


def fill(filler: Path) -> int:
    """Write into `filler` until the file system refuses even one byte (bounded by
    FILLER_MAX). Returns the bytes written."""
    written = 0
    with open(filler, "wb", buffering=0) as f:
        for chunk in (64 << 10, 4 << 10, 1):
            block = b"\0" * chunk
            while written < FILLER_MAX:
                try:
                    written += f.write(block)
                except OSError as e:
                    if e.errno != errno.ENOSPC:
                        raise
                    break
    assert written < FILLER_MAX, f"{FILLER_MAX} bytes written and the file system still not full"
    return written


def assert_full(d: Path) -> None:
    """A new file of one byte (what a rotation's temporary is) cannot be written in `d`."""
    probe = d / ".disk-full-probe"
    try:
        with open(probe, "wb", buffering=0) as f:
            f.write(b"x")
            os.fsync(f.fileno())
    except OSError as e:
        assert e.errno == errno.ENOSPC, f"probe write: {e}"
        return
    finally:
        probe.unlink(missing_ok=True)
    raise AssertionError("a one-byte file could still be written: the file system is not full")


def lock_dir(d: Path, wait: float = 60) -> int:
    """Take the certs directory's lock (the one bulwark-init and control take), so no rotation
    changes files while they are copied. Returns the descriptor."""
    fd = os.open(d / LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() > deadline:
                os.close(fd)
                raise RuntimeError(f"{d / LOCK} still locked after {wait:.0f}s")
            time.sleep(0.2)


def sync_back(src: Path, dst: Path) -> list[str]:
    """Make `dst` hold exactly `src`'s files (bytes, mode, owner): each changed file is
    written beside its target and renamed over it, so a reader never sees a torn file.
    Returns the names changed."""
    changed = []
    a, b = snapshot(src), snapshot(dst)
    for name in sorted(set(a) | set(b)):
        if name in (".", LOCK) or a.get(name) == b.get(name):
            continue
        changed.append(name)
        if name not in a:
            (dst / name).unlink()
            continue
        tmp = dst / f".{name}.disk-full-restore"
        shutil.copy2(src / name, tmp)
        _, mode, uid, gid = a[name]
        os.chown(tmp, uid, gid)
        os.chmod(tmp, mode)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.rename(tmp, dst / name)
    fd = os.open(dst, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return changed


def main_sync(args: argparse.Namespace) -> int:
    env = load_env(args.env)
    certs = Path(env["BULWARK_CERTS_DIR"]).resolve()
    ca = certs / "ca.crt"
    creds = Path(env["BULWARK_OPERATOR_CREDENTIALS"]).parent
    init = Path(os.environ.get("BULWARK_BIN_DIR", ROOT / "target" / "debug")) / "bulwark-init"
    stack, runner = Stack(env), Runner()
    init_env = {**os.environ, "BULWARK_TEMPORAL_ADDRESS": env["BULWARK_TEMPORAL_ADDRESS"],
                "BULWARK_NAMESPACES": env.get("BULWARK_NAMESPACES", "default")}

    def skip_all(why: str) -> int:
        print(f"note: {why}; the disk-full checks are skipped")

        async def skipped() -> None:
            raise Skip(why)
        asyncio.run(runner.run("the certs directory's file system full", skipped))
        return runner.summary()

    if os.geteuid() != 0:
        return skip_all("not root (mounting a tmpfs over the certs directory needs it)")
    assert not os.path.ismount(certs), f"{certs} is already a mount point (a previous run not restored?)"
    # Before anything is mounted: a refused login must not leave a mount behind.
    admin = Admin(env["BULWARK_ADMIN_URL"].rstrip("/"), ca)
    admin.login("admin", (creds / "admin-password").read_text().strip())
    scratch = Path(tempfile.mkdtemp(prefix="bulwark-disk-full-"))
    fs, under = scratch / "fs", scratch / "under"
    fs.mkdir()
    under.mkdir()
    original = certs.stat()
    r = mount("-t", "tmpfs", "-o", f"size={TMPFS_SIZE},mode=0700", "bulwark-disk-full", str(fs))
    if r.returncode != 0:
        shutil.rmtree(scratch, ignore_errors=True)
        return skip_all(f"mount is not permitted here ({(r.stderr.strip().splitlines() or ['?'])[0]})")

    def verify() -> subprocess.CompletedProcess:
        return subprocess.run([str(init), "verify", "--dir", str(certs)], capture_output=True, text=True,
                              env=init_env, timeout=120)

    async def temporal_accepts_system_token() -> None:
        client = await stack.client((certs / "system-token.jwt").read_text().strip(), identity="client-admin")
        await client.count_workflows()

    listeners = {
        "temporal (gate)": lambda: server_fingerprint(env["BULWARK_TEMPORAL_ADDRESS"], stack.server_name, certs),
        "api": lambda: tls_fingerprint(env["BULWARK_API_URL"], ca),
        "control": lambda: tls_fingerprint(env["BULWARK_CONTROL_URL"], ca),
        "admin": lambda: tls_fingerprint(env["BULWARK_ADMIN_URL"], ca),
    }
    if stack.upstream:
        listeners["temporal (own frontend)"] = lambda: server_fingerprint(stack.upstream, stack.server_name, certs)

    def served() -> dict[str, str]:
        return {name: f() for name, f in listeners.items()}

    def rotate(action: str, target: str) -> tuple[str, str]:
        """Confirm and post a rotation; wait (bounded) for its job; return (state, error)."""
        _, page = admin._open("/confirm?" + urllib.parse.urlencode({"action": action, "target": target}))
        url, page = admin._open(f"/rotate/{action}", {"csrf": admin._csrf(page), "confirm": "yes", "target": target})
        assert "/admin/jobs/" in url, f"no job page after starting {action} {target}: {url}"
        deadline = time.monotonic() + 180
        while True:
            st = re.search(r'id="job-state">([a-z]+)<', page)
            assert st, f"no job state on {url}"
            if st.group(1) not in ("running", "waiting"):
                err = re.search(r'id="job-error"[^>]*>([^<]*)<', page)
                return st.group(1), html.unescape(err.group(1)) if err else ""
            assert time.monotonic() < deadline, f"job {url} still {st.group(1)} after 180 s"
            time.sleep(1)
            _, page = admin._open(url[len(admin.base):])

    facts: dict[str, object] = {}
    restored: dict[str, object] = {}
    mounted: list[Path] = [fs]
    lock_fd = None
    # A SIGTERM (a timeout in the caller) must still run the restore below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        # Reach the original directory while the tmpfs covers it (for the restore).
        r = mount("--bind", str(certs), str(under))
        assert r.returncode == 0, f"bind mount of {certs}: {r.stderr.strip()}"
        mounted.insert(0, under)
        copy = fs / "certs"
        lock_fd = lock_dir(certs)
        subprocess.run(["cp", "-a", str(certs), str(copy)], check=True, timeout=60)
        facts["copied"] = diff(snapshot(certs), snapshot(copy))
        # The copy appears at the path in one step: a service never finds the directory empty.
        r = mount("--bind", str(copy), str(certs))
        assert r.returncode == 0, f"bind mount over {certs}: {r.stderr.strip()}"
        mounted.insert(0, certs)
        os.close(lock_fd)
        lock_fd = None

        filler = fs / "filler"
        facts["filled"] = fill(filler)
        assert_full(certs)
        before, served_before = snapshot(certs), served()

        facts["cert"] = rotate("cert", "api-server")
        facts["jwt"] = rotate("jwt", "jwt-key")
        facts["cli"] = subprocess.run(
            [str(init), "rotate", "--dir", str(certs), "--namespace", init_env["BULWARK_NAMESPACES"],
             "--temporal-address", env["BULWARK_TEMPORAL_ADDRESS"], "api-server"],
            capture_output=True, text=True, env=init_env, timeout=120)
        facts["after"] = diff(before, snapshot(certs))
        facts["verify_full"] = verify()
        facts["served"] = (served_before, served())
        try:
            asyncio.run(temporal_accepts_system_token())
            facts["temporal"] = "accepted"
        except Exception as e:  # noqa: BLE001 - reported by the check below
            facts["temporal"] = f"{type(e).__name__}: {e}"

        # Room again: the same rotations must go through.
        filler.unlink()
        old_api = manifest_item(certs, "api-server")["fingerprint"]
        facts["cert_room"] = rotate("cert", "api-server")
        new_api = manifest_item(certs, "api-server")["fingerprint"]
        facts["jwt_room"] = rotate("jwt", "jwt-key")
        facts["verify_room"] = verify()
        facts["api_fp"] = (old_api, new_api)
        deadline = time.monotonic() + 60  # the api re-reads its certificate every 10 s
        while (shown := listeners["api"]()) != new_api and time.monotonic() < deadline:
            time.sleep(1)
        facts["api_shown"] = shown
        try:
            asyncio.run(temporal_accepts_system_token())
            facts["temporal_room"] = "accepted"
        except Exception as e:  # noqa: BLE001 - reported by the check below
            facts["temporal_room"] = f"{type(e).__name__}: {e}"
    except Exception as e:  # noqa: BLE001 - the checks not reached say so
        facts["aborted"] = f"{type(e).__name__}: {e}"
    finally:
        try:
            (fs / "filler").unlink(missing_ok=True)
            if certs in mounted:
                # Under the tmpfs copy's lock, so no rotation writes between copy-back and unmount.
                lock_fd = lock_fd if lock_fd is not None else lock_dir(certs)
                last = snapshot(certs)
                restored["copied back"] = sync_back(certs, under)
            for m in mounted:
                # The copy over the certs path is detached while its lock is still held (our
                # own descriptor keeps it busy): a rotation waiting for that lock then opens its
                # files by path, in the original directory, which holds what it would have read.
                restored[str(m)] = umount(m, lazy=m == certs and lock_fd is not None)
            if lock_fd is not None:
                os.close(lock_fd)
            now = certs.stat()
            restored["same dir"] = (now.st_dev, now.st_ino) == (original.st_dev, original.st_ino) \
                and not os.path.ismount(certs)
            if "last" in locals():
                restored["diff"] = [d for d in diff(last, snapshot(certs)) if not d.startswith(f"{LOCK}:")]
            shutil.rmtree(scratch, ignore_errors=True)
        # A copy-back that failed leaves the mounts in place on purpose: after the rotations
        # with room, control signs with the key the tmpfs holds, and uncovering the original
        # directory would serve a JWKS without it.
        except Exception as e:  # noqa: BLE001 - reported by the check below, with what to do
            restored["error"] = f"{type(e).__name__}: {e}"
            print(f"RESTORE FAILED: {e}; check `findmnt {certs}` and unmount {scratch}/* by hand", flush=True)

    def names_the_full_file(text: str) -> str:
        m = re.search(re.escape(str(certs)) + r"/[\w.-]+", text)
        assert m, f"the message names no file under {certs}: {text[:300]!r}"
        assert "No space left" in text and "file system is full" in text, \
            f"the message does not say the file system is full: {text[:300]!r}"
        return m.group(0)

    def need(key: str):
        if key not in facts:
            raise AssertionError(f"not reached: {facts.get('aborted', 'an earlier step failed')}")
        return facts[key]

    async def set_up() -> str:
        assert not need("copied"), f"the tmpfs copy differs: {facts['copied'][:5]}"
        need("served")
        return f"tmpfs of {TMPFS_SIZE}, filler {facts['filled']} bytes, a one-byte write refused"

    async def job_fails(key: str) -> str:
        st, err = need(key)
        assert st == "failed", f"the rotation {st} on a full disk"
        return f"{names_the_full_file(err)}: {err[:160]}"

    async def cert_fails() -> str:
        return await job_fails("cert")

    async def jwt_fails() -> str:
        return await job_fails("jwt")

    async def cli_fails() -> str:
        c = need("cli")
        assert c.returncode != 0, "bulwark-init rotate succeeded on a full disk"
        line = next((ln for ln in c.stderr.splitlines() if "No space left" in ln), c.stderr[-300:])
        names_the_full_file(line)
        return f"rc {c.returncode}: {line.strip()[:200]}"

    async def unchanged() -> str:
        assert not need("after"), f"changed in the certs dir: {facts['after'][:5]}"
        v = need("verify_full")
        assert v.returncode == 0, f"verify: rc {v.returncode}: {(v.stdout + v.stderr)[-400:]}"
        n = len(snapshot(certs)) - 1
        return f"{n} files byte-identical (sha256, mode, owner), no temporary left; verify clean"

    async def still_served() -> str:
        a, b = need("served")
        assert a == b, f"fingerprints changed: {diff(a, b)}"
        assert need("temporal") == "accepted", f"Temporal refused the system token: {facts['temporal']}"
        return ", ".join(f"{k} {v[:12]}" for k, v in a.items()) + "; Temporal accepts the system token"

    async def succeeds_with_room() -> str:
        for key in ("cert_room", "jwt_room"):
            st, err = need(key)
            assert st == "succeeded", f"{key}: {st}: {err[:300]}"
        v = need("verify_room")
        assert v.returncode == 0, f"verify: rc {v.returncode}: {(v.stdout + v.stderr)[-400:]}"
        old, new = need("api_fp")
        assert old != new and need("api_shown") == new, f"api serves {facts['api_shown'][:12]}, new {new[:12]}"
        assert need("temporal_room") == "accepted", f"Temporal refused the re-issued token: {facts['temporal_room']}"
        return f"api {old[:12]} -> {new[:12]} (served), JWT key rotated; verify clean, re-issued token accepted"

    async def restored_ok() -> str:
        assert "error" not in restored, restored.get("error")
        assert restored["same dir"], f"{certs} is not the original directory again"
        assert not restored.get("diff"), f"the original directory differs from the tmpfs: {restored['diff'][:5]}"
        return f"copied back {restored.get('copied back')}; " + \
            ", ".join(f"{Path(k).name} {v}" for k, v in restored.items() if k.startswith("/"))

    async def go() -> None:
        checks = [
            ("the certs dir copied to a full tmpfs", set_up),
            ("leaf rotation (admin page) fails naming the file, disk full", cert_fails),
            ("JWT key rotation (admin page) fails naming the file, disk full", jwt_fails),
            ("bulwark-init rotate fails naming the file, disk full", cli_fails),
            ("old material byte-identical, nothing left behind, verify clean", unchanged),
            ("the old certificates still served, tokens accepted", still_served),
            ("with room again the same rotations succeed", succeeds_with_room),
        ]
        for name, fn in checks:
            await runner.run(name, fn)
        await runner.run("restored: services read the original directory, same bytes", restored_ok)

    asyncio.run(go())
    return runner.summary()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--env")
    code = main_sync(ap.parse_args())
    sys.stdout.flush()
    os._exit(code)
