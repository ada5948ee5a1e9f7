//! `bulwark_serve::serve` over real TCP and real TLS (a throw-away self-signed certificate),
//! with limits of a few hundred milliseconds so every bound is seen being enforced.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    sync::Arc,
    time::{Duration, Instant},
};

use axum::{Router, extract::ConnectInfo, routing::get};
use bulwark_serve::{Closed, Limits, Stats, serve};
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpSocket, TcpStream},
    sync::oneshot,
};
use tokio_rustls::{TlsConnector, client::TlsStream};

const MS: fn(u64) -> Duration = Duration::from_millis;

struct Server {
    addr: SocketAddr,
    stats: Arc<Stats>,
    client: Arc<rustls::ClientConfig>,
    stop: Option<oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<()>,
}

fn app() -> Router {
    Router::new()
        .route("/", get(|| async { "ok" }))
        .route("/big", get(|| async { axum::body::Body::new(Chunks(64)) }))
        .route(
            "/peer",
            get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.to_string() }),
        )
        .route(
            "/slow/{ms}",
            get(
                |axum::extract::Path(ms): axum::extract::Path<u64>| async move {
                    tokio::time::sleep(MS(ms)).await;
                    "slow"
                },
            ),
        )
}

/// A 64 MiB answer made one 1 MiB chunk at a time, as hyper asks for them. (One big chunk
/// would be taken into hyper's write queue at once, ending the body, and the connection
/// would count as idle while it drains.)
struct Chunks(usize);

impl hyper::body::Body for Chunks {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        if self.0 == 0 {
            return std::task::Poll::Ready(None);
        }
        self.0 -= 1;
        std::task::Poll::Ready(Some(Ok(hyper::body::Frame::data(Bytes::from(vec![
            b'x';
            1 << 20
        ])))))
    }
}

/// Test limits: every timeout long (5 s) unless the test shortens the one it is about.
fn limits() -> Limits {
    Limits {
        handshake_timeout: MS(5000),
        header_timeout: MS(5000),
        idle_timeout: MS(5000),
        request_timeout: MS(5000),
        max_connections: 64,
        drain_timeout: MS(2000),
        ..Limits::default()
    }
}

