//! Where each item lives in the certs directory and what it must look like.
//!
//! File names follow the seed guide (`ca.crt`, `temporal-server.crt`, `client-token.jwt`, ...)
//! so its commands work unchanged against a Bulwark certs directory.

use std::path::Path;

use time::Duration;

use crate::{
    cert::CertInfo, cert::Profile, jwt::Scope, manifest::ItemKind, names::San, settings::Settings,
};

pub const JWT_KEY_ID: &str = "jwt-key";
pub const JWT_PRIVATE: &str = "temporal-jwt-private.key";
pub const JWT_PUBLIC: &str = "temporal-jwt-public.key";
pub const JWKS: &str = "jwks.json";
pub const CLI_CONFIG: &str = "temporal.toml";
pub const CLI_CONFIG_ID: &str = "cli-config";
pub const ROOT_CA: &str = "ca";
pub const INTERNODE_CA: &str = "internode-ca";
pub const CLIENT_CA: &str = "client-ca";
pub const SERVER_CA: &str = "server-ca";
/// The issuing CA of bulwark-gate's upstream client certificate: the only trust Temporal's
/// frontend accepts once the gate sits in front of it.
pub const GATE_CA: &str = "gate-ca";
/// bulwark-gate's client certificate towards Temporal's frontend.
pub const GATE_CLIENT: &str = "gate-client";

/// The pending next JWT signing key while it is published but not yet signing.
pub const JWT_NEXT: &str = crate::rotate::jwt::NEXT_KEY_FILE;

/// A trust bundle: the CA certificates one side accepts for client authentication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrustBundle {
    /// Item id in the manifest.
    pub id: &'static str,
    pub file: &'static str,
    /// The issuing CA whose certificates (current, and the previous one during an overlap)
    /// the bundle holds.
    pub ca: &'static str,
}

/// The internode bundle is the only trust the internode port accepts; the client bundle the
/// trust bulwark-gate accepts for callers; the gate bundle the only trust Temporal's frontend
/// accepts for client certificates (so a caller cannot go around the gate). None contains the
/// root, so no certificate from another domain can chain to it. The server CA has no bundle:
/// clients trust the root.
pub const TRUST_BUNDLES: [TrustBundle; 3] = [
    TrustBundle {
        id: "internode-trust",
        file: "internode-trust.pem",
        ca: INTERNODE_CA,
    },
    TrustBundle {
        id: "client-trust",
        file: "client-trust.pem",
        ca: CLIENT_CA,
    },
    TrustBundle {
        id: "gate-trust",
        file: "gate-trust.pem",
        ca: GATE_CA,
    },
];

/// The trust bundle that holds `ca_id`'s certificates, if it has one.
pub fn trust_bundle(ca_id: &str) -> Option<TrustBundle> {
    TRUST_BUNDLES.into_iter().find(|b| b.ca == ca_id)
}

/// A static token item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StaticToken {
    /// Item id in the manifest.
    pub id: &'static str,
    pub file: &'static str,
    /// The token's `sub` claim.
    pub subject: &'static str,
}

/// The item ids of the three static tokens, in [`Scope::ALL`] order.
pub const STATIC_TOKEN_IDS: [&str; 3] = ["system-token", "worker-token", "client-token"];

/// Where the static token of `scope` lives and whom it names.
pub fn token(scope: Scope) -> StaticToken {
    let (id, file, subject) = match scope {
        Scope::System => (STATIC_TOKEN_IDS[0], "system-token.jwt", "bulwark-system"),
        Scope::Worker => (STATIC_TOKEN_IDS[1], "worker-token.jwt", "bulwark-worker"),
        Scope::Client => (STATIC_TOKEN_IDS[2], "client-token.jwt", "bulwark-client"),
    };
    StaticToken { id, file, subject }
}

/// The client certificate the static token of `scope` is bound to (its `cnf`) and that the
/// CLI profile of that scope presents: `client-admin` for the system token, `client-worker`
/// for the worker token, `temporal-client` for the client token, and `temporal-client`
/// whenever the preferred identity does not exist (`exists` says which certificate ids do).
/// The one place that pairs tokens with certificates.
pub fn bound_certificate(scope: Scope, exists: impl Fn(&str) -> bool) -> &'static str {
    let preferred = match scope {
        Scope::System => "client-admin",
        Scope::Worker => "client-worker",
        Scope::Client => "temporal-client",
    };
    if preferred == "temporal-client" || exists(preferred) {
        preferred
    } else {
        "temporal-client"
    }
}

/// [`bound_certificate`] for the certificates `s` configures.
pub fn token_certificate(s: &Settings, scope: Scope) -> &'static str {
    bound_certificate(scope, |id| {
        s.identities.iter().any(|i| format!("client-{i}") == id)
    })
}

