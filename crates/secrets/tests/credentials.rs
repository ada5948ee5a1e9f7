//! Credential references, typed parsing and resolver routing (env store, no I/O).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

mod common;

use std::time::Duration;

use bulwark_secrets::*;
use common::PLANTED;

fn env_store(vars: &[(&str, &str)]) -> EnvStore {
    EnvStore::with_vars(
        "default",
        "BULWARK_",
        vars.iter().map(|(k, v)| (k.to_string(), v.to_string())),
    )
}

fn resolver(vars: &[(&str, &str)]) -> Resolver {
    Resolver::builder().store(env_store(vars)).build()
}

#[test]
fn reference_serde_defaults_and_constructors() {
    let r = basic_ref("github");
    assert_eq!(r.store_name, "default");
    assert_eq!(r.credential_type, CredentialType::Basic);
    let json = serde_json::to_value(api_key_ref("stripe").with_store("vault")).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"name": "stripe", "credential_type": "api_key", "store_name": "vault"})
    );
    let back: CredentialRef =
        serde_json::from_value(serde_json::json!({"name": "x", "credential_type": "oauth_client"}))
            .unwrap();
    assert_eq!(back, oauth_client_ref("x"));
    assert_eq!(
        bearer_token_ref("t").credential_type.as_str(),
        "bearer_token"
    );
    assert_eq!(certificate_ref("c").credential_type.as_str(), "certificate");
    let custom: CredentialRef = serde_json::from_value(
        serde_json::json!({"name": "s", "credential_type": "snowflake", "store_name": "p"}),
    )
    .unwrap();
    assert_eq!(
        custom.credential_type,
        CredentialType::Custom("snowflake".into())
    );
    // Unknown fields and malformed type names are rejected.
    assert!(
        serde_json::from_value::<CredentialRef>(
            serde_json::json!({"name": "x", "credential_type": "basic", "password": "p"})
        )
        .is_err()
    );
    assert!(
        serde_json::from_value::<CredentialRef>(
            serde_json::json!({"name": "x", "credential_type": "Bad Type!"})
        )
        .is_err()
    );
    assert_eq!(
        basic_ref("github").to_string(),
        "credential `github` (type `basic`, store `default`)"
    );
}

#[tokio::test]
async fn resolves_every_builtin_type() {
    let r = resolver(&[
        ("BULWARK_GH__USERNAME", "bot"),
        ("BULWARK_GH__PASSWORD", "pw"),
        ("BULWARK_STRIPE__API_KEY", "sk_live"),
        ("BULWARK_STRIPE__PREFIX", "Token"),
        ("BULWARK_SLACK__TOKEN", "xoxb"),
        ("BULWARK_SLACK__EXPIRES_AT", "2999-01-01T00:00:00Z"),
        ("BULWARK_IDP__CLIENT_ID", "worker"),
        ("BULWARK_IDP__CLIENT_SECRET", "cs"),
        ("BULWARK_IDP__TOKEN_URL", "https://idp.example/token"),
        ("BULWARK_IDP__SCOPES", "[\"a\",\"b\"]"),
        (
            "BULWARK_MTLS__CERT_PEM",
            "-----BEGIN CERTIFICATE-----\nAA\n-----END CERTIFICATE-----\n",
        ),
        (
            "BULWARK_MTLS__KEY_PEM",
            "-----BEGIN PRIVATE KEY-----\nAA\n-----END PRIVATE KEY-----\n",
        ),
        ("BULWARK_MTLS__PASSPHRASE", "pp"),
    ]);
    let c = r.resolve(&basic_ref("gh")).await.unwrap();
    let b = c.as_basic().unwrap();
    assert_eq!((b.username.as_str(), b.password.expose()), ("bot", "pw"));

    let c = r.resolve(&api_key_ref("stripe")).await.unwrap();
    let k = c.as_api_key().unwrap();
    assert_eq!(k.header_name, "X-API-Key");
    assert_eq!(k.header_value().expose(), "Token sk_live");

    let c = r.resolve(&bearer_token_ref("slack")).await.unwrap();
    let t = c.as_bearer_token().unwrap();
    assert!(!t.is_expired());
    assert_eq!(t.authorization_header().expose(), "Bearer xoxb");

    let c = r.resolve(&oauth_client_ref("idp")).await.unwrap();
    let o = c.as_oauth_client().unwrap();
    assert_eq!(o.scopes, vec!["a", "b"]);
    assert_eq!(o.client_secret.expose(), "cs");
    assert!(o.access_token.is_none() && o.refresh_token.is_none() && o.expires_at.is_none());

    let c = r.resolve(&certificate_ref("mtls")).await.unwrap();
    let cert = c.as_certificate().unwrap();
    assert!(cert.key_pem.expose().contains("PRIVATE KEY"));
    assert_eq!(cert.passphrase.as_ref().unwrap().expose(), "pp");
    assert!(cert.ca_pem.is_none());
}

