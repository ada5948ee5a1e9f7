"""Shared plumbing for Bulwark's end-to-end suites: the stack description (.bulwark/env),
a check runner that prints one line per check and a final tally, and Temporal clients."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import socket
import ssl
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Awaitable, Callable

from temporalio.client import Client, TLSConfig
from temporalio.service import RPCError, RPCStatusCode

ROOT = Path(__file__).resolve().parent.parent


def load_env(path: str | None = None) -> dict[str, str]:
    """Read KEY=value lines; the process environment overrides the file."""
    path = path or os.environ.get("BULWARK_ENV_FILE") or str(ROOT / ".bulwark" / "env")
    env: dict[str, str] = {}
    try:
        for line in Path(path).read_text().splitlines():
            line = line.strip()
            if line and not line.startswith("#") and "=" in line:
                k, v = line.split("=", 1)
                env[k] = v
    except FileNotFoundError:
        sys.exit(f"error: {path} not found; start the stack with scripts/up.sh or set BULWARK_ENV_FILE")
    env.update({k: v for k, v in os.environ.items() if k.startswith("BULWARK_")})
    for required in ("BULWARK_TEMPORAL_ADDRESS", "BULWARK_TEMPORAL_SERVER_NAME", "BULWARK_CERTS_DIR"):
        if required not in env:
            sys.exit(f"error: {required} missing from {path}")
    return env


class Skip(Exception):
    """Raised by a check that cannot run against this stack (reported, not counted as passed)."""


@dataclass
class Runner:
    passed: int = 0
    failed: int = 0
    skipped: int = 0
    failures: list[str] = field(default_factory=list)

    async def run(self, name: str, fn: Callable[[], Awaitable[str | None]], timeout: float = 120) -> None:
        start = time.monotonic()
        try:
            detail = await asyncio.wait_for(fn(), timeout)
            self.passed += 1
            print(f"ok   - {name}{f' ({detail})' if detail else ''} [{time.monotonic() - start:.1f}s]", flush=True)
        except Skip as e:
            self.skipped += 1
            print(f"skip - {name}: {e}", flush=True)
        except Exception as e:  # noqa: BLE001 - every failure is reported, none aborts the suite
            self.failed += 1
            self.failures.append(name)
            reason = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
            print(f"FAIL - {name}: {reason}", flush=True)
            if os.environ.get("BULWARK_TEST_VERBOSE"):
                traceback.print_exc()

    def summary(self) -> int:
        extra = f", {self.skipped} skipped" if self.skipped else ""
        print(f"{self.passed} passed, {self.failed} failed{extra}", flush=True)
        return 1 if self.failed else 0


class Stack:
    def __init__(self, env: dict[str, str]):
        self.env = env
        self.address = env["BULWARK_TEMPORAL_ADDRESS"]
        self.server_name = env["BULWARK_TEMPORAL_SERVER_NAME"]
        self.certs = Path(env["BULWARK_CERTS_DIR"])
        self.namespace = env.get("BULWARK_NAMESPACES", "default").split(",")[0]
        # Temporal's own frontend, behind bulwark-gate (None for a stack without a gate).
        self.upstream = env.get("BULWARK_TEMPORAL_UPSTREAM_ADDRESS")

    def read(self, name: str) -> bytes:
        return (self.certs / name).read_bytes()

    def token(self, name: str) -> str:
        return self.read(name).decode().strip()

    def tls(self, identity: str = "temporal-client") -> TLSConfig:
        return TLSConfig(
            server_root_ca_cert=self.read("ca.crt"),
            domain=self.server_name,
            client_cert=self.read(f"{identity}.crt"),
            client_private_key=self.read(f"{identity}.key"),
        )

    async def client(self, token: str | None, identity: str = "temporal-client", namespace: str | None = None) -> Client:
        return await Client.connect(
            self.address,
            namespace=namespace or self.namespace,
            tls=self.tls(identity),
            api_key=token,
        )


DENIED = (RPCStatusCode.PERMISSION_DENIED, RPCStatusCode.UNAUTHENTICATED)


async def expect_denied(call: Callable[[], Awaitable[object]]) -> str:
    """Run `call`; it must fail with PermissionDenied/Unauthenticated. Returns the status."""
    try:
        await call()
    except RPCError as e:
        if e.status in DENIED:
            return e.status.name
        raise AssertionError(f"expected denial, got {e.status.name}: {e}") from e
    raise AssertionError("call was allowed")


def server_fingerprint(address: str, server_name: str, certs: Path) -> str:
    """SHA-256 of the leaf Temporal presents on a fresh, fully verified mTLS handshake
    (with the admin client certificate); raises when the handshake is refused."""
    host, port = address.rsplit(":", 1)
    ctx = ssl.create_default_context(cafile=str(certs / "ca.crt"))
    ctx.load_cert_chain(certs / "client-admin.crt", certs / "client-admin.key")
    ctx.set_alpn_protocols(["h2"])
    with socket.create_connection((host, int(port)), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=server_name) as s:
            return hashlib.sha256(s.getpeercert(binary_form=True)).hexdigest()


def manifest_item(certs: Path, item_id: str) -> dict:
    """One entry of the certs directory's inventory (manifest.json)."""
    items = json.loads((certs / "manifest.json").read_text())["items"]
    return next(i for i in items if i["id"] == item_id)


