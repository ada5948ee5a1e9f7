#!/usr/bin/env bash
# Checks a bulwark-init certs directory with OpenSSL only, independently of our Rust code.
# Usage: scripts/check-certs-openssl.sh DIR    (prints a line per check, exits non-zero on failure)
set -uo pipefail
dir=${1:?usage: $0 CERTS_DIR}
pass=0 fail=0
ok()  { echo "ok   - $1"; pass=$((pass+1)); }
bad() { echo "FAIL - $1"; fail=$((fail+1)); }
expect() { # expect <0|1> <description> <command...>: 0 = must succeed, 1 = must fail
  local want=$1 what=$2; shift 2
  if "$@" >/dev/null 2>&1; then got=0; else got=1; fi
  [[ $got == "$want" ]] && ok "$what" || bad "$what"
}
# The leaf file holds leaf + intermediate; openssl verify reads only the first certificate,
# so the intermediate is passed as untrusted, exactly as a TLS peer would receive it.
leaf() { openssl x509 -in "$1"; }
chain_verify() { # <trust file> <purpose> <cert file> [partial]
  local extra=(); [[ ${4:-} == partial ]] && extra=(-partial_chain)
  openssl verify "${extra[@]}" -CAfile "$1" -untrusted "$3" -purpose "$2" <(leaf "$3") | grep -q ': OK$'
}
text() { openssl x509 -in "$1" -noout -text; }

expect 0 "root CA is self-signed and verifies" chain_verify "$dir/ca.crt" any "$dir/ca.crt"
for ca in internode-ca client-ca server-ca gate-ca; do
  expect 0 "$ca verifies against ca.crt" openssl verify -CAfile "$dir/ca.crt" "$dir/$ca.crt"
  expect 0 "$ca is a CA (pathlen 0)" bash -c "openssl x509 -in '$dir/$ca.crt' -noout -text | grep -q 'CA:TRUE, pathlen:0'"
done
expect 0 "temporal-server verifies as sslserver against ca.crt" chain_verify "$dir/ca.crt" sslserver "$dir/temporal-server.crt"
expect 1 "temporal-server does NOT verify as sslclient" chain_verify "$dir/ca.crt" sslclient "$dir/temporal-server.crt"
for san in DNS:temporal, DNS:temporal-server, DNS:localhost, "IP Address:127.0.0.1"; do
  expect 0 "temporal-server has SAN ${san%,}" bash -c "openssl x509 -in '$dir/temporal-server.crt' -noout -ext subjectAltName | tr -d ' ' | tr ',' '\n' | grep -qx '$(tr -d ' ,' <<<"$san")'"
done
expect 0 "temporal-server checks host 'temporal'" bash -c "openssl verify -CAfile '$dir/ca.crt' -untrusted '$dir/temporal-server.crt' -verify_hostname temporal <(openssl x509 -in '$dir/temporal-server.crt') | grep -q OK"
expect 1 "temporal-server fails host 'evil.example'" bash -c "openssl verify -CAfile '$dir/ca.crt' -untrusted '$dir/temporal-server.crt' -verify_hostname evil.example <(openssl x509 -in '$dir/temporal-server.crt') | grep -q ': OK$'"
expect 0 "internode verifies as sslserver in its own domain" chain_verify "$dir/internode-trust.pem" sslserver "$dir/internode.crt" partial
expect 0 "internode verifies as sslclient in its own domain" chain_verify "$dir/internode-trust.pem" sslclient "$dir/internode.crt" partial
for c in "$dir"/temporal-client.crt "$dir"/client-*.crt; do
  [[ $c == *client-ca.crt ]] && continue
  n=$(basename "$c" .crt)
  expect 0 "$n verifies as sslclient against client-trust.pem" chain_verify "$dir/client-trust.pem" sslclient "$c" partial
  expect 1 "$n does NOT verify against internode-trust.pem" chain_verify "$dir/internode-trust.pem" sslclient "$c" partial
  # Temporal's frontend trusts gate-trust.pem only: a caller's certificate must not get past it.
  expect 1 "$n does NOT verify against gate-trust.pem" chain_verify "$dir/gate-trust.pem" sslclient "$c" partial
  expect 1 "$n does NOT verify as sslserver" chain_verify "$dir/ca.crt" sslserver "$c"
  expect 0 "$n has clientAuth only" bash -c "text=\$(openssl x509 -in '$c' -noout -ext extendedKeyUsage); grep -q 'TLS Web Client Authentication' <<<\"\$text\" && ! grep -q 'Server' <<<\"\$text\""
  expect 0 "$n has a spiffe URI SAN" bash -c "openssl x509 -in '$c' -noout -ext subjectAltName | grep -q 'URI:spiffe://'"
