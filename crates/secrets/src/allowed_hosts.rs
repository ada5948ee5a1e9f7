//! Destinations a credential may be sent to: the optional `allowed_hosts` field.
//!
//! A stored `basic`, `api_key`, `bearer_token` or `oauth_client` credential may carry
//! `allowed_hosts`, as a JSON array of strings or a comma/space separated string. Each entry
//! is one of:
//!
//! * `api.example.com` — that host name, port 443;
//! * `api.example.com:8443` — that host name and port;
//! * `*.example.com[:port]` — exactly one extra label in front of `example.com`
//!   (`a.example.com`, not `example.com` and not `a.b.example.com`); the suffix must have at
//!   least two labels, and IP literals take no wildcard;
//! * `192.0.2.10[:port]`, `[2001:db8::1][:port]` — an IP literal, matched as an address.
//!
//! Entries and destinations are normalised the same way, by the WHATWG URL parser that
//! `reqwest` uses: host names are lower-cased and IDNA-mapped to punycode, IPv4 written as
//! `0x7f.1` or `2130706433` becomes `127.0.0.1`, and one trailing dot is ignored
//! (`example.com.` is `example.com`). A host name never matches an IP literal or the
//! reverse. A destination URL with user information (`https://good@evil/`) is never allowed,
//! whatever its host.
//!
//! Without a port an entry means 443 only: a credential for `api.example.com` is not sent to
//! another service on `api.example.com:8080`.

use std::fmt;
use std::net::IpAddr;

use reqwest::Url;
use serde::Serialize;

/// One parsed `allowed_hosts` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostPattern {
    /// `*.` prefix: one label in front of `host`.
    wildcard: bool,
    /// Normalised host (no trailing dot; IPv6 in brackets, as the URL parser writes it).
    host: String,
    port: u16,
}

impl HostPattern {
    /// Parses one entry; `None` when it is not of a form listed in the module docs.
    #[must_use]
    pub fn parse(raw: &str) -> Option<Self> {
        let raw = raw.trim();
        let forbidden = |c: char| {
            c.is_whitespace() || c.is_control() || matches!(c, '/' | '\\' | '@' | '?' | '#' | '%')
        };
        if raw.is_empty() || raw.chars().any(forbidden) {
            return None;
        }
        let (wildcard, rest) = match raw.strip_prefix("*.") {
            Some(r) => (true, r),
            None => (false, raw),
        };
        if rest.contains('*') || rest.is_empty() {
            return None;
        }
        let url = Url::parse(&format!("https://{rest}/")).ok()?;
        if url.path() != "/"
            || url.query().is_some()
            || url.fragment().is_some()
            || !url.username().is_empty()
            || url.password().is_some()
        {
            return None;
        }
        let (host, ip) = normalize(url.host_str()?)?;
        let port = url.port_or_known_default()?;
        if wildcard && (ip || host.split('.').count() < 2) {
            return None;
        }
        Some(Self {
            wildcard,
            host,
            port,
        })
    }

    fn matches(&self, host: &str, is_ip: bool, port: u16) -> bool {
        if port != self.port {
            return false;
        }
        if !self.wildcard {
            return host == self.host;
        }
        !is_ip
            && host
                .strip_suffix(self.host.as_str())
                .and_then(|front| front.strip_suffix('.'))
                .is_some_and(|label| !label.is_empty() && !label.contains('.'))
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let star = if self.wildcard { "*." } else { "" };
        write!(f, "{star}{}:{}", self.host, self.port)
    }
}

impl Serialize for HostPattern {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Lower-cased host without one trailing dot, and whether it is an IP literal.
fn normalize(host: &str) -> Option<(String, bool)> {
    let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    if host.is_empty() || host.ends_with('.') {
        return None;
    }
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let ip = bare.parse::<IpAddr>().is_ok();
    if !ip && host.split('.').any(str::is_empty) {
        return None;
    }
    Some((host, ip))
}

/// The parsed `allowed_hosts` of a credential: never empty.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct AllowedHosts(Vec<HostPattern>);

/// Why an `allowed_hosts` value was refused (never quotes the value).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AllowedHostsError {
    /// The value is neither a JSON array of strings nor a separated list.
    NotAList,
    /// The list has no entries.
    Empty,
    /// Entry number `n` (from 1) is malformed.
    BadEntry(usize),
}

impl fmt::Display for AllowedHostsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotAList => f.write_str("not a JSON array of strings"),
            Self::Empty => f.write_str("lists no host (remove the field to allow any host)"),
            Self::BadEntry(n) => write!(
                f,
                "entry {n} is not a host name, `*.` wildcard or IP literal with an optional `:port`"
            ),
        }
    }
}