# --- certificate-bound tokens (RFC 8705 `cnf`) ---------------------------------------------
# The certificate each OAuth client presents to control's token endpoint: control binds a
# Temporal-audience token to it, and bulwark-gate accepts the token only with that certificate.
OAUTH_IDENTITY = {"worker": "client-worker", "api": "client-api"}


def leaf_der(certs: Path, identity: str) -> bytes:
    """DER of the first certificate in <identity>.crt (the leaf; its issuing CA follows)."""
    pem = (certs / f"{identity}.crt").read_text()
    begin = pem.index("-----BEGIN CERTIFICATE-----")
    end = pem.index("-----END CERTIFICATE-----", begin)
    return ssl.PEM_cert_to_DER_cert(pem[begin:end + len("-----END CERTIFICATE-----")] + "\n")


def uri_san(certs: Path, identity: str) -> str:
    """The leaf's first URI SAN (spiffe://<trust domain>/...), read from the certificate.

    Decoded by OpenSSL (the ssl module's certificate decoder reads the file's first
    certificate): `cryptography` refuses our leaves, whose basicConstraints encode the DEFAULT
    `cA FALSE` (not DER)."""
    decoded = ssl._ssl._test_decode_cert(str(certs / f"{identity}.crt"))  # noqa: SLF001
    uris = [v for k, v in decoded.get("subjectAltName", ()) if k == "URI"]
    if not uris:
        raise AssertionError(f"{identity}.crt has no URI SAN")
    return uris[0]


def confirmation(certs: Path, identity: str) -> dict:
    """The `cnf` claim binding a token to <identity>'s current certificate."""
    digest = hashlib.sha256(leaf_der(certs, identity)).digest()
    return {"x5t#S256": base64.urlsafe_b64encode(digest).rstrip(b"=").decode(), "uri": uri_san(certs, identity)}


def jwt_claims(token: str) -> dict:
    """The payload of a JWT, unverified (for inspecting what a server issued)."""
    part = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def token_tls_context(certs: Path, client_id: str | None) -> ssl.SSLContext:
    """TLS to bulwark-control's token endpoint: verified against ca.crt, presenting the client
    certificate of the OAuth client's identity when it has one (worker, api)."""
    ctx = ssl.create_default_context(cafile=str(certs / "ca.crt"))
    identity = OAUTH_IDENTITY.get(client_id or "")
    if identity:
        ctx.load_cert_chain(certs / f"{identity}.crt", certs / f"{identity}.key")
    return ctx