done
g="$dir/gate-client.crt"
expect 0 "gate-client verifies as sslclient against gate-trust.pem" chain_verify "$dir/gate-trust.pem" sslclient "$g" partial
expect 1 "gate-client does NOT verify against client-trust.pem" chain_verify "$dir/client-trust.pem" sslclient "$g" partial
expect 1 "gate-client does NOT verify against internode-trust.pem" chain_verify "$dir/internode-trust.pem" sslclient "$g" partial
expect 1 "gate-client does NOT verify as sslserver" chain_verify "$dir/ca.crt" sslserver "$g"
expect 0 "gate-client has clientAuth only" bash -c "text=\$(openssl x509 -in '$g' -noout -ext extendedKeyUsage); grep -q 'TLS Web Client Authentication' <<<\"\$text\" && ! grep -q 'Server' <<<\"\$text\""
expect 0 "gate-client has URI SAN spiffe://.../gate" bash -c "openssl x509 -in '$g' -noout -ext subjectAltName | grep -Eq 'URI:spiffe://[^/]+/gate\$'"
expect 0 "gate-trust.pem holds gate-ca certificates only" bash -c "subs=\$(openssl crl2pkcs7 -nocrl -certfile '$dir/gate-trust.pem' | openssl pkcs7 -print_certs -noout | grep '^subject'); [[ -n \$subs ]] && ! grep -v 'CN *= *Bulwark Gate CA' <<<\"\$subs\""
expect 1 "temporal-server does NOT verify against client-trust.pem" chain_verify "$dir/client-trust.pem" sslclient "$dir/temporal-server.crt" partial
for pair in ca internode-ca client-ca server-ca gate-ca temporal-server internode temporal-client client-api gate-client; do
  a=$(openssl x509 -in "$dir/$pair.crt" -noout -pubkey | openssl pkey -pubin -outform DER | sha256sum)
  b=$(openssl pkey -in "$dir/$pair.key" -pubout -outform DER | sha256sum)
  [[ $a == "$b" ]] && ok "$pair.key matches $pair.crt" || bad "$pair.key matches $pair.crt"
done
a=$(openssl pkey -in "$dir/temporal-jwt-private.key" -pubout)
[[ $a == "$(cat "$dir/temporal-jwt-public.key")" ]] && ok "JWT public key matches the private key" || bad "JWT public key matches the private key"
for f in "$dir"/*.key "$dir"/*.jwt; do
  [[ $f == *public.key ]] && continue
  # 0640 is a group grant to the key's one consumer (the compose stack's least privilege).
  m=$(stat -c %a "$f"); [[ $m == 600 || $m == 640 ]] && ok "$(basename "$f") is 0$m" || bad "$(basename "$f") is $m, not 0600 or 0640"
done
m=$(stat -c %a "$dir"); [[ $m == 700 || $m == 711 || $m == 750 ]] && ok "directory is 0$m" || bad "directory is $m, not 0700 (or 0711/0750)"
echo "$pass passed, $fail failed"
[[ $fail == 0 ]]
