//! One client-credentials request to the token endpoint (RFC 6749 section 4.4).

use std::time::Duration;

use base64::Engine as _;
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::credentials::ClientCredentials;
use crate::error::{AuthError, OAuthErrorCode, Result};
use crate::secret::SecretString;

/// How the client authenticates to the token endpoint (RFC 6749 section 2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ClientAuthMethod {
    /// HTTP Basic with form-urlencoded id and secret (`client_secret_basic`);
    /// the method every server must support.
    #[default]
    Basic,
    /// Id and secret as form fields in the body (`client_secret_post`).
    Post,
}

/// Responses larger than this are refused unread, so a misbehaving endpoint
/// cannot make every service buffer arbitrary amounts of data.
const MAX_BODY: usize = 64 * 1024;

#[derive(Debug)]
pub(crate) struct Endpoint {
    pub http: reqwest::Client,
    pub url: reqwest::Url,
    pub scope: Option<String>,
    pub auth: ClientAuthMethod,
}

pub(crate) struct Granted {
    pub access_token: SecretString,
    pub header: HeaderValue,
    pub expires_in: Option<Duration>,
    pub scope: Option<String>,
}

#[derive(Deserialize)]
struct SuccessBody {
    access_token: Option<String>,
    token_type: Option<String>,
    expires_in: Option<serde_json::Value>,
    scope: Option<String>,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: Option<String>,
}

impl Endpoint {
    pub async fn request(&self, creds: &ClientCredentials) -> Result<Granted> {
        let mut body = Zeroizing::new(String::new());
        {
            let mut form = form_urlencoded::Serializer::new(&mut *body);
            form.append_pair("grant_type", "client_credentials");
            if let Some(scope) = &self.scope {
                form.append_pair("scope", scope);
            }
            if self.auth == ClientAuthMethod::Post {
                form.append_pair("client_id", creds.client_id());
                form.append_pair("client_secret", creds.client_secret().expose_secret());
            }
            form.finish();
        }
        let mut request = self
            .http
            .post(self.url.clone())
            .header(ACCEPT, "application/json")
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded");
        if self.auth == ClientAuthMethod::Basic {
            request = request.header(AUTHORIZATION, basic_header(creds)?);
        }
        let response = request
            .body(body.as_str().to_owned())
            .send()
            .await
            .map_err(AuthError::transport)?;

        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body = read_limited(response).await;

        if status == StatusCode::OK {
            return parse_success(&body?);
        }
        if status == StatusCode::TOO_MANY_REQUESTS {
            return Err(AuthError::RateLimited { retry_after });
        }
        // Any non-200 answer is classified from status and `error` code only;
        // a body we cannot read or parse still yields the status.
        let code = body
            .ok()
            .filter(|_| status.is_client_error())
            .and_then(|b| serde_json::from_slice::<ErrorBody>(&b).ok())
            .and_then(|b| b.error)
            .map(|c| OAuthErrorCode::from_code(&c));
        Err(match code {
            Some(code) => AuthError::OAuth {
                status: status.as_u16(),
                code,
            },
            None => AuthError::HttpStatus {
                status: status.as_u16(),
            },
        })
    }
}

fn basic_header(creds: &ClientCredentials) -> Result<HeaderValue> {
    let mut userpass = Zeroizing::new(String::new());
    userpass.extend(form_urlencoded::byte_serialize(
        creds.client_id().as_bytes(),
    ));
    userpass.push(':');
    userpass.extend(form_urlencoded::byte_serialize(
        creds.client_secret().expose_secret().as_bytes(),
    ));
    let encoded = Zeroizing::new(format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(userpass.as_bytes())
    ));
    let mut value = HeaderValue::from_str(&encoded)
        .map_err(|_| AuthError::config("client credentials cannot be sent in a header"))?;
    value.set_sensitive(true);
    Ok(value)
}