#[tokio::test]
async fn field_names_match_loosely_and_scopes_accept_strings() {
    let r = resolver(&[
        ("BULWARK_IDP__CLIENTID", "w"),
        ("BULWARK_IDP__CLIENT_SECRET", "s"),
        ("BULWARK_IDP__TOKEN_URL", "http://127.0.0.1:1/token"),
        ("BULWARK_IDP__SCOPE", "read write,admin"),
    ]);
    let c = r.resolve(&oauth_client_ref("idp")).await.unwrap();
    let o = c.as_oauth_client().unwrap();
    assert_eq!(o.client_id, "w");
    assert_eq!(o.scopes, vec!["read", "write", "admin"]);
}

#[tokio::test]
async fn expired_bearer_token_is_reported_and_not_cached() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.json");
    std::fs::write(&path, r#"{"old": {"token": "t1", "expires_at": "1000"}}"#).unwrap();
    let r = Resolver::builder()
        .store(FileStore::new("default", &path))
        .build();
    let c = r.resolve(&bearer_token_ref("old")).await.unwrap();
    assert!(c.as_bearer_token().unwrap().is_expired());
    // An expired credential is not served from the cache: the rotated token is seen.
    std::fs::write(
        &path,
        r#"{"old": {"token": "t2", "expires_at": "2999-01-01T00:00:00Z"}}"#,
    )
    .unwrap();
    let c = r.resolve(&bearer_token_ref("old")).await.unwrap();
    let t = c.as_bearer_token().unwrap();
    assert_eq!(t.token.expose(), "t2");
    assert!(!t.is_expired());
}

#[tokio::test]
async fn missing_field_names_reference_and_field() {
    let r = resolver(&[("BULWARK_GH__USERNAME", "bot")]);
    let e = r.resolve(&basic_ref("gh")).await.unwrap_err();
    assert!(
        matches!(&e, SecretsError::MissingField { field, .. } if field == "password"),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "credential `gh` (type `basic`, store `default`): required field `password` is missing"
    );
}

#[tokio::test]
async fn empty_and_blank_fields_are_errors() {
    for blank in ["", "   ", "\n\t"] {
        let r = resolver(&[
            ("BULWARK_GH__USERNAME", "bot"),
            ("BULWARK_GH__PASSWORD", blank),
        ]);
        let e = r.resolve(&basic_ref("gh")).await.unwrap_err();
        assert!(
            matches!(&e, SecretsError::EmptyField { field, .. } if field == "password"),
            "{e:?}"
        );
        assert!(e.to_string().contains("required field `password` is empty"));
    }
    let r = resolver(&[("BULWARK_K__API_KEY", "")]);
    let e = r.resolve(&api_key_ref("k")).await.unwrap_err();
    assert!(matches!(e, SecretsError::EmptyField { .. }));
}

/// (reference, environment, field expected to be reported invalid)
type Case = (
    CredentialRef,
    Vec<(&'static str, &'static str)>,
    &'static str,
);

