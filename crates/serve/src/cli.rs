//! The command-line and environment form of [`Limits`] (feature `clap`), flattened by every
//! service so that the variables and their defaults are the same everywhere.

use std::time::Duration;

use crate::Limits;

/// Limits of the HTTPS listeners; each applies to every listener of the process.
#[derive(clap::Args, Debug, Clone)]
pub struct ListenerArgs {
    /// TLS handshake timeout.
    #[arg(long, env = "BULWARK_HTTP_HANDSHAKE_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub http_handshake_timeout: Duration,
    /// Longest wait for a complete request head (for a new connection: from accept).
    #[arg(long, env = "BULWARK_HTTP_HEADER_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub http_header_timeout: Duration,
    /// A connection with no request in flight for this long is closed.
    #[arg(long, env = "BULWARK_HTTP_IDLE_TIMEOUT", default_value = "60s", value_parser = humantime::parse_duration)]
    pub http_idle_timeout: Duration,
    /// A request not answered within this is answered 503.
    #[arg(long, env = "BULWARK_HTTP_REQUEST_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub http_request_timeout: Duration,
    /// A response not delivered this long after the request timeout closes its connection.
    #[arg(long, env = "BULWARK_HTTP_RESPONSE_SEND_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub http_response_send_timeout: Duration,
    /// A connection this old is drained gracefully and closed.
    #[arg(long, env = "BULWARK_HTTP_MAX_CONNECTION_AGE", default_value = "10m", value_parser = humantime::parse_duration)]
    pub http_max_connection_age: Duration,
    /// Connections held at once per listener; beyond it new ones wait to be accepted.
    #[arg(long, env = "BULWARK_HTTP_MAX_CONNECTIONS", default_value_t = 2048, value_parser = clap::value_parser!(u32).range(1..))]
    pub http_max_connections: u32,
    /// Connections held at once from one address (IPv6: one /64); more are closed at accept.
    #[arg(long, env = "BULWARK_HTTP_MAX_CONNECTIONS_PER_ADDRESS", default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..))]
    pub http_max_connections_per_address: u32,
    /// Largest request head in bytes (at least 8192).
    #[arg(long, env = "BULWARK_HTTP_MAX_HEADER_BYTES", default_value_t = 32 * 1024, value_parser = clap::value_parser!(u32).range(8192..))]
    pub http_max_header_bytes: u32,
    /// HTTP/2 streams open at once per connection.
    #[arg(long, env = "BULWARK_HTTP2_MAX_STREAMS", default_value_t = 100)]
    pub http2_max_streams: u32,
    /// HTTP/2 PING interval; an unanswered PING drops the connection after the same time.
    #[arg(long, env = "BULWARK_HTTP2_KEEPALIVE", default_value = "20s", value_parser = humantime::parse_duration)]
    pub http2_keepalive: Duration,
    /// On shutdown, how long in-flight requests may finish.
    #[arg(long, env = "BULWARK_HTTP_DRAIN_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub http_drain_timeout: Duration,
}

impl ListenerArgs {
    pub fn limits(&self) -> Limits {
        Limits {
            handshake_timeout: self.http_handshake_timeout,
            header_timeout: self.http_header_timeout,
            idle_timeout: self.http_idle_timeout,
            request_timeout: self.http_request_timeout,
            response_send_timeout: self.http_response_send_timeout,
            max_connection_age: self.http_max_connection_age,
            max_connections: self.http_max_connections as usize,
            max_connections_per_address: self.http_max_connections_per_address as usize,
            max_header_bytes: self.http_max_header_bytes as usize,
            h2_max_concurrent_streams: self.http2_max_streams,
            h2_keep_alive_interval: self.http2_keepalive,
            h2_keep_alive_timeout: self.http2_keepalive,
            drain_timeout: self.http_drain_timeout,
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Cmd {
        #[command(flatten)]
        l: super::ListenerArgs,
    }

    /// The flags' defaults are `Limits::default()`: one set of numbers, documented once.
    #[test]
    fn defaults_match_limits_default() {
        let got = Cmd::parse_from(["x"]).l.limits();
        let want = crate::Limits::default();
        assert_eq!(format!("{got:?}"), format!("{want:?}"));
    }

    #[test]
    fn refuses_zero_connections() {
        assert!(Cmd::try_parse_from(["x", "--http-max-connections", "0"]).is_err());
        assert!(Cmd::try_parse_from(["x", "--http-max-connections-per-address", "0"]).is_err());
    }
}