async fn start(limits: Limits) -> Server {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert: CertificateDer<'static> = ck.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.signing_key.serialize_der()));
    let mut server = rustls::ServerConfig::builder_with_provider(bulwark_tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .unwrap();
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).unwrap();
    let client = rustls::ClientConfig::builder_with_provider(bulwark_tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stats = Arc::new(Stats::new("test"));
    let (stop, stopped) = oneshot::channel::<()>();
    let s = stats.clone();
    let done = tokio::spawn(async move {
        serve(listener, Arc::new(server), app(), limits, s, async {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });
    Server {
        addr,
        stats,
        client: Arc::new(client),
        stop: Some(stop),
        done,
    }
}

impl Server {
    async fn tls(&self, alpn: &[u8]) -> TlsStream<TcpStream> {
        self.tls_from(Ipv4Addr::LOCALHOST, alpn).await.unwrap()
    }

    /// A TLS connection from the loopback address `src` (any of 127.0.0.0/8 works on Linux).
    async fn tls_from(&self, src: Ipv4Addr, alpn: &[u8]) -> std::io::Result<TlsStream<TcpStream>> {
        let mut cfg = (*self.client).clone();
        cfg.alpn_protocols = vec![alpn.to_vec()];
        let sock = TcpSocket::new_v4()?;
        sock.bind(SocketAddr::new(IpAddr::V4(src), 0))?;
        let tcp = sock.connect(self.addr).await?;
        TlsConnector::from(Arc::new(cfg))
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await
    }

    /// One HTTP/1.1 GET on a new connection: (status, body).
    async fn get(&self, path: &str) -> (u16, String) {
        self.get_from(Ipv4Addr::LOCALHOST, path).await
    }

    async fn get_from(&self, src: Ipv4Addr, path: &str) -> (u16, String) {
        let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(
            self.tls_from(src, b"http/1.1").await.unwrap(),
        ))
        .await
        .unwrap();
        tokio::spawn(conn);
        let req = hyper::Request::get(path)
            .header("host", "localhost")
            .body(Empty::<Bytes>::new())
            .unwrap();
        let res = send.send_request(req).await.unwrap();
        let status = res.status().as_u16();
        let body = res.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }
}

/// Reads until the server closes; returns how long that took.
async fn until_closed(mut s: impl AsyncReadExt + Unpin, limit: Duration) -> Duration {
    let t0 = Instant::now();
    let mut buf = [0u8; 1024];
    tokio::time::timeout(limit, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await
    .expect("the server did not close the connection");
    t0.elapsed()
}

#[tokio::test]
async fn a_client_that_never_handshakes_is_closed_after_the_handshake_timeout() {
    let srv = start(Limits {
        handshake_timeout: MS(300),
        ..limits()
    })
    .await;
    let tcp = TcpStream::connect(srv.addr).await.unwrap();
    let took = until_closed(tcp, MS(3000)).await;
    assert!(took >= MS(250), "closed too early: {took:?}");
    assert_eq!(srv.stats.closed_total(Closed::HandshakeTimeout), 1);
}

#[tokio::test]
async fn half_a_request_header_is_closed_after_the_header_timeout() {
    let srv = start(Limits {
        header_timeout: MS(400),
        ..limits()
    })
    .await;
    let mut tls = srv.tls(b"http/1.1").await;
    tls.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
        .await
        .unwrap();
    tls.flush().await.unwrap();
    let took = until_closed(tls, MS(3000)).await;
    assert!(took >= MS(200), "closed too early: {took:?}");
    assert_eq!(srv.stats.closed_total(Closed::HeaderTimeout), 1);
}

/// After a first request, hyper's own header timer bounds the next head.
#[tokio::test]
async fn half_a_second_request_header_is_closed_after_the_header_timeout() {
    let srv = start(Limits {
        header_timeout: MS(400),
        ..limits()
    })
    .await;
    let mut tls = srv.tls(b"http/1.1").await;
    tls.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tls.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    tls.write_all(b"GET / HTTP/1.1\r\nHost: loc").await.unwrap();
    let took = until_closed(tls, MS(3000)).await;
    assert!(took <= MS(1500), "took {took:?}");
    assert_eq!(srv.stats.closed_total(Closed::HeaderTimeout), 1);
}

/// Before the first request the auto-detecting server reads the HTTP/2 preface, which
/// hyper's own header timer does not cover; the watchdog does.
#[tokio::test]
async fn a_silent_client_after_the_handshake_is_closed_after_the_header_timeout() {
    let srv = start(Limits {
        header_timeout: MS(400),
        ..limits()
    })
    .await;
    for alpn in [&b"http/1.1"[..], b"h2"] {
        let tls = srv.tls(alpn).await;
        let took = until_closed(tls, MS(3000)).await;
        assert!(took >= MS(200), "closed too early: {took:?}");
    }
    assert_eq!(srv.stats.closed_total(Closed::HeaderTimeout), 2);
}

/// The header clock of a new connection starts at accept: a slow handshake leaves less
/// time for the request head, so a connection never lives past `header_timeout` without a
/// request.
#[tokio::test]
async fn the_first_header_deadline_counts_from_accept() {
    let srv = start(Limits {
        header_timeout: MS(600),
        ..limits()
    })
    .await;
    let t0 = Instant::now();
    let mut tcp = TcpStream::connect(srv.addr).await.unwrap();
    tokio::time::sleep(MS(400)).await;
    let mut cfg = (*srv.client).clone();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    // Handshake late, then send half a head.
    let tls = TlsConnector::from(Arc::new(cfg))
        .connect(ServerName::try_from("localhost").unwrap(), &mut tcp)
        .await;
    if let Ok(mut tls) = tls {
        let _ = tls.write_all(b"GET / HTTP/1.1\r\n").await;
        until_closed(tls, MS(3000)).await;
    }
    let total = t0.elapsed();
    assert!(
        total < MS(1000),
        "closed {total:?} after connect; want about 600 ms"
    );
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let srv = start(Limits {
        idle_timeout: MS(400),
        ..limits()
    })
    .await;
    // HTTP/1.1: one request, then nothing.
    let (mut send, conn) =
        hyper::client::conn::http1::handshake(TokioIo::new(srv.tls(b"http/1.1").await))
            .await
            .unwrap();
    let conn = tokio::spawn(conn);
    let req = hyper::Request::get("/")
        .header("host", "localhost")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let res = send.send_request(req).await.unwrap();
    assert_eq!(res.status(), 200);
    res.into_body().collect().await.unwrap();
    let t0 = Instant::now();
    tokio::time::timeout(MS(3000), conn)
        .await
        .expect("HTTP/1 idle connection not closed")
        .unwrap()
        .ok();
    assert!(
        t0.elapsed() >= MS(250),
        "closed too early: {:?}",
        t0.elapsed()
    );

    // HTTP/2: PINGs are answered, so only the idle timeout closes it.
    let (mut send, conn) = hyper::client::conn::http2::handshake(
        TokioExecutor::new(),
        TokioIo::new(srv.tls(b"h2").await),
    )
    .await
    .unwrap();
    let conn = tokio::spawn(conn);
    let req = hyper::Request::get("https://localhost/")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let res = send.send_request(req).await.unwrap();
    assert_eq!(res.status(), 200);
    res.into_body().collect().await.unwrap();
    tokio::time::timeout(MS(3000), conn)
        .await
        .expect("HTTP/2 idle connection not closed")
        .unwrap()
        .ok();
    assert_eq!(srv.stats.closed_total(Closed::IdleTimeout), 2);
}

/// hyper restarts its header timer when it starts waiting for the next HTTP/1 request, so
/// an idle HTTP/1 connection is closed after the header timeout even when the idle timeout is
/// longer (documented on `Limits::header_timeout`; this fails if hyper changes that).
#[tokio::test]
async fn an_idle_http1_connection_is_also_bounded_by_the_header_timeout() {
    let srv = start(Limits {
        header_timeout: MS(400),
        idle_timeout: MS(10_000),
        ..limits()
    })
    .await;
    let mut tls = srv.tls(b"http/1.1").await;
    tls.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tls.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    let took = until_closed(tls, MS(3000)).await;
    assert!(took >= MS(250) && took <= MS(1500), "took {took:?}");
}

/// A request in flight is not idleness: a handler slower than the idle timeout finishes.
#[tokio::test]
async fn a_request_longer_than_the_idle_timeout_is_not_cut() {
    let srv = start(Limits {
        idle_timeout: MS(200),
        ..limits()
    })
    .await;
    assert_eq!(srv.get("/slow/700").await, (200, "slow".into()));
    assert_eq!(srv.stats.closed_total(Closed::IdleTimeout), 0);
}

#[tokio::test]
async fn a_slow_request_is_answered_503_after_the_request_timeout() {
    let srv = start(Limits {
        request_timeout: MS(300),
        ..limits()
    })
    .await;
    let t0 = Instant::now();
    let (status, body) = srv.get("/slow/5000").await;
    assert_eq!((status, body.as_str()), (503, "request timed out\n"));
    assert!(t0.elapsed() < MS(2000));
    assert_eq!(srv.stats.request_timeouts_total(), 1);
    // A fast one on the same listener is unaffected.
    assert_eq!(srv.get("/").await, (200, "ok".into()));
}

#[tokio::test]
async fn handlers_get_the_peer_address() {
    let srv = start(limits()).await;
    let (mut send, conn) =
        hyper::client::conn::http1::handshake(TokioIo::new(srv.tls(b"http/1.1").await))
            .await
            .unwrap();
    tokio::spawn(conn);
    let req = hyper::Request::get("/peer")
        .header("host", "localhost")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let body = send
        .send_request(req)
        .await
        .unwrap()
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes();
    let peer: SocketAddr = std::str::from_utf8(&body).unwrap().parse().unwrap();
    assert!(peer.ip().is_loopback());
    assert_ne!(peer.port(), srv.addr.port());
}

/// With every slot taken, a new connection waits (it is not refused) and is served as soon
/// as a slot frees.
#[tokio::test]
async fn the_connection_limit_holds_new_connections_until_a_slot_frees() {
    let srv = Arc::new(
        start(Limits {
            max_connections: 2,
            ..limits()
        })
        .await,
    );
    let hog1 = TcpStream::connect(srv.addr).await.unwrap();
    let _hog2 = TcpStream::connect(srv.addr).await.unwrap();
    // Both accepted (and handshaking) before the real client arrives.
    for _ in 0..100 {
        if srv.stats.active() == 2 {
            break;
        }
        tokio::time::sleep(MS(10)).await;
    }
    assert_eq!(srv.stats.active(), 2);
    let s = srv.clone();
    let mut real = tokio::spawn(async move { s.get("/").await });
    assert!(
        tokio::time::timeout(MS(300), &mut real).await.is_err(),
        "served beyond the connection limit"
    );
    assert!(srv.stats.limit_reached_total() >= 1);
    drop(hog1); // the server sees EOF in the handshake and frees the slot
    let got = tokio::time::timeout(MS(3000), real)
        .await
        .expect("not served after a slot freed")
        .unwrap();
    assert_eq!(got, (200, "ok".into()));
}

/// The hostile-client scenario in small: many half-sent requests are all closed by the
/// server within the header timeout while a real client is served meanwhile.
#[tokio::test]
async fn many_half_sent_requests_are_closed_while_real_requests_are_served() {
    const SLOW: usize = 60;
    let srv = start(Limits {
        header_timeout: MS(800),
        max_connections: 128,
        ..limits()
    })
    .await;
    let t0 = Instant::now();
    let mut slow = Vec::new();
    for _ in 0..SLOW {
        let mut tls = srv.tls(b"http/1.1").await;
        tls.write_all(b"POST /oauth/token HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        slow.push(tokio::spawn(until_closed(tls, MS(5000))));
    }
    for _ in 0..5 {
        assert_eq!(srv.get("/").await, (200, "ok".into()));
    }
    for s in slow {
        s.await.unwrap();
    }
    assert!(t0.elapsed() < MS(4000), "took {:?}", t0.elapsed());
    assert_eq!(srv.stats.closed_total(Closed::HeaderTimeout), SLOW as u64);
    assert_eq!(srv.stats.active(), 0);
}

/// Shutdown lets an in-flight request finish, then `serve` returns.
#[tokio::test]
async fn shutdown_drains_in_flight_requests() {
    let mut srv = start(limits()).await;
    let (mut send, conn) =
        hyper::client::conn::http1::handshake(TokioIo::new(srv.tls(b"http/1.1").await))
            .await
            .unwrap();
    tokio::spawn(conn);
    let req = hyper::Request::get("/slow/400")
        .header("host", "localhost")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let pending = tokio::spawn(send.send_request(req));
    for _ in 0..100 {
        if srv.stats.active() == 1 {
            break;
        }
        tokio::time::sleep(MS(10)).await;
    }
    tokio::time::sleep(MS(100)).await; // the request reached the handler
    srv.stop.take().unwrap().send(()).unwrap();
    let res = pending.await.unwrap().unwrap();
    assert_eq!(res.status(), 200);
    tokio::time::timeout(MS(3000), &mut srv.done)
        .await
        .expect("serve did not return after the drain")
        .unwrap();
    // The listener is closed.
    assert!(TcpStream::connect(srv.addr).await.is_err());
}

#[tokio::test]
async fn zero_timeouts_and_tiny_header_limits_are_refused() {
    for bad in [
        Limits {
            header_timeout: Duration::ZERO,
            ..limits()
        },
        Limits {
            max_header_bytes: 1024,
            ..limits()
        },
        Limits {
            max_connections: 0,
            ..limits()
        },
        Limits {
            max_connections_per_address: 0,
            ..limits()
        },
        Limits {
            response_send_timeout: Duration::ZERO,
            ..limits()
        },
        Limits {
            max_connection_age: Duration::ZERO,
            ..limits()
        },
    ] {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let tls = rustls::ServerConfig::builder_with_provider(bulwark_tls::provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(NoCert));
        let r = serve(
            listener,
            Arc::new(tls),
            app(),
            bad,
            Arc::new(Stats::new("t")),
            std::future::pending(),
        )
        .await;
        assert!(matches!(r, Err(bulwark_serve::Error::Limits(_))), "{r:?}");
    }
}

#[derive(Debug)]
struct NoCert;
impl rustls::server::ResolvesServerCert for NoCert {
    fn resolve(
        &self,
        _: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        None
    }
}

#[test]
fn metrics_render_every_listener_and_reason() {
    // The path a service takes: its registry scrapes the listeners it was given.
    let mut registry = bulwark_serve::metrics::Registry::default();
    let listeners = Arc::new(bulwark_serve::metrics::Listeners::default());
    registry.register_collector(Box::new(listeners.clone()));
    listeners.add(Arc::new(Stats::new("public")));
    listeners.add(Arc::new(Stats::new("admin")));
    let text = bulwark_serve::metrics::render(&registry);
    assert!(text.contains("bulwark_http_connections_active{listener=\"admin\"} 0"));
    assert!(text.contains(
        "bulwark_http_connections_closed_total{listener=\"public\",reason=\"header_timeout\"} 0"
    ));
    for reason in ["response_timeout", "max_age", "per_address_limit"] {
        assert!(text.contains(&format!(
            "bulwark_http_connections_closed_total{{listener=\"admin\",reason=\"{reason}\"}} 0"
        )));
    }
    assert_eq!(
        text.matches("# TYPE bulwark_http_connections_closed_total")
            .count(),
        1
    );
}

/// The hostile-client figure at full size (1,000 half-sent requests, default connection
/// limit): `cargo test -p bulwark-serve --test serve -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "1,000 connections; run by hand for the figure"]
async fn a_thousand_half_sent_requests_with_the_default_limit() {
    const SLOW: usize = 1000;
    let srv = start(Limits {
        header_timeout: MS(3000),
        ..Limits::default()
    })
    .await;
    let t0 = Instant::now();
    let mut slow = Vec::new();
    for i in 0..SLOW {
        // From eight addresses: one alone may hold only `max_connections_per_address`.
        let src = Ipv4Addr::new(127, 0, 0, 2 + (i % 8) as u8);
        let mut tls = srv.tls_from(src, b"http/1.1").await.unwrap();
        tls.write_all(b"POST /oauth/token HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        slow.push(tokio::spawn(until_closed(tls, MS(15_000))));
    }
    let opened = t0.elapsed();
    let mut worst = Duration::ZERO;
    for _ in 0..10 {
        let t = Instant::now();
        assert_eq!(srv.get("/").await, (200, "ok".into()));
        worst = worst.max(t.elapsed());
    }
    for s in slow {
        s.await.unwrap();
    }
    println!(
        "{SLOW} half-sent requests opened in {opened:?}, all closed {:?} after the first; \
         slowest real request meanwhile {worst:?}",
        t0.elapsed()
    );
    assert_eq!(srv.stats.closed_total(Closed::HeaderTimeout), SLOW as u64);
}

/// An HTTP/2 client that grants a zero stream window (and answers PINGs) can never be sent
/// its response body: the request stays in flight, so without the response bound neither
/// the idle nor the header watchdog would ever close the connection.
#[tokio::test]
async fn an_http2_response_the_client_never_takes_closes_the_connection() {
    let srv = start(Limits {
        request_timeout: MS(300),
        response_send_timeout: MS(300),
        h2_keep_alive_interval: MS(100),
        h2_keep_alive_timeout: MS(1000),
        ..limits()
    })
    .await;
    let (mut send, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .initial_stream_window_size(0)
        .handshake(TokioIo::new(srv.tls(b"h2").await))
        .await
        .unwrap();
    let conn = tokio::spawn(conn);
    let t0 = Instant::now();
    let req = hyper::Request::get("https://localhost/")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let res = send.send_request(req).await.unwrap();
    assert_eq!(res.status(), 200, "the head is not flow-controlled");
    let body = tokio::time::timeout(MS(3000), res.into_body().collect())
        .await
        .expect("the connection outlived the response bound");
    assert!(body.is_err(), "the body cannot have been sent: {body:?}");
    let took = t0.elapsed();
    assert!(
        took >= MS(550) && took < MS(2000),
        "closed after {took:?}; want about 600 ms"
    );
    tokio::time::timeout(MS(3000), conn).await.unwrap().ok();
    assert_eq!(srv.stats.closed_total(Closed::ResponseTimeout), 1);
    assert_eq!(srv.stats.closed_total(Closed::IdleTimeout), 0);
}

/// The same over HTTP/1: a client that sends a request and never reads a large answer
/// (hyper stops asking for body chunks once the socket pushes back).
#[tokio::test]
async fn an_http1_response_the_client_never_reads_closes_the_connection() {
    let srv = start(Limits {
        request_timeout: MS(300),
        response_send_timeout: MS(300),
        ..limits()
    })
    .await;
    let mut tls = srv.tls(b"http/1.1").await;
    tls.write_all(b"GET /big HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let t0 = Instant::now();
    while srv.stats.closed_total(Closed::ResponseTimeout) == 0 {
        assert!(
            t0.elapsed() < MS(3000),
            "the connection outlived the response bound"
        );
        tokio::time::sleep(MS(20)).await;
    }
    assert!(
        t0.elapsed() >= MS(550),
        "closed too early: {:?}",
        t0.elapsed()
    );
    drop(tls);
}

/// The response bound is measured on top of `request_timeout`: a handler that uses nearly
/// all of it (as the API's `/result` wait does, with its raised request timeout) still
/// gets its answer delivered.
#[tokio::test]
async fn a_response_ready_just_before_the_request_timeout_is_delivered() {
    let srv = start(Limits {
        request_timeout: MS(800),
        response_send_timeout: MS(200),
        ..limits()
    })
    .await;
    assert_eq!(srv.get("/slow/650").await, (200, "slow".into()));
    let (mut send, conn) = hyper::client::conn::http2::handshake(
        TokioExecutor::new(),
        TokioIo::new(srv.tls(b"h2").await),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let req = hyper::Request::get("https://localhost/slow/650")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let res = send.send_request(req).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        &res.into_body().collect().await.unwrap().to_bytes()[..],
        b"slow"
    );
    assert_eq!(srv.stats.closed_total(Closed::ResponseTimeout), 0);
    assert_eq!(srv.stats.request_timeouts_total(), 0);
}

/// A connection past its maximum age finishes the request in flight, then closes.
#[tokio::test]
async fn a_connection_past_its_max_age_finishes_its_request_then_closes() {
    let srv = start(Limits {
        max_connection_age: MS(300),
        ..limits()
    })
    .await;
    let (mut send, conn) =
        hyper::client::conn::http1::handshake(TokioIo::new(srv.tls(b"http/1.1").await))
            .await
            .unwrap();
    let conn = tokio::spawn(conn);
    let req = hyper::Request::get("/slow/700")
        .header("host", "localhost")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let res = send.send_request(req).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        &res.into_body().collect().await.unwrap().to_bytes()[..],
        b"slow"
    );
    let t = Instant::now();
    tokio::time::timeout(MS(1000), conn)
        .await
        .expect("not closed after the in-flight request")
        .unwrap()
        .ok();
    assert!(t.elapsed() < MS(1000));
    assert_eq!(srv.stats.closed_total(Closed::MaxAge), 1);
    assert!(
        send.ready().await.is_err(),
        "the connection took another request"
    );
}

/// A client that keeps an HTTP/2 connection busy with a steady trickle of tiny requests
/// (so it is never idle) is still cycled at the maximum age.
#[tokio::test]
async fn a_busy_http2_connection_is_cycled_at_its_max_age() {
    let srv = start(Limits {
        max_connection_age: MS(400),
        ..limits()
    })
    .await;
    let (mut send, conn) = hyper::client::conn::http2::handshake(
        TokioExecutor::new(),
        TokioIo::new(srv.tls(b"h2").await),
    )
    .await
    .unwrap();
    let conn = tokio::spawn(conn);
    let t0 = Instant::now();
    let mut served = 0;
    loop {
        assert!(
            t0.elapsed() < MS(3000),
            "still serving after {served} requests"
        );
        let req = hyper::Request::get("https://localhost/")
            .body(Empty::<Bytes>::new())
            .unwrap();
        match send.send_request(req).await {
            Ok(res) if res.status() == 200 => served += 1,
            _ => break,
        }
        tokio::time::sleep(MS(20)).await;
    }
    let took = t0.elapsed();
    assert!(served >= 5, "served {served}");
    assert!(took >= MS(300) && took < MS(1500), "cycled after {took:?}");
    tokio::time::timeout(MS(2000), conn)
        .await
        .expect("not closed after GOAWAY")
        .unwrap()
        .ok();
    assert_eq!(srv.stats.closed_total(Closed::MaxAge), 1);
}

/// A request still running at the maximum age keeps its answer even past the drain timeout
/// (it may run to the request timeout: the API's long polls do), and the connection closes
/// after it.
#[tokio::test]
async fn a_long_request_at_max_age_still_gets_its_answer_then_the_connection_closes() {
    let srv = start(Limits {
        max_connection_age: MS(300),
        drain_timeout: MS(300),
        request_timeout: MS(3000),
        response_send_timeout: MS(500),
        ..limits()
    })
    .await;
    let (mut send, conn) =
        hyper::client::conn::http1::handshake(TokioIo::new(srv.tls(b"http/1.1").await))
            .await
            .unwrap();
    let conn = tokio::spawn(conn);
    let t0 = Instant::now();
    let req = hyper::Request::get("/slow/1000")
        .header("host", "localhost")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let r = tokio::time::timeout(MS(3000), send.send_request(req))
        .await
        .expect("no answer")
        .expect("the request in flight was cut at the drain timeout");
    assert_eq!(r.status(), 200);
    let took = t0.elapsed();
    assert!(took >= MS(1000), "answered after {took:?}");
    tokio::time::timeout(MS(2000), conn)
        .await
        .expect("not closed after the answer")
        .unwrap()
        .ok();
    assert_eq!(srv.stats.closed_total(Closed::MaxAge), 1);
}

/// One address holds at most `max_connections_per_address`; the next connection from it is
/// closed before the handshake, while other addresses still connect, and the address gets
/// its slot back when one of its connections ends.
#[tokio::test]
async fn the_per_address_limit_refuses_one_address_but_not_another() {
    let srv = start(Limits {
        max_connections_per_address: 2,
        ..limits()
    })
    .await;
    let a = Ipv4Addr::new(127, 0, 0, 1);
    let b = Ipv4Addr::new(127, 0, 0, 2);
    let hog1 = srv.tls_from(a, b"http/1.1").await.unwrap();
    let _hog2 = srv.tls_from(a, b"http/1.1").await.unwrap();
    assert!(
        srv.tls_from(a, b"http/1.1").await.is_err(),
        "a third connection from one address was served"
    );
    assert_eq!(srv.stats.closed_total(Closed::PerAddressLimit), 1);
    assert_eq!(srv.get_from(b, "/").await, (200, "ok".into()));

    drop(hog1);
    let t0 = Instant::now();
    loop {
        if let Ok(tls) = srv.tls_from(a, b"http/1.1").await {
            drop(tls);
            break;
        }
        assert!(
            t0.elapsed() < MS(3000),
            "the address never got its slot back"
        );
        tokio::time::sleep(MS(20)).await;
    }
}