#[tokio::test]
async fn invalid_field_shapes_are_errors_without_values() {
    let cases: Vec<Case> = vec![
        (
            oauth_client_ref("o"),
            vec![
                ("BULWARK_O__CLIENT_ID", "i"),
                ("BULWARK_O__CLIENT_SECRET", PLANTED),
                ("BULWARK_O__TOKEN_URL", "ftp://x"),
            ],
            "token_url",
        ),
        (
            certificate_ref("c"),
            vec![
                (
                    "BULWARK_C__CERT_PEM",
                    "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----",
                ),
                ("BULWARK_C__KEY_PEM", PLANTED),
            ],
            "key_pem",
        ),
        (
            bearer_token_ref("b"),
            vec![
                ("BULWARK_B__TOKEN", PLANTED),
                ("BULWARK_B__EXPIRES_AT", "tomorrow"),
            ],
            "expires_at",
        ),
        (
            api_key_ref("a"),
            vec![
                ("BULWARK_A__API_KEY", PLANTED),
                ("BULWARK_A__HEADER_NAME", "Bad Header"),
            ],
            "header_name",
        ),
    ];
    for (reference, vars, field) in cases {
        let r = resolver(&vars);
        let e = r.resolve(&reference).await.unwrap_err();
        assert!(
            matches!(&e, SecretsError::InvalidField { field: f, .. } if f == field),
            "{e:?}"
        );
        common::assert_clean("error Display", &e.to_string());
        common::assert_clean("error Debug", &format!("{e:?}"));
    }
}

#[tokio::test]
async fn unknown_store_missing_secret_and_bad_reference_are_distinct() {
    let r = resolver(&[]);
    let e = r
        .resolve(&basic_ref("gh").with_store("nope"))
        .await
        .unwrap_err();
    assert!(matches!(e, SecretsError::UnknownStore { .. }), "{e:?}");
    assert_eq!(
        e.to_string(),
        "credential `gh` (type `basic`, store `nope`): no secret store named `nope` is configured (known: default)"
    );

    let e = r.resolve(&basic_ref("gh")).await.unwrap_err();
    assert!(
        matches!(e, SecretsError::CredentialNotFound { .. }),
        "{e:?}"
    );
    assert!(e.is_not_found());

    let e = r.resolve(&basic_ref("")).await.unwrap_err();
    assert!(matches!(e, SecretsError::InvalidReference { .. }), "{e:?}");
    let e = r.resolve(&basic_ref("a\u{7}b")).await.unwrap_err();
    assert!(
        e.to_string().contains("\\u{7}"),
        "control characters are escaped: {e}"
    );

    let e = r
        .resolve(&CredentialRef::custom("x", "unregistered"))
        .await
        .unwrap_err();
    assert!(
        matches!(e, SecretsError::UnknownCredentialType { .. }),
        "{e:?}"
    );
}

#[derive(Debug)]
struct Snowflake {
    account: String,
    private_key: Secret,
}

