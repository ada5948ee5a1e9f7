#!/usr/bin/env python3
"""Writes the seed corpora in fuzz/corpus/<target>/ (run from the repository root).

Seeds only: libFuzzer adds what it finds, and crash inputs are committed beside them.
JWT seeds are signed with the fuzz crate's public test key (crates/fuzz-targets/src/lib.rs)
for its fixed JWT_NOW, so they reach the claim checks. Needs python3-cryptography.
"""
import base64, gzip, hashlib, json, os, struct, sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID
import datetime

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
NOW = 1_800_000_000
TEST_KEY = b"""-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgqbfivW+KxRoe6I77
bRIP09H5oGVjEUvv2lUYYn1qoAehRANCAAQQvA7ILVJfySbD0ZTBHM4WFnxVEN7j
69jSGgtWyXuDNbxAxV+P9kp8yiUBLVdNWavyZEANeqBBlcvfM48kBZHg
-----END PRIVATE KEY-----
"""


def put(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def jwts():
    key = serialization.load_pem_private_key(TEST_KEY, None)
    nums = key.public_key().public_numbers()
    x, y = b64(nums.x.to_bytes(32, "big")), b64(nums.y.to_bytes(32, "big"))
    canon = '{"crv":"P-256","kty":"EC","x":"%s","y":"%s"}' % (x, y)
    kid = b64(hashlib.sha256(canon.encode()).digest())

    def sign(header, claims):
        signing_input = b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())
        r, s = decode_dss_signature(key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
        return signing_input + "." + b64(r.to_bytes(32, "big") + s.to_bytes(32, "big"))

    claims = {"sub": "client-worker", "iss": "https://control.bulwark.test", "aud": "bulwark-api",
              "iat": NOW - 10, "nbf": NOW - 10, "exp": NOW + 290, "jti": "j-1",
              "permissions": ["default:write"], "scope": "temporal-worker"}
    h = {"alg": "ES256", "typ": "JWT", "kid": kid}
    put("jwt", "valid", sign(h, claims))
    put("jwt", "valid_cnf", sign(h, dict(claims, cnf={"x5t#S256": b64(b"\x01" * 32)})))
    put("jwt", "expired", sign(h, dict(claims, iat=NOW - 4000, nbf=NOW - 4000, exp=NOW - 3700)))
    put("jwt", "too_long", sign(h, dict(claims, exp=NOW + 86400)))
    put("jwt", "other_aud", sign(h, dict(claims, aud="temporal")))
    put("jwt", "no_exp", sign(h, {k: v for k, v in claims.items() if k != "exp"}))
    put("jwt", "unknown_kid", sign(dict(h, kid="nope"), claims))
    put("jwt", "rs256_header", sign(dict(h, alg="RS256"), claims))
    none = b64(b'{"alg":"none","kid":"%s"}' % kid.encode()) + "." + b64(json.dumps(claims).encode()) + "."
    put("jwt", "alg_none", none)
    put("jwt", "malformed", "a.b")
    put("jwt", "garbage", "eyJ.eyJ.eyJ")


def pems():
    ca_key = ec.generate_private_key(ec.SECP256R1())
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    start = datetime.datetime(2026, 1, 1)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Bulwark fuzz CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(1)
          .not_valid_before(start).not_valid_after(start + datetime.timedelta(days=3650))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    leaf = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "worker")]))
            .issuer_name(ca_name).public_key(leaf_key.public_key()).serial_number(2)
            .not_valid_before(start).not_valid_after(start + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("worker.bulwark.test"),
                x509.UniformResourceIdentifier("spiffe://bulwark.test/client/worker"),
                x509.IPAddress(__import__("ipaddress").ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH,
                                                   x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = lambda c: c.public_bytes(serialization.Encoding.PEM)
    key_pem = leaf_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption())
    put("pem_cert", "ca", pem(ca))
    put("pem_cert", "chain", pem(leaf) + pem(ca))
    put("pem_cert", "leaf_and_key", pem(leaf) + key_pem)
    put("pem_cert", "key", key_pem)
    put("pem_cert", "jwt_key", TEST_KEY)
    put("pem_cert", "truncated", pem(ca)[:200])
    put("pem_cert", "bad_base64", b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n")
    put("pem_cert", "empty", b"")
    put("pem_cert", "der", ca.public_bytes(serialization.Encoding.DER))


def components():
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    cdir = os.path.join(repo, "components")
    for f in sorted(os.listdir(cdir)):
        with open(os.path.join(cdir, f), "rb") as fh:
            put("component_yaml", f, fh.read())
    put("component_yaml", "not_yaml", "apiVersion: [\n")
    put("component_yaml", "wrong_kind", "apiVersion: dapr.io/v1alpha1\nkind: Subscription\nmetadata:\n  name: x\n")
    put("component_yaml", "anchors", "a: &a [*a]\n")


def credential_refs():
    put("credential_ref", "basic", '{"name":"db","credential_type":"basic"}')
    put("credential_ref", "store", '{"name":"api","credential_type":"api_key","store_name":"vault"}')
    put("credential_ref", "custom", '{"name":"x","credential_type":"ssh_key"}')
    put("credential_ref", "empty_name", '{"name":"","credential_type":"basic"}')
    put("credential_ref", "bad_type", '{"name":"db","credential_type":7}')
    put("credential_ref", "not_json", "{")


def token_forms():
    basic = base64.b64encode(b"client-worker:s%3Acret").decode()
    put("token_form", "basic", "Basic %s\ngrant_type=client_credentials&scope=temporal-worker" % basic)
    put("token_form", "form_secret", "\ngrant_type=client_credentials&client_id=client-worker&client_secret=abc%20def")
    put("token_form", "both", "Basic %s\ngrant_type=client_credentials&client_secret=x" % basic)
    put("token_form", "mismatch", "Basic %s\ngrant_type=client_credentials&client_id=other" % basic)
    put("token_form", "bad_grant", "\ngrant_type=password&client_id=a&client_secret=b")
    put("token_form", "bad_basic", "Basic !!!\ngrant_type=client_credentials")
    put("token_form", "bad_escape", "Basic %s\ngrant_type=client_credentials" % base64.b64encode(b"a%zz:b%").decode())
    put("token_form", "no_header", "grant_type=client_credentials")


def api_bodies():
    put("api_json", "greeting", '{"workflow_type":"Greeting","input":{"name":"Ada"}}')
    put("api_json", "http_call", json.dumps({"workflow_type": "HttpCall", "workflow_id": "wf-1",
        "task_queue": "bulwark-default", "input": {"url": "https://example.test"},
        "credentials": [{"name": "api", "credential_type": "oauth_client", "store_name": "vault"}]}))
    put("api_json", "secret_in_input", '{"workflow_type":"DatabaseQuery","input":{"password":"hunter2"}}')
    put("api_json", "bad_id", '{"workflow_type":"Greeting","workflow_id":"a b"}')
    put("api_json", "unknown_field", '{"workflow_type":"Greeting","extra":1}')
    put("api_json", "bad_cred", '{"workflow_type":"Greeting","credentials":[1]}')
    put("api_json", "array_input", '{"workflow_type":"Greeting","input":[]}')


def pb_str(field, s):
    b = s.encode()
    return bytes([field << 3 | 2, len(b)]) + b


def gate():
    # Namespace 1, workflow_id 2, workflow_type 3 {name 1}, task_queue 4 {name 1}: the
    # StartWorkflowExecutionRequest layout; other methods read other numbers.
    msg = (pb_str(1, "default") + pb_str(2, "wf-1") + bytes([3 << 3 | 2, 10]) + pb_str(1, "Greeting")
           + bytes([4 << 3 | 2, 17]) + pb_str(1, "bulwark-default"))
    frame = lambda flag, m: bytes([flag]) + struct.pack(">I", len(m)) + m
    gz = gzip.compress(msg, mtime=0)
    # The first byte picks Catalog::all()[(byte >> 1) % len] (136 methods with the SDK 1.1
    # protos): Describe 40, ExecuteMultiOperation 42, PollWorkflowTaskQueue 79,
    # SignalWithStart 109, StartWorkflowExecution 114, Terminate 118; bit 0 means gzip.
    for sel in (80, 84, 158, 218, 228, 236):
        put("gate_decode", "plain_%d" % sel, bytes([sel]) + frame(0, msg))
        put("gate_decode", "gzip_%d" % (sel + 1), bytes([sel + 1]) + frame(1, gz))
    put("gate_decode", "two_members", bytes([229]) + frame(1, gz + gzip.compress(pb_str(1, "other"), mtime=0)))
    put("gate_decode", "short", b"\x00\x00\x00")
    put("gate_decode", "bad_len", b"\x00\x00\x00\x00\x00\x09ab")
    put("gate_decode", "corrupt_gzip", bytes([1]) + frame(1, b"\x1f\x8b\x08garbage"))
    put("gate_decode", "truncated_varint", bytes([0]) + frame(0, b"\x0a\xff\xff"))


def policies():
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with open(os.path.join(repo, "config", "gate-policy.toml"), "rb") as f:
        put("gate_policy", "shipped", f.read())
    put("gate_policy", "minimal", 'version = 1\n[roles.worker]\nidentities = ["worker"]\nmethods = ["PollWorkflowTaskQueue"]\ntask_queues = ["bulwark-*"]\n')
    put("gate_policy", "bad_version", "version = 2\n")
    put("gate_policy", "unknown_method", 'version = 1\n[roles.x]\nidentities = ["a"]\nmethods = ["Nope"]\n')
    put("gate_policy", "bad_glob", 'version = 1\n[roles.x]\nidentities = ["**["]\nscopes = ["a:*:*"]\nmethods = ["*"]\nnamespaces = [""]\n')
    put("gate_policy", "not_toml", "[roles\n")


ALL = {f.__name__: f for f in (jwts, pems, components, credential_refs, token_forms, api_bodies, gate, policies)}

if __name__ == "__main__":
    # Arguments name the generators to run (default: all); PEM keys are fresh on every run.
    for name in sys.argv[1:] or ALL:
        ALL[name]()
    sys.exit(0)