pub(crate) async fn read_limited(mut response: reqwest::Response) -> Result<Zeroizing<Vec<u8>>> {
    if response
        .content_length()
        .is_some_and(|len| len > MAX_BODY as u64)
    {
        return Err(AuthError::InvalidResponse {
            reason: "response body too large",
        });
    }
    let mut body = Zeroizing::new(Vec::new());
    while let Some(chunk) = response.chunk().await.map_err(AuthError::transport)? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(AuthError::InvalidResponse {
                reason: "response body too large",
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn parse_success(body: &[u8]) -> Result<Granted> {
    // serde's messages can quote the offending input, so they are replaced by
    // fixed reasons instead of being wrapped.
    let parsed: SuccessBody =
        serde_json::from_slice(body).map_err(|_| AuthError::InvalidResponse {
            reason: "body is not the expected JSON object",
        })?;
    let token = Zeroizing::new(parsed.access_token.unwrap_or_default());
    if token.is_empty() {
        return Err(AuthError::InvalidResponse {
            reason: "no access_token",
        });
    }
    if !parsed
        .token_type
        .as_deref()
        .is_some_and(|t| t.eq_ignore_ascii_case("bearer"))
    {
        return Err(AuthError::InvalidResponse {
            reason: "token_type is not Bearer",
        });
    }
    let expires_in = match parsed.expires_in {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::Number(n)) => {
            Some(n.as_u64().ok_or(AuthError::InvalidResponse {
                reason: "expires_in is not a non-negative integer",
            })?)
        }
        // Some servers quote the number; accept that, nothing else.
        Some(serde_json::Value::String(s)) => {
            Some(s.parse::<u64>().map_err(|_| AuthError::InvalidResponse {
                reason: "expires_in is not a non-negative integer",
            })?)
        }
        Some(_) => {
            return Err(AuthError::InvalidResponse {
                reason: "expires_in is not a non-negative integer",
            });
        }
    }
    .map(Duration::from_secs);
    let header = Zeroizing::new(format!("Bearer {}", token.as_str()));
    let mut header = HeaderValue::from_str(&header).map_err(|_| AuthError::InvalidResponse {
        reason: "access_token contains characters not allowed in a header",
    })?;
    header.set_sensitive(true);
    Ok(Granted {
        access_token: SecretString::new(token.as_str()),
        header,
        expires_in,
        scope: parsed.scope.filter(|s| !s.is_empty()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_body_contract() {
        let g = parse_success(
            br#"{"access_token":"a.b.c","token_type":"Bearer","expires_in":900,"scope":"temporal-worker"}"#,
        )
        .unwrap();
        assert_eq!(g.access_token.expose_secret(), "a.b.c");
        assert_eq!(g.expires_in, Some(Duration::from_secs(900)));
        assert_eq!(g.scope.as_deref(), Some("temporal-worker"));
        assert!(g.header.is_sensitive());
        let g = parse_success(br#"{"access_token":"t","token_type":"bearer","expires_in":"60"}"#)
            .unwrap();
        assert_eq!(g.expires_in, Some(Duration::from_secs(60)));
        let g = parse_success(br#"{"access_token":"t","token_type":"Bearer"}"#).unwrap();
        assert_eq!(g.expires_in, None);
    }

    #[test]
    fn bad_success_bodies_do_not_echo() {
        let planted = "PLANTED-VALUE-1234";
        for body in [
            format!(r#"{{"access_token":"{planted}","token_type":"mac"}}"#),
            format!(
                r#"{{"access_token":"{planted}","token_type":"Bearer","expires_in":"{planted}"}}"#
            ),
            format!(r#"{{"access_token":"{planted}","token_type":"Bearer","expires_in":-5}}"#),
            format!(r#"{{"access_token":"{planted}\n","token_type":"Bearer"}}"#),
            format!(r#"{{"access_token":{planted}}}"#),
            format!("not json {planted}"),
            r#"{"token_type":"Bearer"}"#.to_owned(),
        ] {
            let err = match parse_success(body.as_bytes()) {
                Ok(_) => panic!("accepted {body}"),
                Err(e) => e,
            };
            assert!(matches!(err, AuthError::InvalidResponse { .. }));
            assert!(!format!("{err} {err:?}").contains(planted));
        }
    }

    #[test]
    fn basic_header_form_encodes_before_base64() {
        let creds = crate::credentials::tests_support::creds("my client", "p@ss:w+rd");
        let header = basic_header(&creds).unwrap();
        let encoded = header.to_str().unwrap().strip_prefix("Basic ").unwrap();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap();
        assert_eq!(decoded, b"my+client:p%40ss%3Aw%2Brd");
        assert!(header.is_sensitive());
    }
}