def oauth_token(control: str, certs: Path, client_id: str, secret: str, scope: str | None = None) -> str:
    """An access token from control's /oauth/token (client credentials, HTTP Basic), over TLS
    that presents the client's certificate when its tokens are bound to one."""
    import urllib.parse
    import urllib.request

    form = {"grant_type": "client_credentials", **({"scope": scope} if scope else {})}
    req = urllib.request.Request(f"{control}/oauth/token", data=urllib.parse.urlencode(form).encode())
    req.add_header("Authorization", "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode())
    with urllib.request.urlopen(req, context=token_tls_context(certs, client_id), timeout=10) as r:
        return json.loads(r.read())["access_token"]


def start_api(env: dict[str, str], port: int, log_name: str, extra: dict[str, str] | None = None):
    """A second bulwark-api with the stack's configuration on 127.0.0.1:`port` (the contract
    and clock-skew suites change one setting of it); returns the process once /healthz
    answers. The binary is target/debug's unless BULWARK_BIN_DIR names another."""
    import subprocess
    import urllib.error
    import urllib.request

    certs = Path(env["BULWARK_CERTS_DIR"])
    binary = Path(os.environ.get("BULWARK_BIN_DIR", ROOT / "target" / "debug")) / "bulwark-api"
    e = {
        **os.environ,
        "BULWARK_CERTS_DIR": str(certs), "BULWARK_TEMPORAL_ADDRESS": env["BULWARK_TEMPORAL_ADDRESS"],
        "BULWARK_TEMPORAL_SERVER_NAME": env["BULWARK_TEMPORAL_SERVER_NAME"], "BULWARK_CONTROL_URL": env["BULWARK_CONTROL_URL"],
        "BULWARK_DEPLOYMENT_SECRETS": str(Path(env["BULWARK_DEPLOYMENT_SECRETS_DIR"]) / "deployment-secrets-api.json"),
        "BULWARK_API_LISTEN": f"127.0.0.1:{port}", "BULWARK_LOG_FORMAT": "json",
        **(extra or {}),
    }
    log = open(Path(env["BULWARK_LOGS_DIR"]) / log_name, "ab")
    p = subprocess.Popen([str(binary)], env=e, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    ctx = ssl.create_default_context(cafile=str(certs / "ca.crt"))
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"https://127.0.0.1:{port}/healthz", context=ctx, timeout=2):
                return p
        except (urllib.error.URLError, OSError):
            if p.poll() is not None:
                raise AssertionError(f"the second api exited (log {log.name})")
            if time.monotonic() > deadline:
                stop_process(p)
                raise AssertionError(f"the second api did not come up in 60 s (log {log.name})")
            time.sleep(0.3)


def stop_process(p) -> None:
    """SIGTERM, then SIGKILL after 20 s."""
    import subprocess

    p.terminate()
    try:
        p.wait(20)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait(5)


class OperatorToken:
    """The operator's API token, as a real client holds it: renewed once `renew_after` seconds
    old; while control is unreachable the last token is kept and renewal retried every 2 s.
    Callable and thread-safe, so it can be handed to a load generator."""

    def __init__(self, env: dict[str, str], renew_after: float = 600.0):
        import threading

        self.control, self.certs = env["BULWARK_CONTROL_URL"], Path(env["BULWARK_CERTS_DIR"])
        self.op = json.loads(Path(env["BULWARK_OPERATOR_CREDENTIALS"]).read_text())
        self.renew_after = renew_after
        self.lock = threading.Lock()
        self.value, self.at = self._fetch(), time.monotonic()

    def _fetch(self) -> str:
        return oauth_token(self.control, self.certs, self.op["client_id"], self.op["client_secret"])

    def __call__(self) -> str:
        with self.lock:
            if time.monotonic() - self.at > self.renew_after:
                try:
                    self.value = self._fetch()
                    self.at = time.monotonic()
                except OSError:  # URLError and HTTPError are OSErrors: control down or refusing
                    self.at = time.monotonic() - self.renew_after + 2
            return self.value


def account(api: str, ca: Path, token: Callable[[], str], ids: list[str], wait: float) -> tuple[dict[str, str], list[str]]:
    """Poll each workflow id through the API's GET until it is terminal, for at most `wait`
    seconds; returns (terminal status per id, ids still running or unknown)."""
    import urllib.error
    import urllib.parse
    import urllib.request
    from concurrent.futures import ThreadPoolExecutor

    ctx = ssl.create_default_context(cafile=str(ca))

    def status(wid: str) -> str:
        req = urllib.request.Request(f"{api}/api/v1/workflows/{urllib.parse.quote(wid)}")
        req.add_header("Authorization", f"Bearer {token()}")
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=15) as r:
                return str(json.loads(r.read()).get("status", "")).lower()
        except OSError:  # unreachable or refused: not known yet, asked again
            return ""

    done: dict[str, str] = {}
    pending = list(ids)
    deadline = time.monotonic() + wait
    with ThreadPoolExecutor(16) as pool:
        while pending and time.monotonic() < deadline:
            nxt = []
            for wid, st in zip(pending, pool.map(status, pending)):
                if st and st != "running":
                    done[wid] = st
                else:
                    nxt.append(wid)
            pending = nxt
            if pending:
                time.sleep(2)
    return done, pending


# --- bulwark-gate's audit stream -----------------------------------------------------------
def log_size(path: str | Path | None) -> int:
    try:
        return Path(path).stat().st_size if path else 0
    except FileNotFoundError:
        return 0


def log_lines(path: str | Path, since: int = 0) -> list[dict]:
    """JSON log lines of a Bulwark process from byte offset `since` (tracing's JSON format:
    `fields` holds the event's fields; they are merged into the top level here)."""
    out: list[dict] = []
    with open(path, "rb") as f:
        f.seek(since)
        for raw in f.read().decode(errors="replace").splitlines():
            try:
                doc = json.loads(raw)
            except ValueError:
                continue
            if isinstance(doc, dict):
                fields = doc.get("fields")
                if isinstance(fields, dict):
                    doc = {**doc, **fields}
                out.append(doc)
    return out


def audit_records(path: str | Path, since: int = 0) -> list[dict]:
    """The gate's per-call audit events (target bulwark_gate::audit) from byte offset `since`."""
    return [d for d in log_lines(path, since) if str(d.get("target", "")).startswith("bulwark_gate::audit")]
