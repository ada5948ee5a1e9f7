#!/usr/bin/env python3
"""A Temporal token for the Temporal UI's certificate, as the authenticating proxy an operator
puts in front of the UI would hand it on: signed with the stack's JWT key, bound (RFC 8705
`cnf`) to client-ui.crt, scope `temporal:<ns>:read` (role viewer in config/gate-policy.toml),
permission `<ns>:read`. The UI forwards the caller's Authorization header to bulwark-gate over
its own mTLS connection, so the gate sees the UI's certificate: a token bound to any other
certificate is refused there.

Usage: ui_token.py CERTS_DIR [NAMESPACE]   prints the token (nothing else)
"""
import json
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import jwt as pyjwt  # noqa: E402

from common import confirmation  # noqa: E402


def main() -> int:
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    certs = Path(sys.argv[1])
    ns = sys.argv[2] if len(sys.argv) == 3 else "default"
    key = json.loads((certs / "jwks.json").read_text())["keys"][0]
    now = int(time.time())
    claims = {
        "sub": "compose-ui-check", "iss": "bulwark", "aud": "temporal", "iat": now, "nbf": now,
        "exp": now + 300, "jti": str(uuid.uuid4()), "scope": f"temporal:{ns}:read",
        "permissions": [f"{ns}:read"], "cnf": confirmation(certs, "client-ui"),
    }
    private = (certs / "temporal-jwt-private.key").read_bytes()
    print(pyjwt.encode(claims, private, algorithm=key["alg"], headers={"kid": key["kid"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
