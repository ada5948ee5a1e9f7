//! Security response headers, one policy per kind of listener, applied with tower-http's
//! `SetResponseHeaderLayer` so every Bulwark router gets them the same way.
//!
//! * [`Policy::Api`]: JSON APIs (bulwark-api, control's token endpoint and discovery).
//! * [`Policy::Page`]: the admin web page; adds a strict CSP and browser isolation headers.
//!
//! A handler that sets its own `Cache-Control` (e.g. the JWKS, cacheable for 30 s) keeps it;
//! everything else is `no-store`.

use axum::{
    Router,
    http::{HeaderName, HeaderValue, header},
};
use tower_http::set_header::SetResponseHeaderLayer;

/// Which set of headers a router gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Policy {
    Api,
    Page,
}

/// The admin page loads only its own script and style and is never framed.
pub const PAGE_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
                            img-src 'self'; frame-ancestors 'none'; form-action 'self'; \
                            base-uri 'none'; object-src 'none'";

/// The headers of `policy`, in the order they are applied. `true` = only when the handler
/// did not set the header itself.
pub fn headers(policy: Policy) -> Vec<(HeaderName, HeaderValue, bool)> {
    let mut h = vec![
        (
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
            false,
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
            false,
        ),
        (
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
            false,
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
            false,
        ),
        (
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
            true,
        ),
    ];
    if policy == Policy::Page {
        h.extend([
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(PAGE_CSP),
                false,
            ),
            (
                HeaderName::from_static("cross-origin-opener-policy"),
                HeaderValue::from_static("same-origin"),
                false,
            ),
            (
                HeaderName::from_static("permissions-policy"),
                HeaderValue::from_static("camera=(), microphone=(), geolocation=()"),
                false,
            ),
            (header::PRAGMA, HeaderValue::from_static("no-cache"), false),
        ]);
    }
    h
}

/// `router` with the security headers of `policy` on every response (also on 404s and on
/// errors produced by inner layers).
pub fn apply<S: Clone + Send + Sync + 'static>(router: Router<S>, policy: Policy) -> Router<S> {
    headers(policy)
        .into_iter()
        .fold(router, |r, (name, value, keep_own)| {
            if keep_own {
                r.layer(SetResponseHeaderLayer::if_not_present(name, value))
            } else {
                r.layer(SetResponseHeaderLayer::overriding(name, value))
            }
        })
}

#[cfg(test)]
mod tests {
    use axum::{body::Body, http::Request, routing::get};
    use tower::ServiceExt;

    use super::*;

    async fn get_headers(policy: Policy, path: &str) -> axum::http::HeaderMap {
        let router = apply(
            Router::new().route("/plain", get(|| async { "x" })).route(
                "/cached",
                get(|| async { ([(header::CACHE_CONTROL, "public, max-age=30")], "x") }),
            ),
            policy,
        );
        let res = router
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        res.headers().clone()
    }

    #[tokio::test]
    async fn api_policy_sets_transport_and_sniffing_headers_and_no_store() {
        let h = get_headers(Policy::Api, "/plain").await;
        assert_eq!(
            h[header::STRICT_TRANSPORT_SECURITY],
            "max-age=31536000; includeSubDomains"
        );
        assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(h[header::X_FRAME_OPTIONS], "DENY");
        assert_eq!(h[header::CACHE_CONTROL], "no-store");
        assert!(!h.contains_key(header::CONTENT_SECURITY_POLICY));
    }

    #[tokio::test]
    async fn a_handlers_own_cache_control_is_kept() {
        let h = get_headers(Policy::Api, "/cached").await;
        assert_eq!(h[header::CACHE_CONTROL], "public, max-age=30");
    }

    #[tokio::test]
    async fn page_policy_adds_csp_and_isolation_also_on_404() {
        let h = get_headers(Policy::Page, "/missing").await;
        assert_eq!(h[header::CONTENT_SECURITY_POLICY], PAGE_CSP);
        assert_eq!(h["cross-origin-opener-policy"], "same-origin");
        assert_eq!(h[header::PRAGMA], "no-cache");
        assert_eq!(h[header::CACHE_CONTROL], "no-store");
    }
}
