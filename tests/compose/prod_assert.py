#!/usr/bin/env python3
"""Assert the promises of docker-compose.prod.yml on its rendered form
(`docker compose -f docker-compose.yml -f docker-compose.prod.yml --profile ui config --format json`).

Usage: prod_assert.py RENDERED.json docker-compose.prod.yml
Prints one summary line; exits 1 naming every broken promise.
"""

from __future__ import annotations

import json
import re
import sys

ONE_SHOTS = {"bulwark-init", "bulwark-init-db", "bulwark-audit-owner", "temporal-schema", "temporal-setup"}
# Who may hold the Postgres superuser password: the server, and the one-shot that hands the
# audit table to its NOLOGIN owner (superuser SQL, after the migrations) and exits.
SUPERUSER_HOLDERS = {"postgres", "bulwark-audit-owner"}
PUBLISHED_OK = {"bulwark-api", "bulwark-control", "gate"}
# Ports of Temporal's own services (frontend gRPC and HTTP, the frontend behind the gate,
# internode, membership): never published; only the gate faces clients.
TEMPORAL_PORTS = {"7233", "7237", "7243", "7234", "7235", "7236", "7239", "6933", "6934", "6935", "6936", "6939"}
# Everything that talks to Temporal, and the variable that says where.
TEMPORAL_CLIENTS = {"bulwark-api": "BULWARK_TEMPORAL_ADDRESS", "bulwark-worker": "BULWARK_TEMPORAL_ADDRESS",
                    "bulwark-control": "BULWARK_TEMPORAL_ADDRESS", "temporal-setup": "BULWARK_TEMPORAL_ADDRESS",
                    "temporal-ui": "TEMPORAL_ADDRESS"}
# Who may hold the gate's database password: the server and the one-shot writing its URL
# file; the gate itself reads only that file.
GATE_DB_HOLDERS = {"postgres", "bulwark-init-db"}
# Images whose own USER is unprivileged (ours: 10001); others must set `user:` themselves.
OWN_IMAGES_NON_ROOT = ("/init:", "/control:", "/api:", "/worker:", "/gate:")
SECRETISH = re.compile(r"(PASSWORD|SECRET|TOKEN|PRIVATE|_KEY)$", re.I)