impl CustomCredential for Snowflake {
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

#[tokio::test]
async fn custom_types_can_be_registered() {
    let mut reg = CredentialRegistry::new();
    reg.register("snowflake", |f| {
        Ok(Custom::new(
            "snowflake",
            Snowflake {
                account: f.required_plain("account")?,
                private_key: f.required("private_key")?,
            },
        ))
    })
    .unwrap();
    reg.register_fields("smtp", &["host", "password"], &["port"])
        .unwrap();
    assert!(matches!(
        reg.register("basic", |_| unreachable!()),
        Err(SecretsError::DuplicateCredentialType { .. })
    ));
    assert!(matches!(
        reg.register("smtp", |_| unreachable!()),
        Err(SecretsError::DuplicateCredentialType { .. })
    ));
    assert!(matches!(
        reg.register("Bad Name", |_| unreachable!()),
        Err(SecretsError::InvalidCredentialType { .. })
    ));

    let r = Resolver::builder()
        .store(env_store(&[
            ("BULWARK_SF__ACCOUNT", "acme"),
            ("BULWARK_SF__PRIVATE_KEY", PLANTED),
            ("BULWARK_MAIL__HOST", "smtp.example"),
            ("BULWARK_MAIL__PASSWORD", PLANTED),
        ]))
        .registry(reg)
        .build();
    let c = r
        .resolve(&CredentialRef::custom("sf", "snowflake"))
        .await
        .unwrap();
    let sf = c.as_custom().unwrap().downcast_ref::<Snowflake>().unwrap();
    assert_eq!(sf.account, "acme");
    assert_eq!(sf.private_key.expose(), PLANTED);
    common::assert_clean("custom Debug", &format!("{c:?}"));
    common::assert_clean("custom Display", &c.to_string());
    common::assert_clean("custom serde", &serde_json::to_string(&*c).unwrap());

    let c = r
        .resolve(&CredentialRef::custom("mail", "smtp"))
        .await
        .unwrap();
    let f = c
        .as_custom()
        .unwrap()
        .downcast_ref::<FieldsCredential>()
        .unwrap();
    assert_eq!(f.fields["password"].expose(), PLANTED);
    assert!(!f.fields.contains_key("port"));
    let e = r
        .resolve(&CredentialRef::custom("sf", "smtp"))
        .await
        .unwrap_err();
    assert!(matches!(&e, SecretsError::MissingField { field, .. } if field == "host"));
}

#[tokio::test]
async fn cache_serves_until_invalidated_or_expired() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.json");
    std::fs::write(&path, r#"{"gh": {"username": "bot", "password": "one"}}"#).unwrap();
    let r = Resolver::builder()
        .store(FileStore::new("default", &path))
        .cache_ttl(Duration::from_millis(300))
        .build();
    let pw = |c: &Credential| c.as_basic().unwrap().password.expose().to_owned();
    assert_eq!(pw(&r.resolve(&basic_ref("gh")).await.unwrap()), "one");
    std::fs::write(&path, r#"{"gh": {"username": "bot", "password": "two!"}}"#).unwrap();
    // Still cached.
    assert_eq!(pw(&r.resolve(&basic_ref("gh")).await.unwrap()), "one");
    // Uncached reads see the change at once (the file store re-reads changed files).
    assert_eq!(
        pw(&r.resolve_uncached(&basic_ref("gh")).await.unwrap()),
        "two!"
    );
    // Explicit invalidation.
    r.invalidate(&basic_ref("gh"));
    assert_eq!(pw(&r.resolve(&basic_ref("gh")).await.unwrap()), "two!");
    // TTL expiry.
    std::fs::write(&path, r#"{"gh": {"username": "bot", "password": "three"}}"#).unwrap();
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(pw(&r.resolve(&basic_ref("gh")).await.unwrap()), "three");
    // invalidate_store / invalidate_all.
    std::fs::write(&path, r#"{"gh": {"username": "bot", "password": "four!"}}"#).unwrap();
    r.invalidate_store("default");
    assert_eq!(pw(&r.resolve(&basic_ref("gh")).await.unwrap()), "four!");
    std::fs::write(&path, r#"{"gh": {"username": "bot", "password": "five!"}}"#).unwrap();
    r.invalidate_all();
    assert_eq!(pw(&r.resolve(&basic_ref("gh")).await.unwrap()), "five!");
}

#[tokio::test]
async fn env_store_layout_and_listing() {
    let s = env_store(&[
        ("BULWARK_GITHUB_APP__CLIENT_ID", "x"),
        ("BULWARK_GITHUB_APP__CLIENT_SECRET", "y"),
        ("BULWARK_SINGLE", "v"),
        ("OTHER__X", "no"),
    ]);
    let m = s.get("github-app").await.unwrap();
    assert_eq!(m.keys().collect::<Vec<_>>(), ["client_id", "client_secret"]);
    let m = s.get("single").await.unwrap();
    assert_eq!(m["single"].expose(), "v");
    assert!(s.get_optional("missing").await.unwrap().is_none());
    assert!(matches!(
        s.get("missing").await,
        Err(SecretsError::NotFound { .. })
    ));
    assert_eq!(s.list_names().await.unwrap(), ["github_app", "single"]);
    let bulk = s
        .get_bulk(&["single".into(), "github-app".into()])
        .await
        .unwrap();
    assert_eq!(bulk.len(), 2);
    assert!(matches!(
        s.get_bulk(&["single".into(), "missing".into()]).await,
        Err(SecretsError::NotFound { .. })
    ));
    assert!(matches!(
        s.get("").await,
        Err(SecretsError::InvalidKey { .. })
    ));
}

#[tokio::test]
async fn allowed_hosts_are_parsed_for_every_sendable_type() {
    let r = resolver(&[
        ("BULWARK_GH__USERNAME", "bot"),
        ("BULWARK_GH__PASSWORD", PLANTED),
        ("BULWARK_GH__ALLOWED_HOSTS", "api.github.com"),
        ("BULWARK_STRIPE__API_KEY", PLANTED),
        (
            "BULWARK_STRIPE__ALLOWED_HOSTS",
            r#"["api.stripe.com", "*.stripe.net:8443"]"#,
        ),
        ("BULWARK_SLACK__TOKEN", PLANTED),
        ("BULWARK_SLACK__ALLOWEDHOSTS", "slack.com files.slack.com"),
        ("BULWARK_IDP__CLIENT_ID", "worker"),
        ("BULWARK_IDP__CLIENT_SECRET", PLANTED),
        ("BULWARK_IDP__TOKEN_URL", "https://idp.example/token"),
        ("BULWARK_IDP__ALLOWED_HOSTS", "api.example:9443"),
        ("BULWARK_OPEN__API_KEY", PLANTED),
    ]);
    let url = |u: &str| reqwest::Url::parse(u).unwrap();
    let gh = r.resolve(&basic_ref("gh")).await.unwrap();
    assert!(
        gh.allowed_hosts()
            .unwrap()
            .permits(&url("https://api.github.com/x"))
    );
    assert!(
        !gh.allowed_hosts()
            .unwrap()
            .permits(&url("https://github.com/x"))
    );
    let stripe = r.resolve(&api_key_ref("stripe")).await.unwrap();
    let hosts = stripe.allowed_hosts().unwrap();
    assert!(hosts.permits(&url("https://api.stripe.com/v1")));
    assert!(hosts.permits(&url("https://eu.stripe.net:8443/")));
    assert!(!hosts.permits(&url("https://eu.stripe.net/")));
    let slack = r.resolve(&bearer_token_ref("slack")).await.unwrap();
    assert_eq!(slack.allowed_hosts().unwrap().iter().count(), 2);
    let idp = r.resolve(&oauth_client_ref("idp")).await.unwrap();
    let hosts = idp.allowed_hosts().unwrap();
    assert!(hosts.permits(&url("https://api.example:9443/")));
    assert!(
        !hosts.permits(&url("https://idp.example/token")),
        "token_url is not implied for the access token"
    );
    // No list: no restriction (today's behaviour), and nothing is serialised.
    let open = r.resolve(&api_key_ref("open")).await.unwrap();
    assert!(open.allowed_hosts().is_none());
    let json = serde_json::to_value(&*open).unwrap();
    assert!(json.get("allowed_hosts").is_none(), "{json}");
    // The list is not secret: serialised normalised, next to the redacted key.
    let json = serde_json::to_value(&*stripe).unwrap();
    assert_eq!(
        json["allowed_hosts"],
        serde_json::json!(["api.stripe.com:443", "*.stripe.net:8443"])
    );
    common::assert_clean("serde", &json.to_string());
}

#[tokio::test]
async fn malformed_allowed_hosts_name_reference_and_field_never_the_value() {
    for (value, reason) in [
        (format!("api.example, https://{PLANTED}/"), "entry 2"),
        (format!("[\"{PLANTED}@evil.example\"]"), "entry 1"),
        (format!("*.{PLANTED}.*"), "entry 1"),
        (format!("[\"{PLANTED}\""), "JSON array"),
        ("[]".to_owned(), "lists no host"),
        ("  ".to_owned(), "lists no host"),
    ] {
        let r = resolver(&[
            ("BULWARK_K__API_KEY", PLANTED),
            ("BULWARK_K__ALLOWED_HOSTS", &value),
        ]);
        let e = r.resolve(&api_key_ref("k")).await.unwrap_err();
        match &e {
            SecretsError::InvalidField {
                reference,
                field,
                reason: why,
            } => {
                assert_eq!(reference.name, "k");
                assert_eq!(field, "allowed_hosts");
                assert!(why.contains(reason), "{why} for {value}");
            }
            other => panic!("expected InvalidField, got {other:?}"),
        }
        common::assert_clean("error Display", &e.to_string());
        common::assert_clean("error Debug", &format!("{e:?}"));
    }
}