/// How one certificate item is issued.
#[derive(Debug, Clone)]
pub struct CertSpec {
    pub id: String,
    pub common_name: String,
    pub profile: Profile,
    pub lifetime: Duration,
    pub parent: Option<String>,
}

impl CertSpec {
    pub fn cert_file(&self) -> String {
        format!("{}.crt", self.id)
    }

    pub fn key_file(&self) -> String {
        format!("{}.key", self.id)
    }

    pub fn is_ca(&self) -> bool {
        matches!(self.profile, Profile::Root | Profile::Intermediate)
    }

    pub fn is_leaf(&self) -> bool {
        !self.is_ca()
    }

    pub fn kind(&self) -> ItemKind {
        match self.profile {
            Profile::Root => ItemKind::RootCa,
            Profile::Intermediate => ItemKind::IntermediateCa,
            Profile::Server { .. } => ItemKind::ServerCert,
            Profile::Internode { .. } => ItemKind::InternodeCert,
            Profile::Client { .. } => ItemKind::ClientCert,
        }
    }

    /// Whether an existing certificate still matches what this spec would issue.
    pub fn matches(&self, info: &CertInfo) -> bool {
        let mut want: Vec<String> = match &self.profile {
            Profile::Root | Profile::Intermediate => return info.is_ca,
            Profile::Server { sans } | Profile::Internode { sans } => {
                sans.iter().map(san_string).collect()
            }
            Profile::Client { uri } => vec![format!("URI:{uri}")],
        };
        let mut have = info.sans.clone();
        want.sort();
        have.sort();
        want == have && info.subject_cn == self.common_name
    }
}

fn san_string(san: &San) -> String {
    match san {
        San::Dns(d) => format!("DNS:{d}"),
        San::Ip(ip) => format!("IP:{ip}"),
    }
}

/// The client identity URI placed in a client certificate's SAN.
pub fn identity_uri(settings: &Settings, identity: &str) -> String {
    format!("spiffe://{}/client/{identity}", settings.trust_domain)
}

/// bulwark-gate's identity URI (outside `/client/`: it is no caller's identity).
pub fn gate_uri(settings: &Settings) -> String {
    format!("spiffe://{}/gate", settings.trust_domain)
}

/// Every certificate item, issuers before what they issue.
pub fn cert_specs(s: &Settings) -> Vec<CertSpec> {
    let spec = |id: &str, cn: &str, profile, lifetime, parent: Option<&str>| CertSpec {
        id: id.to_owned(),
        common_name: cn.to_owned(),
        profile,
        lifetime,
        parent: parent.map(str::to_owned),
    };
    let mut v = vec![
        spec(
            ROOT_CA,
            "Bulwark Root CA",
            Profile::Root,
            s.ca_lifetime,
            None,
        ),
        spec(
            INTERNODE_CA,
            "Bulwark Internode CA",
            Profile::Intermediate,
            s.intermediate_lifetime,
            Some(ROOT_CA),
        ),
        spec(
            CLIENT_CA,
            "Bulwark Client CA",
            Profile::Intermediate,
            s.intermediate_lifetime,
            Some(ROOT_CA),
        ),
        spec(
            SERVER_CA,
            "Bulwark Server CA",
            Profile::Intermediate,
            s.intermediate_lifetime,
            Some(ROOT_CA),
        ),
        spec(
            GATE_CA,
            "Bulwark Gate CA",
            Profile::Intermediate,
            s.intermediate_lifetime,
            Some(ROOT_CA),
        ),
        spec(
            "temporal-server",
            &s.temporal_server_name,
            Profile::Server {
                sans: s.server_sans.clone(),
            },
            s.leaf_lifetime,
            Some(SERVER_CA),
        ),
        spec(
            "control-server",
            "bulwark-control",
            Profile::Server {
                sans: s.control_sans.clone(),
            },
            s.leaf_lifetime,
            Some(SERVER_CA),
        ),
        spec(
            "api-server",
            "bulwark-api",
            Profile::Server {
                sans: s.api_sans.clone(),
            },
            s.leaf_lifetime,
            Some(SERVER_CA),
        ),
        spec(
            "internode",
            "temporal-internode",
            Profile::Internode {
                sans: s.internode_sans.clone(),
            },
            s.leaf_lifetime,
            Some(INTERNODE_CA),
        ),
        spec(
            "temporal-client",
            "temporal-client",
            Profile::Client {
                uri: identity_uri(s, "temporal-client"),
            },
            s.leaf_lifetime,
            Some(CLIENT_CA),
        ),
        spec(
            GATE_CLIENT,
            "bulwark-gate",
            Profile::Client { uri: gate_uri(s) },
            s.leaf_lifetime,
            Some(GATE_CA),
        ),
    ];
    for id in &s.identities {
        v.push(spec(
            &format!("client-{id}"),
            id.as_str(),
            Profile::Client {
                uri: identity_uri(s, id.as_str()),
            },
            s.leaf_lifetime,
            Some(CLIENT_CA),
        ));
    }
    v
}