impl AllowedHosts {
    /// Parses the stored field: a JSON array of strings, or entries separated by commas
    /// or white space.
    pub fn parse(raw: &str) -> Result<Self, AllowedHostsError> {
        let raw = raw.trim();
        let entries: Vec<String> = if raw.starts_with('[') {
            serde_json::from_str(raw).map_err(|_| AllowedHostsError::NotAList)?
        } else {
            raw.split(|c: char| c == ',' || c.is_whitespace())
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        };
        if entries.is_empty() {
            return Err(AllowedHostsError::Empty);
        }
        entries
            .iter()
            .enumerate()
            .map(|(i, e)| HostPattern::parse(e).ok_or(AllowedHostsError::BadEntry(i + 1)))
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    /// True when a request to `url` may carry the credential: no user information, and
    /// its host and port (443 by default for https) match an entry.
    #[must_use]
    pub fn permits(&self, url: &Url) -> bool {
        if !url.username().is_empty() || url.password().is_some() {
            return false;
        }
        let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else {
            return false;
        };
        let Some((host, is_ip)) = normalize(host) else {
            return false;
        };
        self.0.iter().any(|p| p.matches(&host, is_ip, port))
    }

    /// The entries, normalised (`host:port`).
    pub fn iter(&self) -> impl Iterator<Item = &HostPattern> {
        self.0.iter()
    }
}

/// `host:port` of `url` as [`AllowedHosts`] compares it (for messages; not secret).
#[must_use]
pub fn destination(url: &Url) -> String {
    let host = url.host_str().unwrap_or("(no host)");
    let host = host.strip_suffix('.').unwrap_or(host);
    match url.port_or_known_default() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn hosts(raw: &str) -> AllowedHosts {
        AllowedHosts::parse(raw).unwrap()
    }

    fn ok(h: &AllowedHosts, url: &str) -> bool {
        h.permits(&Url::parse(url).unwrap())
    }

    #[test]
    fn exact_hosts_and_default_port() {
        let h = hosts(r#"["api.example.com", "other.example.org:8443"]"#);
        assert!(ok(&h, "https://api.example.com/v1"));
        assert!(ok(&h, "https://api.example.com:443/v1"));
        assert!(ok(&h, "https://API.Example.COM/"), "case is ignored");
        assert!(
            ok(&h, "https://api.example.com./"),
            "one trailing dot is ignored"
        );
        assert!(ok(&h, "https://other.example.org:8443/"));
        assert!(!ok(&h, "https://api.example.com:8443/"), "other port");
        assert!(!ok(&h, "https://other.example.org/"), "443 is not 8443");
        assert!(!ok(&h, "https://example.com/"));
        assert!(!ok(&h, "https://api.example.com.evil.net/"));
        assert!(!ok(&h, "https://evilapi.example.com/"));
        assert!(!ok(&h, "http://api.example.com/"), "http is port 80");
    }

    #[test]
    fn userinfo_tricks_are_refused() {
        let h = hosts("api.example.com");
        assert!(!ok(&h, "https://api.example.com@evil.net/"));
        assert!(
            !ok(&h, "https://evil.net@api.example.com/"),
            "any user info is refused"
        );
        assert!(!ok(&h, "https://u:p@api.example.com/"));
        assert!(!ok(&h, "https://evil.net/api.example.com"));
        assert!(!ok(&h, "https://evil.net/?api.example.com"));
        assert!(!ok(&h, "https://evil.net#@api.example.com"));
    }

    #[test]
    fn idna_and_ip_literals() {
        let h = hosts("bücher.example, 127.0.0.1:9443, [::1]");
        assert!(ok(&h, "https://xn--bcher-kva.example/"));
        assert!(ok(&h, "https://BÜCHER.example/"));
        assert!(ok(&h, "https://127.0.0.1:9443/"));
        assert!(
            ok(&h, "https://0x7f.1:9443/"),
            "IPv4 spellings are normalised"
        );
        assert!(ok(&h, "https://2130706433:9443/"));
        assert!(ok(&h, "https://[0:0::1]/"));
        assert!(!ok(&h, "https://127.0.0.2:9443/"));
        assert!(
            !ok(&h, "https://localhost:9443/"),
            "a name is not the address"
        );
        let named = hosts("localhost");
        assert!(
            !ok(&named, "https://127.0.0.1/"),
            "the address is not a name"
        );
    }

    #[test]
    fn wildcards_cover_one_label() {
        let h = hosts("*.svc.example.com");
        assert!(ok(&h, "https://a.svc.example.com/"));
        assert!(ok(&h, "https://A-1.svc.example.com./"));
        assert!(!ok(&h, "https://svc.example.com/"));
        assert!(!ok(&h, "https://a.b.svc.example.com/"));
        assert!(!ok(&h, "https://asvc.example.com/"));
        assert!(!ok(&h, "https://a.svc.example.com:8443/"));
    }

    #[test]
    fn malformed_entries_are_refused_by_position() {
        for (raw, want) in [
            ("", AllowedHostsError::Empty),
            ("[]", AllowedHostsError::Empty),
            ("[1, 2]", AllowedHostsError::NotAList),
            ("[\"a.example\"", AllowedHostsError::NotAList),
            (
                "a.example, https://b.example",
                AllowedHostsError::BadEntry(2),
            ),
            ("a.example/path", AllowedHostsError::BadEntry(1)),
            ("user@a.example", AllowedHostsError::BadEntry(1)),
            ("*", AllowedHostsError::BadEntry(1)),
            ("*.com", AllowedHostsError::BadEntry(1)),
            ("a.*.example", AllowedHostsError::BadEntry(1)),
            ("*.127.0.0.1", AllowedHostsError::BadEntry(1)),
            ("a.example:99999", AllowedHostsError::BadEntry(1)),
            ("a.example:x", AllowedHostsError::BadEntry(1)),
            ("a..example", AllowedHostsError::BadEntry(1)),
            ("a%2eexample", AllowedHostsError::BadEntry(1)),
            ("a.example?x", AllowedHostsError::BadEntry(1)),
        ] {
            assert_eq!(AllowedHosts::parse(raw), Err(want.clone()), "{raw:?}");
            assert!(!want.to_string().contains("example"), "{want}");
        }
    }

    #[test]
    fn normalised_display_and_destination() {
        let h = hosts("API.example.com., *.Svc.example.com:8443");
        let shown: Vec<String> = h.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["api.example.com:443", "*.svc.example.com:8443"]);
        assert_eq!(
            destination(&Url::parse("https://u@Evil.NET./x").unwrap()),
            "evil.net:443"
        );
    }
}
