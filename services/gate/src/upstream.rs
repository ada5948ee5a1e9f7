//! The one connection pool to Temporal's frontend: HTTP/2 over mutual TLS with the gate's own
//! identity (`gate-client`, the only certificate the frontend trusts), verified against the
//! root with the frontend's server name.

use std::sync::Arc;
use std::time::Duration;

use bulwark_tls::Reloading;
use hyper_util::rt::TokioIo;
use rustls::RootCertStore;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tonic::transport::{Channel, Endpoint};

/// Why the upstream could not be configured (connecting itself is lazy and retried per call).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UpstreamError {
    #[error("upstream address {0:?} must be host:port")]
    Address(String),
    #[error("upstream server name {0:?} is not a valid DNS name or IP address")]
    ServerName(String),
    #[error("upstream TLS configuration: {0}")]
    Tls(#[from] bulwark_tls::Error),
}

/// Where the frontend is and how to prove who we are to it.
#[derive(Debug, Clone)]
pub struct Upstream {
    pub address: String,
    pub server_name: String,
    pub roots: Arc<RootCertStore>,
    pub identity: Arc<Reloading>,
    pub connect_timeout: Duration,
}

impl Upstream {
    /// A lazily connecting channel: the first call (and every call after the connection
    /// broke) dials; requests queue meanwhile. The identity is resolved per handshake, so a
    /// rotated `gate-client` is used for the next connection without a restart.
    pub fn channel(&self) -> Result<Channel, UpstreamError> {
        if !self.address.contains(':') {
            return Err(UpstreamError::Address(self.address.clone()));
        }
        let server_name = ServerName::try_from(self.server_name.clone())
            .map_err(|_| UpstreamError::ServerName(self.server_name.clone()))?;
        let mut config =
            bulwark_tls::client_config(self.roots.clone(), Some(self.identity.clone()))?;
        // grpc-go refuses TLS connections that did not negotiate h2 by ALPN.
        config.alpn_protocols = vec![b"h2".to_vec()];
        let connector = TlsConnector::from(Arc::new(config));
        let address = self.address.clone();
        let connect = tower::service_fn(move |_: http::Uri| {
            let (connector, address, server_name) =
                (connector.clone(), address.clone(), server_name.clone());
            async move {
                let tcp = TcpStream::connect(&address).await?;
                tcp.set_nodelay(true)?;
                let tls = connector.connect(server_name, tcp).await?;
                Ok::<_, std::io::Error>(TokioIo::new(tls))
            }
        });
        // The URI only names the origin for :authority; the connector above decides where
        // the bytes go and wraps them in TLS.
        let endpoint = Endpoint::from_shared(format!("http://{}", self.address))
            .map_err(|_| UpstreamError::Address(self.address.clone()))?
            .connect_timeout(self.connect_timeout)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_timeout(Duration::from_secs(20))
            .keep_alive_while_idle(true)
            .initial_stream_window_size(Some(4 << 20))
            .initial_connection_window_size(Some(16 << 20))
            .buffer_size(4096);
        Ok(endpoint.connect_with_connector_lazy(connect))
    }
}