/// Every item id `rotate` accepts.
pub fn item_ids(s: &Settings) -> Vec<String> {
    let mut ids: Vec<String> = cert_specs(s).into_iter().map(|c| c.id).collect();
    ids.extend(TRUST_BUNDLES.iter().map(|b| b.id.to_owned()));
    ids.push(JWT_KEY_ID.into());
    ids.extend(STATIC_TOKEN_IDS.iter().map(|id| (*id).to_owned()));
    ids.push(CLI_CONFIG_ID.into());
    ids
}

fn toml_str(s: &str) -> String {
    // TOML basic strings share JSON's escaping for everything we can emit here.
    serde_json::to_string(s).unwrap_or_default()
}

/// The Temporal CLI environment-config file with `admin`, `worker` and `client` profiles.
pub fn render_cli_config(s: &Settings, dir: &Path, tokens: &[(Scope, String)]) -> String {
    let ns = s
        .namespaces
        .first()
        .map(|n| n.as_str())
        .unwrap_or("default");
    let path = |f: &str| toml_str(&dir.join(f).to_string_lossy());
    let mut out = String::from(
        "# Temporal CLI profiles written by bulwark-init. Contains tokens: keep it 0600.\n\
         # temporal --config-file temporal.toml --profile admin operator namespace list\n",
    );
    for (profile, scope) in [
        ("admin", Scope::System),
        ("worker", Scope::Worker),
        ("client", Scope::Client),
    ] {
        // The certificate the profile's token is bound to, so the gate accepts the pair.
        let cert = token_certificate(s, scope);
        let Some((_, token)) = tokens.iter().find(|(sc, _)| *sc == scope) else {
            continue;
        };
        out.push_str(&format!(
            "\n[profile.{profile}]\naddress = {}\nnamespace = {}\napi_key = {}\n\n[profile.{profile}.tls]\nclient_cert_path = {}\nclient_key_path = {}\nserver_ca_cert_path = {}\nserver_name = {}\n",
            toml_str(&s.temporal_address),
            toml_str(ns),
            toml_str(token),
            path(&format!("{cert}.crt")),
            path(&format!("{cert}.key")),
            path("ca.crt"),
            toml_str(&s.temporal_server_name),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_ids_follow_the_scopes() {
        let ids: Vec<&str> = Scope::ALL.iter().map(|s| token(*s).id).collect();
        assert_eq!(ids, STATIC_TOKEN_IDS);
        for s in Scope::ALL {
            assert_eq!(token(s).file, format!("{}.jwt", token(s).id));
        }
    }

    #[test]
    fn bundle_lookup_by_ca() {
        assert_eq!(trust_bundle(CLIENT_CA).map(|b| b.id), Some("client-trust"));
        assert_eq!(
            trust_bundle(INTERNODE_CA).map(|b| b.file),
            Some("internode-trust.pem")
        );
        assert_eq!(trust_bundle(SERVER_CA), None);
        assert_eq!(
            trust_bundle(GATE_CA).map(|b| b.file),
            Some("gate-trust.pem")
        );
    }

    #[test]
    fn tokens_pair_with_their_certificates() {
        let s = Settings::default();
        assert_eq!(token_certificate(&s, Scope::System), "client-admin");
        assert_eq!(token_certificate(&s, Scope::Worker), "client-worker");
        assert_eq!(token_certificate(&s, Scope::Client), "temporal-client");
        // A list without admin/worker falls back to the default identity.
        assert_eq!(
            bound_certificate(Scope::System, |_| false),
            "temporal-client"
        );
        assert_eq!(
            bound_certificate(Scope::Worker, |_| false),
            "temporal-client"
        );
        for scope in Scope::ALL {
            let id = token_certificate(&s, scope);
            assert!(cert_specs(&s).iter().any(|c| c.id == id), "{id}");
        }
    }

    #[test]
    fn gate_items() {
        let s = Settings::default();
        let specs = cert_specs(&s);
        let pos = |id: &str| specs.iter().position(|c| c.id == id).unwrap();
        assert!(pos(GATE_CA) < pos(GATE_CLIENT));
        let gate = &specs[pos(GATE_CLIENT)];
        assert_eq!(gate.parent.as_deref(), Some(GATE_CA));
        assert_eq!(gate.common_name, "bulwark-gate");
        assert_eq!(
            gate.profile,
            Profile::Client {
                uri: format!("spiffe://{}/gate", s.trust_domain)
            }
        );
        assert_eq!(specs[pos(GATE_CA)].common_name, "Bulwark Gate CA");
        assert!(item_ids(&s).iter().any(|i| i == "gate-trust"));
    }
}
