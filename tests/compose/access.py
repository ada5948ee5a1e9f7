#!/usr/bin/env python3
"""config/access.table, checked: who owns and may read each secret file of the compose stack.

    access.py compose CONFIG   CONFIG (`compose config --format json`, or docker-compose.yml
                               when PyYAML is installed) runs each service as its identity,
                               in no group beyond the table's shared groups of that identity
                               (writers: in every group they must keep)
    access.py tree VOLUME DIR  every file of VOLUME in DIR has the owner, group and mode listed
    access.py probes           `SERVICE PATH yes|no` for every running service and listed file:
                               whether that service may read it (inside its container)

Exits non-zero naming every disagreement.
"""
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TABLE = os.environ.get("BULWARK_ACCESS_TABLE", os.path.join(ROOT, "config", "access.table"))
# Where each volume is mounted in the long-running services.
MOUNTS = {"certs": "/certs", "credentials": "/credentials", "secrets": "/run/bulwark/secrets"}
# The services least_privilege probes (running, with a shell).
PROBED = ["temporal", "bulwark-api", "bulwark-worker", "temporal-ui", "bulwark-control", "gate"]
# The services that replace granted files (bulwark-init, bulwark-control) and so must be in
# every group they keep; checked separately.
WRITERS = ("bulwark-control", "bulwark-init-db")


def load():
    users, groups, services, files = {}, {}, {}, []
    with open(TABLE) as f:
        for n, line in enumerate(f, 1):
            w = line.split()
            if not w or w[0].startswith("#"):
                continue
            if w[0] == "user" and len(w) == 3:
                users[w[1]] = int(w[2])
            elif w[0] == "group" and len(w) >= 5:
                # A group shared by two or more identities: GROUP GID MEMBER MEMBER...
                groups[w[1]] = (int(w[2]), w[3:])
            elif w[0] == "service" and len(w) == 3:
                services[w[1]] = w[2]
            elif w[0] == "file" and len(w) == 5:
                files.append((w[1], w[2], w[3], int(w[4], 8)))
            else:
                sys.exit(f"{TABLE}:{n}: not a user, group, service or file row: {line.strip()}")
    for g, (gid, members) in groups.items():
        if g in users:
            sys.exit(f"{TABLE}: group {g} is also a user")
        if gid in users.values() or [x for x, _ in groups.values()].count(gid) > 1:
            sys.exit(f"{TABLE}: group {g}: gid {gid} is taken")
        for m in members:
            if m not in users:
                sys.exit(f"{TABLE}: group {g}: unknown member {m}")
    for path, owner, group, mode in files:
        if owner not in users:
            sys.exit(f"{TABLE}: {path}: unknown identity {owner}")
        if group not in users and group not in groups:
            sys.exit(f"{TABLE}: {path}: unknown identity or group {group}")
    for s, who in services.items():
        if who not in users:
            sys.exit(f"{TABLE}: service {s}: unknown identity {who}")
    return users, groups, services, files


def gid_of(name, users, groups):
    return groups[name][0] if name in groups else users[name]


def readable(identity, owner, group, mode, groups):
    member = identity == group or identity in groups.get(group, (0, []))[1]
    return identity == owner or (member and mode & 0o040 != 0)


def check_compose(path, users, groups, services, files):
    with open(path) as f:
        text = f.read()
    try:
        cfg = json.loads(text)
    except ValueError:
        import yaml  # only for a docker-compose.yml given directly
        cfg = yaml.safe_load(text)
    bad = []
    svcs = cfg.get("services", {})
    for s, who in services.items():
        if s not in svcs:
            bad.append(f"service {s} is not in {path}")
            continue
        uid = users[who]
        user = svcs[s].get("user")
        # No `user:` means the image's own (bulwark's images run as bulwark).
        if user is None and who != "bulwark":
            bad.append(f"{s}: no user:, the table says {who} ({uid})")
        elif user is not None and str(user) != f"{uid}:{uid}":
            bad.append(f"{s}: user {user}, the table says {who} ({uid}:{uid})")
        if s in WRITERS:
            continue
        # Any other service is in no group but the shared groups the table makes its identity a
        # member of (it may need fewer: temporal-schema reads no key): one more group_add would
        # let it read another service's files. That a member reads its shared files is probed.
        have = {str(g) for g in svcs[s].get("group_add") or []}
        allowed = {str(gid) for gid, members in groups.values() if who in members}
        if not have <= allowed:
            bad.append(f"{s}: group_add {sorted(have - allowed)} beyond the table's shared groups for {who} {sorted(allowed)}")
    # A writer that replaces a granted file must be in its group to keep the grant.
    for s in WRITERS:
        if s not in svcs:
            continue
        have = {str(g) for g in svcs[s].get("group_add") or []}
        for p, owner, group, mode in files:
            vol = p.split("/", 1)[0]
            if group == owner or group == "postgres" or vol == "secrets":
                continue
            if s == "bulwark-init-db" and vol != "credentials":
                continue
            gid = gid_of(group, users, groups)
            if str(gid) not in have:
                bad.append(f"{s}: group_add lacks {gid} ({group}), which {p} is granted to")
    return bad


def check_tree(volume, d, users, groups, files):
    bad, n = [], 0
    for p, owner, group, mode in files:
        vol, name = p.split("/", 1)
        if vol != volume:
            continue
        n += 1
        try:
            st = os.stat(os.path.join(d, name))
        except FileNotFoundError:
            bad.append(f"{p} missing")
            continue
        got = (st.st_uid, st.st_gid, st.st_mode & 0o777)
        want = (users[owner], gid_of(group, users, groups), mode)
        if got != want:
            bad.append(f"{p}: {got[0]}:{got[1]} {got[2]:o}, the table says {want[0]}:{want[1]} {want[2]:o}")
    if n == 0:
        bad.append(f"no file of volume {volume} in {TABLE}")
    return bad


def main():
    users, groups, services, files = load()
    cmd = sys.argv[1:2]
    if cmd == ["compose"] and len(sys.argv) == 3:
        bad = check_compose(sys.argv[2], users, groups, services, files)
        ok = f"{len(services)} services run as the table's identities, in no other group"
    elif cmd == ["tree"] and len(sys.argv) == 4:
        bad = check_tree(sys.argv[2], sys.argv[3], users, groups, files)
        ok = f"{sys.argv[2]}: owners, groups and modes as the table says"
    elif cmd == ["probes"] and len(sys.argv) == 2:
        for s in PROBED:
            for p, owner, group, mode in files:
                vol, name = p.split("/", 1)
                yes = readable(services[s], owner, group, mode, groups)
                print(s, f"{MOUNTS[vol]}/{name}", "yes" if yes else "no")
        return
    else:
        sys.exit(__doc__)
    if bad:
        print("; ".join(bad))
        sys.exit(1)
    print(ok)


if __name__ == "__main__":
    main()
