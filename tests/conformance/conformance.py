#!/usr/bin/env python3
"""Bulwark auth conformance suite.

Runs against any running stack described by a .bulwark/env file (native or compose) and
proves each security claim of the Temporal deployment: mTLS at the handshake, the separation
of the client and internode trust domains, JWT validation, the permission model, the Temporal
CLI profiles, the system worker under authorization, and persistence across restarts; and,
through bulwark-gate, the per-call policy (roles, task queues, unknown methods), tokens bound
to their certificate, the frontend reachable with the gate's certificate only, the audit of
every refusal and a policy reload that refuses a broken file.

Every task queue used here matches the shipped policy's `bulwark-*`; `outside-*` is the one
outside it, on purpose.

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
import re
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
from temporalio.api.common.v1 import WorkflowExecution  # noqa: E402
from temporalio.api.taskqueue.v1 import TaskQueue  # noqa: E402
from temporalio.api.workflowservice.v1 import (  # noqa: E402
    DescribeNamespaceRequest,
    ListNamespacesRequest,
    ListWorkflowExecutionsRequest,
    PollActivityTaskQueueRequest,
    PollWorkflowTaskQueueRequest,
    RegisterNamespaceRequest,
    ResetWorkflowExecutionRequest,
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

from common import (  # noqa: E402
    Runner,
    Skip,
    Stack,
    audit_records,
    confirmation,
    expect_denied,
    jwt_claims,
    load_env,
    log_lines,
    log_size,
    token_tls_context,
    uri_san,
)


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

    def claims(self, identity: str = "temporal-client", bound: bool = True, **overrides) -> dict:
        """A well-formed claim set, bound (RFC 8705 `cnf`: URI SAN and SHA-256 thumbprint of
        the leaf) to `identity`'s current certificate unless bound=False."""
        now = int(time.time())
        c = {
            "sub": "conformance", "iss": "bulwark", "aud": "temporal", "iat": now, "nbf": now,
            "exp": now + 600, "jti": str(uuid.uuid4()), "scope": "temporal-client",
            "permissions": [f"{self.stack.namespace}:write"],
        }
        if bound:
            c["cnf"] = confirmation(self.stack.certs, identity)
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
    upstream = stack.upstream
    gate_log = env.get("BULWARK_GATE_LOG")
    gate_log_start = log_size(gate_log)
    # Every refusal the gate should have audited: (identity URI SAN, Service/Method, check).
    refusals: list[tuple[str, str, str]] = []

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

    # The scope a crafted token carries for each identity (as the static tokens do).
    crafted_scope = {"client-worker": "temporal-worker", "client-admin": "temporal-system"}

    async def client_with(token: str, identity: str = "temporal-client"):
        # The SDK's connect calls GetSystemInfo, which is refused for an invalid token;
        # connect with a valid token bound to `identity`'s certificate and swap the header, so
        # the denial is seen on the call.
        first = client_token if identity == "temporal-client" else tokens.sign(
            tokens.claims(identity=identity, scope=crafted_scope.get(identity, "temporal-client")))
        c = await stack.client(first, identity=identity)
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
        tq = f"bulwark-conformance-{uuid.uuid4().hex[:8]}"
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
        b = await expect_denied(lambda: c.start_workflow(ConformanceGreeting.run, "x", id=f"iso-{uuid.uuid4().hex[:8]}",
                                                        task_queue="bulwark-conformance-iso"))
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
        assert any(w in without.stderr.lower() for w in ("unauthorized", "unauthenticated", "permission")), without.stderr
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
        tq = f"bulwark-conformance-sched-{uuid.uuid4().hex[:8]}"
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
    # Control binds a Temporal token to the client certificate presented on the token request,
    # so each client connects with its own (worker -> client-worker, api -> client-api).
    def oauth_request(client_id: str, secret: str, scope: str | None = None, with_cert: bool = True) -> tuple[int, dict]:
        import urllib.error
        import urllib.parse
        import urllib.request
        url = env["BULWARK_CONTROL_URL"].rstrip("/") + "/oauth/token"
        form = {"grant_type": "client_credentials"}
        if scope:
            form["scope"] = scope
        req = urllib.request.Request(url, data=urllib.parse.urlencode(form).encode(), method="POST")
        req.add_header("Authorization", "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode())
        ctx = token_tls_context(stack.certs, client_id if with_cert else None)
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}")

    def oauth_token(client_id: str, secret: str, scope: str | None = None) -> str:
        status, body = oauth_request(client_id, secret, scope)
        assert status == 200, f"token endpoint answered {status}: {body}"
        return body["access_token"]

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
        tq = f"bulwark-conformance-oauth-{uuid.uuid4().hex[:8]}"
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
        tq = f"bulwark-conformance-persist-{uuid.uuid4().hex[:8]}"
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
        if upstream:  # the gate holds no state: a restart loses nothing
            await restart_component("gate")
            await still_running()
        wc = await stack.client(worker_token, identity="client-worker")
        c = await stack.client(client_token)
        async with worker(wc, tq):
            result = await c.get_workflow_handle(wid).result()
        assert result == "Hello, persist!", result
        return "workflow started before both restarts completed after them"

    # 9: bulwark-gate. Each refusal below is PermissionDenied from the gate's policy (or
    # Unauthenticated for a token not bound to the presented certificate), is recorded in
    # `refusals`, and must then be found in the gate's audit log with the caller's identity.
    def need_gate() -> None:
        if not upstream:
            raise Skip("no bulwark-gate in this stack (BULWARK_TEMPORAL_UPSTREAM_ADDRESS unset)")

    def hexid() -> str:
        return uuid.uuid4().hex[:8]

    secrets_in_play = [client_token, system_token, worker_token]

    async def refused(method: str, identity: str, call, status: RPCStatusCode = RPCStatusCode.PERMISSION_DENIED) -> str:
        """`call` must fail with `status` from the gate; for PermissionDenied the message names
        the method (the contract's `bulwark-gate: <Service>/<Method> is not allowed ...`)."""
        try:
            await call()
        except RPCError as e:
            assert e.status == status, f"{method}: expected {status.name}, got {e.status.name}: {e.message}"
            short = method.split("/")[-1]
            if status == RPCStatusCode.PERMISSION_DENIED:
                assert short in e.message, f"{method}: the refusal does not name the method: {e.message!r}"
            assert not any(t in e.message for t in secrets_in_play), f"{method}: the refusal quotes a token"
            refusals.append((uri_san(stack.certs, identity), method, e.message))
            return e.status.name
        raise AssertionError(f"{method} as {identity} was allowed")

    async def admin_terminate(wid: str) -> None:
        try:
            admin = await stack.client(system_token, identity="client-admin")
            await admin.get_workflow_handle(wid).terminate(reason="conformance cleanup")
        except RPCError:
            pass

    async def gate_worker_role():
        need_gate()
        wc = await stack.client(worker_token, identity="client-worker")
        cc = await stack.client(client_token)
        tq = f"bulwark-conformance-{hexid()}"
        async with worker(wc, tq):
            result = await cc.execute_workflow(ConformanceGreeting.run, "gate", id=f"wf-{tq}", task_queue=tq,
                                               execution_timeout=dt.timedelta(seconds=60))
        assert result == "Hello, gate!", result
        # A workflow that stays running (nobody polls its queue), so an allowed signal,
        # terminate or reset would have something to act on.
        idle = f"bulwark-conformance-idle-{hexid()}"
        wid = f"wf-{idle}"
        await cc.start_workflow(ConformanceGreeting.run, "idle", id=wid, task_queue=idle, execution_timeout=dt.timedelta(minutes=2))
        try:
            wh = wc.get_workflow_handle(wid)
            denied_id = f"wf-denied-{hexid()}"
            out = [
                await refused("WorkflowService/StartWorkflowExecution", "client-worker",
                              lambda: wc.start_workflow(ConformanceGreeting.run, "x", id=denied_id, task_queue=tq)),
                await refused("WorkflowService/SignalWorkflowExecution", "client-worker", lambda: wh.signal("nudge")),
                await refused("WorkflowService/TerminateWorkflowExecution", "client-worker", lambda: wh.terminate(reason="stolen")),
                await refused("WorkflowService/ResetWorkflowExecution", "client-worker",
                              lambda: wc.workflow_service.reset_workflow_execution(ResetWorkflowExecutionRequest(
                                  namespace=ns, workflow_execution=WorkflowExecution(workflow_id=wid), reason="stolen",
                                  workflow_task_finish_event_id=3, request_id=str(uuid.uuid4())))),
            ]
            # Nothing of it reached Temporal: the workflow still runs, the start never happened.
            desc = await cc.get_workflow_handle(wid).describe()
            assert desc.status == WorkflowExecutionStatus.RUNNING, f"after the refused calls: {desc.status}"
            try:
                await cc.get_workflow_handle(denied_id).describe()
                raise AssertionError(f"the refused start created {denied_id}")
            except RPCError as e:
                assert e.status == RPCStatusCode.NOT_FOUND, e
        finally:
            await admin_terminate(wid)
        return f"polled and completed ({result!r}); start, signal, terminate, reset: {', '.join(out)}; workflow untouched"

    def poll_request(tq: str, who: str) -> PollWorkflowTaskQueueRequest:
        return PollWorkflowTaskQueueRequest(namespace=ns, task_queue=TaskQueue(name=tq), identity=who)

    # An allowed poll would return the pending task at once, or wait: 10 s is the bound either way.
    poll_timeout = dt.timedelta(seconds=10)

    async def gate_client_role():
        need_gate()
        cc = await stack.client(client_token)
        tq = f"bulwark-conformance-client-{hexid()}"
        handle = await cc.start_workflow(ConformanceGreeting.run, "client", id=f"wf-{tq}", task_queue=tq,
                                         execution_timeout=dt.timedelta(seconds=90))
        desc = await handle.describe()
        assert desc.status == WorkflowExecutionStatus.RUNNING, desc.status
        a = await refused("WorkflowService/PollWorkflowTaskQueue", "temporal-client",
                          lambda: cc.workflow_service.poll_workflow_task_queue(poll_request(tq, "conformance-client"), timeout=poll_timeout))
        b = await refused("WorkflowService/PollActivityTaskQueue", "temporal-client",
                          lambda: cc.workflow_service.poll_activity_task_queue(PollActivityTaskQueueRequest(
                              namespace=ns, task_queue=TaskQueue(name=tq), identity="conformance-client"), timeout=poll_timeout))
        # The refused poll took nothing: the real worker still gets the task and completes it.
        wc = await stack.client(worker_token, identity="client-worker")
        async with worker(wc, tq):
            result = await handle.result()
        assert result == "Hello, client!", result
        return f"started and described; workflow poll {a}, activity poll {b}; the worker then completed it"

    async def gate_stolen_worker_token():
        need_gate()
        # Control: the worker token with its own certificate describes the namespace.
        own = await stack.client(worker_token, identity="client-worker")
        await own.workflow_service.describe_namespace(DescribeNamespaceRequest(namespace=ns))
        try:
            c = await stack.client(worker_token, identity="client-api")
        except RuntimeError as e:
            # The SDK's connect (GetSystemInfo) is the first call, and it is refused.
            assert "Unauthenticated" in str(e) or "PermissionDenied" in str(e), e
            refusals.append((uri_san(stack.certs, "client-api"), "WorkflowService/GetSystemInfo", str(e)))
            return f"refused at connect: {str(e)[-120:]}"
        s = await refused("WorkflowService/DescribeNamespace", "client-api",
                          lambda: c.workflow_service.describe_namespace(DescribeNamespaceRequest(namespace=ns)),
                          status=RPCStatusCode.UNAUTHENTICATED)
        return f"worker-token.jwt with its own certificate allowed; with client-api.crt {s}"

    async def gate_token_without_cnf():
        need_gate()
        # Control: crafted_control (the same claims with cnf) is accepted.
        unbound = tokens.sign(tokens.claims(bound=False))
        c = await client_with(unbound)
        s = await refused("WorkflowService/ListWorkflowExecutions", "temporal-client",
                          lambda: c.workflow_service.list_workflow_executions(ListWorkflowExecutionsRequest(namespace=ns)),
                          status=RPCStatusCode.UNAUTHENTICATED)
        # Bound to another identity's certificate (same trust domain, real key): refused too.
        other = tokens.sign(tokens.claims(identity="client-worker"))
        c2 = await client_with(other)
        s2 = await refused("WorkflowService/ListWorkflowExecutions", "temporal-client",
                           lambda: c2.workflow_service.list_workflow_executions(ListWorkflowExecutionsRequest(namespace=ns)),
                           status=RPCStatusCode.UNAUTHENTICATED)
        return f"no cnf: {s}; cnf of client-worker with temporal-client.crt: {s2}"

    async def gate_upstream_refuses_clients():
        need_gate()
        ok, why = tls_probe(upstream, stack.server_name, ca, stack.certs / "gate-client.crt", stack.certs / "gate-client.key")
        assert ok, f"control: the gate's own certificate is refused upstream: {why}"
        idents = sorted(p.stem for p in stack.certs.glob("client-*.crt") if not p.stem.endswith("-ca")) + ["temporal-client"]
        for must in ("temporal-client", "client-admin", "client-api", "client-worker"):
            assert must in idents, f"{must}.crt missing from {stack.certs}"
        reasons = []
        for ident in idents:
            accepted, reason = tls_probe(upstream, stack.server_name, ca, stack.certs / f"{ident}.crt", stack.certs / f"{ident}.key")
            assert not accepted, f"{ident} completed a handshake with the frontend at {upstream}: {reason}"
            reasons.append(f"{ident}: {reason}")
        bare, reason = tls_probe(upstream, stack.server_name, ca)
        assert not bare, f"no client certificate accepted upstream: {reason}"
        return f"gate-client accepted; all {len(idents)} client certificates and no certificate refused ({reasons[0]})"

    async def gate_task_queue_acl():
        need_gate()
        outside = f"outside-{hexid()}"
        cc = await stack.client(client_token)
        wc = await stack.client(worker_token, identity="client-worker")
        wid = f"wf-{outside}"
        a = await refused("WorkflowService/StartWorkflowExecution", "temporal-client",
                          lambda: cc.start_workflow(ConformanceGreeting.run, "x", id=wid, task_queue=outside))
        b = await refused("WorkflowService/PollWorkflowTaskQueue", "client-worker",
                          lambda: wc.workflow_service.poll_workflow_task_queue(poll_request(outside, "conformance-worker"), timeout=poll_timeout))
        try:
            await cc.get_workflow_handle(wid).describe()
            raise AssertionError(f"the refused start created {wid}")
        except RPCError as e:
            assert e.status == RPCStatusCode.NOT_FOUND, e
        return f"task queue {outside}: start {a}, poll {b} (bulwark-conformance-* queues pass in the checks above)"

    def raw_grpc(path: str, identity: str, token: str) -> tuple[int | None, str]:
        """One unary gRPC call (an empty message) to an arbitrary method path, over curl's
        HTTP/2 (nghttp2): the SDKs only send the methods they know. Returns (grpc-status,
        grpc-message); the token goes in a header file, never on the command line."""
        host, port = stack.address.rsplit(":", 1)
        with tempfile.TemporaryDirectory(prefix="bulwark-grpc-") as d:
            hdr, body, dump = Path(d) / "headers", Path(d) / "body", Path(d) / "dump"
            hdr.write_text(f"authorization: Bearer {token}\ncontent-type: application/grpc\nte: trailers\n")
            hdr.chmod(0o600)
            body.write_bytes(b"\x00\x00\x00\x00\x00")  # uncompressed, length 0
            p = subprocess.run(
                ["curl", "-sS", "--http2", "--max-time", "20", "-o", os.devnull, "-D", str(dump),
                 "--cacert", str(stack.certs / "ca.crt"), "--cert", str(stack.certs / f"{identity}.crt"),
                 "--key", str(stack.certs / f"{identity}.key"), "--resolve", f"{stack.server_name}:{port}:{host}",
                 "-H", f"@{hdr}", "--data-binary", f"@{body}", f"https://{stack.server_name}:{port}{path}"],
                capture_output=True, text=True, timeout=30)
            # Headers and trailers (a trailers-only answer is one HEADERS frame) both land here.
            dumped = dump.read_text(errors="replace") if dump.exists() else ""
            # 92: the server reset the stream after a complete answer (an unread request body);
            # curl reports that, gRPC clients do not. The answer itself still counts.
            assert p.returncode == 0 or (p.returncode == 92 and "grpc-status" in dumped), \
                f"curl {path}: exit {p.returncode}: {p.stderr.strip()}"
            fields = [ln.split(":", 1) for ln in dumped.splitlines() if ":" in ln]
            status = [v.strip() for k, v in fields if k.strip().lower() == "grpc-status"]
            message = [v.strip() for k, v in fields if k.strip().lower() == "grpc-message"]
            return (int(status[-1]) if status else None), (message[-1] if message else "")

    async def gate_unknown_method():
        need_gate()
        import shutil
        if not shutil.which("curl"):
            raise Skip("curl is needed for a raw gRPC call")
        # Control: the same raw call to a real method is forwarded and answered.
        known, _ = await asyncio.to_thread(raw_grpc, "/temporal.api.workflowservice.v1.WorkflowService/GetSystemInfo",
                                           "temporal-client", client_token)
        assert known == 0, f"control: GetSystemInfo over raw HTTP/2 gave grpc-status {known}"
        out = []
        for path in ("/temporal.api.workflowservice.v1.WorkflowService/BulwarkNoSuchMethod",
                     "/temporal.api.operatorservice.v1.OperatorService/BulwarkNoSuchMethod",
                     "/bulwark.conformance.v1.Nothing/Here"):
            # The admin identity too: unknown is refused for every role, system included.
            for ident, tok in (("temporal-client", client_token), ("client-admin", system_token)):
                code, msg = await asyncio.to_thread(raw_grpc, path, ident, tok)
                assert code == 7, f"{path} as {ident}: grpc-status {code} ({msg!r}), wanted 7 PERMISSION_DENIED"
                assert not any(t in msg for t in secrets_in_play), "the refusal quotes a token"
                refusals.append((uri_san(stack.certs, ident), path.lstrip("/").split(".")[-1], msg))
            out.append(path.rsplit("/", 2)[-2].split(".")[-1] + "/" + path.rsplit("/", 1)[-1])
        return f"GetSystemInfo forwarded (0); {', '.join(out)}: 7 for client and admin"

    def audit_match(rec: dict, uri: str, method: str) -> bool:
        m = str(rec.get("method", ""))
        return (rec.get("decision") == "deny" and rec.get("identity") == uri and bool(m)
                and (m == method or m.endswith(method) or method.endswith(m)))

    async def gate_audit_has_refusals():
        need_gate()
        if not gate_log or not Path(gate_log).exists():
            raise Skip("BULWARK_GATE_LOG not set or not readable here")
        if not refusals:
            raise Skip("no refusal was recorded (the checks above were skipped or failed early)")
        deadline = time.monotonic() + 15  # audit events may be written asynchronously
        while True:
            records = audit_records(gate_log, gate_log_start)
            missing = [(u, m) for u, m, _ in refusals if not any(audit_match(r, u, m) for r in records)]
            if not missing or time.monotonic() > deadline:
                break
            await asyncio.sleep(1)
        assert records, f"no audit records (target bulwark_gate::audit) in {gate_log} since the suite started"
        assert not missing, f"{len(missing)}/{len(refusals)} refusals not in the audit log, e.g. {missing[:3]}; " \
                            f"last record: {json.dumps(records[-1])[:400]}"
        # Allowed calls are audited too, with the caller's identity...
        worker_uri = uri_san(stack.certs, "client-worker")
        polls = [r for r in records if r.get("decision") == "allow" and r.get("identity") == worker_uri
                 and str(r.get("method", "")).endswith("PollWorkflowTaskQueue")]
        assert polls, "no allowed PollWorkflowTaskQueue by client-worker audited"
        # ...and no token ever appears in the gate's log.
        with open(gate_log, "rb") as f:
            f.seek(gate_log_start)
            text = f.read().decode(errors="replace")
        assert not any(t in text for t in secrets_in_play), "a token appears in the gate's log"
        return f"{len(refusals)} refusals found with identity and method (of {len(records)} records); allowed polls audited; no token in the log"

    policy_path = Path(env["BULWARK_GATE_POLICY"]) if env.get("BULWARK_GATE_POLICY") else None

    def write_atomic(path: Path, data: bytes) -> None:
        tmp = path.with_name(f".{path.name}.conformance-{hexid()}")
        tmp.write_bytes(data)
        os.chmod(tmp, path.stat().st_mode & 0o777)
        os.replace(tmp, path)

    async def wait_refused_reload(since: int, line_no: int) -> str:
        """A WARN/ERROR line of the gate, written after `since`, that names line `line_no`."""
        deadline = time.monotonic() + 15  # the gate checks the file every 2 s
        pattern = re.compile(rf"(line {line_no}\b|:{line_no}(:|\b))", re.IGNORECASE)
        while True:
            await asyncio.sleep(1)
            # Searched without the timestamp, whose hh:mm:ss would match `:<n>:`.
            hits = [d for d in log_lines(gate_log, since) if str(d.get("level", "")).upper() in ("WARN", "ERROR")
                    and pattern.search(json.dumps({k: v for k, v in d.items() if k not in ("timestamp", "time")}))]
            if hits:
                return json.dumps(hits[0].get("fields", hits[0]))[:240]
            assert time.monotonic() < deadline, f"the gate logged no refused reload naming line {line_no} within 15 s; " \
                f"its lines since: {[json.dumps(d)[:200] for d in log_lines(gate_log, since)][-3:]}"

    async def old_policy_in_force() -> str:
        cc = await stack.client(client_token)
        wc = await stack.client(worker_token, identity="client-worker")
        tq = f"bulwark-conformance-reload-{hexid()}"
        h = await cc.start_workflow(ConformanceGreeting.run, "reload", id=f"wf-{tq}", task_queue=tq,
                                    execution_timeout=dt.timedelta(seconds=60))
        d = await refused("WorkflowService/StartWorkflowExecution", "client-worker",
                          lambda: wc.start_workflow(ConformanceGreeting.run, "x", id=f"wf-denied-{hexid()}", task_queue=tq))
        async with worker(wc, tq):
            assert await h.result() == "Hello, reload!"
        return f"client start allowed and completed by the worker, worker start {d}"

    async def reload_refused(break_it) -> str:
        need_gate()
        if not policy_path or not gate_log:
            raise Skip("BULWARK_GATE_POLICY or BULWARK_GATE_LOG not set")
        if not os.access(policy_path, os.W_OK) or not os.access(policy_path.parent, os.W_OK):
            raise Skip(f"{policy_path} is not writable here")
        original = policy_path.read_bytes()
        lines = original.decode().splitlines(keepends=True)
        broken, line_no, what = break_it(lines)
        since = log_size(gate_log)
        write_atomic(policy_path, broken.encode())
        try:
            logged = await wait_refused_reload(since, line_no)
            kept = await old_policy_in_force()
        finally:
            restored_at = log_size(gate_log)
            write_atomic(policy_path, original)
        assert policy_path.read_bytes() == original, "the policy file was not restored"
        # The gate compares the file with the text it last looked at (the broken one), so the
        # restored file is a change it must take: "policy reloaded", and no refusal.
        deadline = time.monotonic() + 15
        while True:
            await asyncio.sleep(1)
            after = log_lines(gate_log, restored_at)
            again = [d for d in after if str(d.get("level", "")).upper() in ("WARN", "ERROR") and "polic" in json.dumps(d).lower()]
            assert not again, f"the restored policy was refused: {json.dumps(again[0])[:300]}"
            if any("policy reloaded" in json.dumps(d) for d in after):
                break
            assert time.monotonic() < deadline, "the gate did not log 'policy reloaded' for the restored file within 15 s"
        back = await old_policy_in_force()
        return f"{what} (line {line_no}): refused, logged {logged}; old policy kept: {kept}; restored and reloaded: {back}"

    def syntax_typo(lines: list[str]) -> tuple[str, int, str]:
        # The first `key = value` line loses its '=': a TOML syntax error on exactly that line.
        for i, ln in enumerate(lines):
            if re.match(r"^\s*[A-Za-z0-9_.\"-]+\s*=", ln) and not ln.lstrip().startswith("#"):
                out = list(lines)
                out[i] = ln.replace("=", " ", 1)
                return "".join(out), i + 1, "a key without '='"
        raise Skip("no key = value line in the policy file")

    def method_typo(lines: list[str]) -> tuple[str, int, str]:
        # A misspelt method name (valid TOML): validation against the known methods refuses it.
        for i, ln in enumerate(lines):
            if not ln.lstrip().startswith("#") and "PollWorkflowTaskQueue" in ln:
                out = list(lines)
                out[i] = ln.replace("PollWorkflowTaskQueue", "PollWorkflowTaskQeueu", 1)
                return "".join(out), i + 1, "a misspelt method name"
        raise Skip("the policy file names no PollWorkflowTaskQueue to misspell")

    # oauth: control binds its Temporal tokens to the certificate presented on the request.
    async def oauth_token_bound_to_certificate():
        secret = deployment_secret("worker_client_secret")
        token = oauth_token("worker", secret)
        cnf = jwt_claims(token).get("cnf")
        want = confirmation(stack.certs, "client-worker")
        assert cnf == want or (cnf and cnf.get("x5t#S256") == want["x5t#S256"] and cnf.get("uri") == want["uri"]), \
            f"cnf {cnf} is not client-worker's {want}"
        status, body = oauth_request("worker", secret, with_cert=False)
        assert status == 400 and body.get("error") == "invalid_request", f"without a certificate: {status} {body}"
        out = f"cnf = client-worker's URI and thumbprint; without a certificate 400 {body.get('error')}"
        if upstream:
            api = oauth_token("api", deployment_secret("api_client_secret"))
            c = await client_with(api, identity="client-worker")
            d = await refused("WorkflowService/ListWorkflowExecutions", "client-worker",
                              lambda: c.workflow_service.list_workflow_executions(ListWorkflowExecutionsRequest(namespace=ns)),
                              status=RPCStatusCode.UNAUTHENTICATED)
            out += f"; the api's token with client-worker.crt {d}"
        return out

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
    await run("oauth: a worker token from bulwark-control is bound to the certificate it was requested with", oauth_token_bound_to_certificate)
    await run("9 gate: the worker identity polls and completes, but start, signal, terminate and reset are refused", gate_worker_role)
    await run("9 gate: the client identity starts and describes, but cannot poll", gate_client_role)
    await run("9 gate: the worker token with client-api's certificate is refused", gate_stolen_worker_token)
    await run("9 gate: a token without cnf (or bound to another certificate) is refused", gate_token_without_cnf)
    await run("9 gate: only the gate's certificate reaches the frontend; every client certificate is refused there", gate_upstream_refuses_clients)
    await run("9 gate: a task queue outside the ACL is refused for start and for poll", gate_task_queue_acl)
    await run("9 gate: unknown methods are refused", gate_unknown_method)
    await run("9 gate: a policy file with a syntax typo is refused at reload; the old policy keeps working", lambda: reload_refused(syntax_typo))
    await run("9 gate: a policy naming a misspelt method is refused at reload; the old policy keeps working", lambda: reload_refused(method_typo))
    await run("9 gate: every refusal above is in the gate's audit log with the caller's identity", gate_audit_has_refusals)
    await run("8 data survives a Temporal restart, a Postgres restart and a gate restart", survives_restarts, timeout=400)
    return r.summary()


if __name__ == "__main__":
    code = asyncio.run(main())
    sys.stdout.flush()
    sys.stderr.flush()
    # The SDK's native runtime can abort during interpreter finalisation; the results are
    # already printed, so leave without finalising to keep the exit status meaningful.
    os._exit(code)