def main() -> int:
    cfg = json.load(open(sys.argv[1]))
    raw = open(sys.argv[2]).read()
    services = cfg["services"]
    problems: list[str] = []

    for name, s in services.items():
        ports = s.get("ports") or []
        if ports and name not in PUBLISHED_OK:
            problems.append(f"{name} publishes {[p.get('published') for p in ports]}")
        for p in ports:
            target = str(p.get("target"))
            if name == "postgres" or target == "5432":
                problems.append(f"{name} publishes database port {target}")
            if name != "gate" and target in TEMPORAL_PORTS:
                problems.append(f"{name} publishes Temporal port {target}: only the gate faces clients")
        if not s.get("read_only"):
            problems.append(f"{name} root filesystem is writable")
        if "no-new-privileges:true" not in (s.get("security_opt") or []):
            problems.append(f"{name} lacks no-new-privileges")
        if "ALL" not in (s.get("cap_drop") or []):
            problems.append(f"{name} does not drop all capabilities")
        user = str(s.get("user", ""))
        image = s.get("image", "")
        if user in ("0", "0:0", "root"):
            # Allowed only for the one-shot that hands out secret files, and only without a network.
            if not (name == "bulwark-init" and s.get("network_mode") == "none"):
                problems.append(f"{name} runs as root")
        elif not user and not any(t in image for t in OWN_IMAGES_NON_ROOT) and name != "postgres":
            problems.append(f"{name} has no non-root user")
        for k, v in (s.get("environment") or {}).items():
            if SECRETISH.search(k) and not k.endswith("_FILE") and not str(v).startswith("/"):
                problems.append(f"{name} env {k} looks like a secret value")
            if v and re.fullmatch(r"[0-9a-f]{32,}", str(v)):
                problems.append(f"{name} env {k} holds a secret-looking value")
        if name not in ONE_SHOTS:
            if s.get("restart") not in ("unless-stopped", "always", "on-failure"):
                problems.append(f"{name} has no restart policy")
            limits = ((s.get("deploy") or {}).get("resources") or {}).get("limits") or {}
            if not (limits.get("memory") and limits.get("cpus")):
                problems.append(f"{name} has no cpu/memory limits")
        log = s.get("logging") or {}
        if not (log.get("options") or {}).get("max-size"):
            problems.append(f"{name} has no log rotation")

    pg = services["postgres"]
    if not pg.get("secrets") or not pg["environment"].get("POSTGRES_PASSWORD_FILE", "").startswith("/run/secrets/"):
        problems.append("postgres does not take its password from a Docker secret")
    for name in ("temporal", "temporal-schema"):
        if not any(x.get("source") == "temporal-db-password" for x in services[name].get("secrets") or []):
            problems.append(f"{name} does not receive the temporal-db-password secret")
    if any(x.get("source") == "postgres-superuser-password" for n, s in services.items() if n not in SUPERUSER_HOLDERS for x in s.get("secrets") or []):
        problems.append(f"the superuser password is granted beyond {sorted(SUPERUSER_HOLDERS)}")
    nets = cfg.get("networks") or {}
    for n in ("data", "control"):
        if not (nets.get(n) or {}).get("internal"):
            problems.append(f"network {n} is not internal")
    if set((services["postgres"].get("networks") or {}).keys()) != {"data"}:
        problems.append(f"postgres is on {sorted((services['postgres'].get('networks') or {}).keys())}, want only data")
    if "public" in (services["temporal"].get("networks") or {}):
        problems.append("temporal is on the public network")
    # Of all Temporal-facing ports, only the gate's gRPC port is published (not its health and
    # metrics listener); Temporal publishes nothing and its frontend sits where the gate
    # forwards; every client goes through the gate.
    gate = services.get("gate")
    if not gate:
        problems.append("no gate service")
    else:
        gate_targets = {str(p.get("target")) for p in gate.get("ports") or []}
        if gate_targets != {"7233"}:
            problems.append(f"gate publishes {sorted(gate_targets)}, want only 7233")
        genv = gate.get("environment") or {}
        upstream = str(genv.get("BULWARK_TEMPORAL_UPSTREAM_ADDRESS", ""))
        frontend_port = str((services["temporal"].get("environment") or {}).get("BULWARK_TEMPORAL_FRONTEND_PORT", "7233"))
        if upstream != f"temporal:{frontend_port}":
            problems.append(f"gate forwards to {upstream!r}, Temporal's frontend is temporal:{frontend_port}")
        if frontend_port == "7233":
            problems.append("Temporal's frontend still on 7233 (BULWARK_TEMPORAL_FRONTEND_PORT unset)")
        if "public" not in (gate.get("networks") or {}):
            problems.append("the gate is not on the public network (its port cannot be published)")
        if any(x.get("source") == "gate-db-password" for x in gate.get("secrets") or []):
            problems.append("the gate holds its database password (it reads only its URL file)")
    for name, var in TEMPORAL_CLIENTS.items():
        s = services.get(name)
        if s and not str((s.get("environment") or {}).get(var, "")).startswith("gate:"):
            problems.append(f"{name} reaches Temporal at {(s.get('environment') or {}).get(var)!r}, not through the gate")
    if any(x.get("source") == "gate-db-password" for n, s in services.items() if n not in GATE_DB_HOLDERS for x in s.get("secrets") or []):
        problems.append(f"the gate's database password is granted beyond {sorted(GATE_DB_HOLDERS)}")
    # Control publishes its public listener only; the admin page (8445) stays inside.
    control_targets = {str(p.get("target")) for p in services["bulwark-control"].get("ports") or []}
    if control_targets != {"8443"}:
        problems.append(f"bulwark-control publishes {sorted(control_targets)}, want only 8443 (not the admin listener)")
    ui = services.get("temporal-ui")
    if ui and ("ui" not in (ui.get("profiles") or []) or ui.get("ports")):
        problems.append("temporal-ui is enabled by default or published")
    if re.search(r"(?i)password\s*[:=]\s*['\"]?[A-Za-z0-9]{8,}", raw):
        problems.append("docker-compose.prod.yml contains a literal password")

    if problems:
        print("; ".join(problems))
        return 1
    print(f"{len(services)} services: only the gate (7233) of Temporal-facing ports, api and control (public listener) "
          "published; every Temporal client through the gate; no db/frontend/internode/admin/metrics port, read-only, "
          "non-root, cap-dropped, secrets as files, internal data/control networks, limits, restart, log rotation, UI off")
    return 0


if __name__ == "__main__":
    sys.exit(main())
