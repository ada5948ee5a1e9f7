//! One HTTPS serve loop for every Bulwark listener.
//!
//! `axum_server::bind_rustls` had no TLS handshake timeout, no header-read timeout, no idle
//! timeout and no connection limit: a client that connected and sent half a request header
//! held a task, a socket and its buffers forever. [`serve`] bounds every stage of a
//! connection's life (see [`Limits`] for each bound, its default and what happens when it
//! is reached):
//!
//! ```text
//! accept ── handshake ≤ handshake_timeout ──┐
//!   └──────── first request head ≤ header_timeout (counted from accept) ──┐
//!               request ≤ request_timeout (answered 503) ── idle ≤ idle_timeout ── next request …
//!               response delivered ≤ request_timeout + response_send_timeout (else closed)
//! whole connection ≤ max_connection_age (then drained gracefully, dropped after drain_timeout)
//! connections per client address ≤ max_connections_per_address (more are closed at accept)
//! ```
//!
//! Handlers still get `ConnectInfo<SocketAddr>` (inserted as a request extension, as
//! `into_make_service_with_connect_info` did), and, when the TLS configuration verified a
//! client certificate (e.g. `bulwark_tls::server_config_with_client_trust`), a
//! [`PeerCertificate`] extension with its leaf. The counters in [`Stats`] are rendered into
//! each service's `/metrics`.
#![forbid(unsafe_code)]

#[cfg(feature = "clap")]
pub mod cli;
pub mod headers;
pub mod metrics;
mod stats;

use std::{
    collections::{BTreeMap, HashMap},
    convert::Infallible,
    future::Future,
    net::{IpAddr, Ipv6Addr, SocketAddr},
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::Duration,
};

use axum::{
    Router,
    body::{Body, Bytes},
    extract::ConnectInfo,
    http::{HeaderValue, Request, Response, StatusCode, header},
};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::conn::auto,
};
use tokio::{
    net::{TcpListener, TcpStream},
    sync::{Notify, OwnedSemaphorePermit, Semaphore, watch},
    time::Instant,
};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

pub use stats::{Closed, Stats};

/// The client certificate (leaf, DER) the peer presented and the listener's TLS configuration
/// verified, as a request extension: `Option<axum::Extension<PeerCertificate>>` in a handler.
/// Absent when the client sent none (a listener whose client certificate is optional) or the
/// listener asks for none. The same for every request of a connection.
#[derive(Clone, PartialEq, Eq)]
pub struct PeerCertificate(pub Arc<[u8]>);

impl PeerCertificate {
    /// The leaf certificate, DER.
    pub fn der(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for PeerCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("PeerCertificate")
            .field(&format_args!("{} bytes", self.0.len()))
            .finish()
    }
}

/// Bounds applied to every connection of a listener. Every field is settable; `Default`
/// gives the values in parentheses.
#[derive(Debug, Clone)]
pub struct Limits {
    /// A TLS handshake not finished this long after accept closes the connection (10 s).
    pub handshake_timeout: Duration,
    /// A request head not complete this long after the server starts waiting for it closes
    /// the connection (10 s). For the first request the clock starts at accept, so the
    /// handshake counts towards it: whatever a client does, a connection that never
    /// delivers a request head is gone after this long. For later HTTP/1 requests hyper
    /// restarts it when it begins waiting for the next head, which makes it also the upper
    /// bound on HTTP/1 keep-alive idleness.
    pub header_timeout: Duration,
    /// A connection with no request in flight for this long is closed (60 s). Covers HTTP/2,
    /// whose pings would otherwise keep an idle connection alive indefinitely, and is the
    /// HTTP/1 idle bound when it is shorter than `header_timeout`.
    pub idle_timeout: Duration,
    /// A request whose response head is not ready this long after its head arrived is
    /// answered `503 Service Unavailable` with a short text body and its handler is
    /// dropped (30 s). Work that must outlive a request belongs in a spawned task.
    pub request_timeout: Duration,
    /// A response not completely handed to the connection within `request_timeout` plus
    /// this, counted from its request's head, closes the connection (30 s). While a
    /// request is in flight the idle and header bounds do not apply, so without this a
    /// peer that never reads (or, on HTTP/2, grants a zero flow-control window while
    /// answering PINGs) would hold the connection forever. Measured on top of
    /// `request_timeout` so that a service raising that (the API's long `/result` wait)
    /// still gets this long to deliver its answer.
    pub response_send_timeout: Duration,
    /// A connection older than this (counted from accept) is shut down gracefully: no new
    /// requests, in-flight ones finish, then it closes; still open `drain_timeout` later it
    /// is dropped (10 min). Bounds the life of a connection that a client keeps busy with a
    /// steady trickle of small requests, which no idle bound ever sees.
    pub max_connection_age: Duration,
    /// Connections held at once, handshaking or open (2,048). When all are taken the
    /// listener stops accepting: new connections wait in the kernel's accept queue (they
    /// are not refused) until a slot frees. Since nothing can hold a slot for longer than
    /// `header_timeout` without sending requests, the wait is bounded by it; a client that
    /// does send requests is bounded by `max_connection_age` and, whatever it does, cannot
    /// hold more than `max_connections_per_address` slots from one address.
    pub max_connections: usize,
    /// Connections held at once from one client address (256): an IPv4 address, or the /64
    /// of an IPv6 one (one host or site usually holds a whole /64). A connection over it is
    /// closed right after accept, before the TLS handshake, so one host cannot take every
    /// slot of `max_connections` and shut everyone else out for as long as it keeps them
    /// busy (each busy connection is bounded by `max_connection_age` only).
    ///
    /// Not lower because many real clients can share one address: behind compose port
    /// publishing (Docker's userland proxy connects from the bridge gateway), a NAT or a
    /// corporate proxy every client has the same source address. The total stays bounded by
    /// `max_connections`; the default lets one address take an eighth of it. Memory: only
    /// addresses with an open connection are remembered, at most `max_connections` entries.
    pub max_connections_per_address: usize,
    /// Largest request head (HTTP/1 read buffer; HTTP/2 header list), in bytes (32 KiB).
    /// HTTP/1 heads over it are answered 431 by hyper.
    pub max_header_bytes: usize,
    /// HTTP/2 streams a client may have open at once (100).
    pub h2_max_concurrent_streams: u32,
    /// HTTP/2 PING interval (20 s); a peer that does not answer within
    /// `h2_keep_alive_timeout` (20 s) is dropped.
    pub h2_keep_alive_interval: Duration,
    pub h2_keep_alive_timeout: Duration,
    /// On shutdown, how long in-flight requests may finish before connections are dropped
    /// (10 s).
    pub drain_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            handshake_timeout: Duration::from_secs(10),
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(30),
            response_send_timeout: Duration::from_secs(30),
            max_connection_age: Duration::from_secs(600),
            max_connections: 2048,
            max_connections_per_address: 256,
            max_header_bytes: 32 * 1024,
            h2_max_concurrent_streams: 100,
            h2_keep_alive_interval: Duration::from_secs(20),
            h2_keep_alive_timeout: Duration::from_secs(20),
            drain_timeout: Duration::from_secs(10),
        }
    }
}

/// Why a listener could not be served. Accept errors on single connections are not errors
/// of the listener: they are logged and the loop goes on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    #[error("binding {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid limits: {0}")]
    Limits(&'static str),
}

/// Bind a listener, naming the address on failure.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, Error> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Bind { addr, source })
}

/// What the accept loop tells its connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Serving,
    /// Finish in-flight requests, accept no new ones on this connection.
    Draining,
    /// Drop the connection now.
    Stop,
}

/// Serve `app` over TLS on `listener` until `shutdown` completes, then drain (up to
/// `limits.drain_timeout`) and return.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    app: Router,
    limits: Limits,
    stats: Arc<Stats>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    if limits.max_connections == 0 {
        return Err(Error::Limits("max_connections must be at least 1"));
    }
    if limits.max_connections_per_address == 0 {
        return Err(Error::Limits(
            "max_connections_per_address must be at least 1",
        ));
    }
    let timeouts = [
        limits.handshake_timeout,
        limits.header_timeout,
        limits.idle_timeout,
        limits.request_timeout,
        limits.response_send_timeout,
        limits.max_connection_age,
        limits.h2_keep_alive_interval,
        limits.h2_keep_alive_timeout,
    ];
    if timeouts.iter().any(Duration::is_zero) {
        return Err(Error::Limits("every timeout must be longer than zero"));
    }
    if limits.max_header_bytes < 8192 {
        // hyper's HTTP/1 read buffer cannot be smaller.
        return Err(Error::Limits("max_header_bytes must be at least 8192"));
    }
    let limits = Arc::new(limits);
    let acceptor = TlsAcceptor::from(tls);
    let builder = Arc::new(builder(&limits));
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let per_address = Arc::new(PerAddress::default());
    let (phase, phase_rx) = watch::channel(Phase::Serving);
    let name = stats.listener().to_owned();
    tokio::pin!(shutdown);
    // Under a flood the limit is hit once per freed slot: warn at most every 10 s.
    let mut warned: Option<Instant> = None;
    let mut warned_per_address: Option<Instant> = None;

    loop {
        let permit = match slots.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                stats.limit_reached();
                if warned.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
                    warned = Some(Instant::now());
                    tracing::warn!(listener = %name, max = limits.max_connections, "connection limit reached; new connections wait to be accepted");
                }
                tokio::select! {
                    p = slots.clone().acquire_owned() => match p {
                        Ok(p) => p,
                        Err(_) => break, // closed: never, the semaphore is ours
                    },
                    () = &mut shutdown => break,
                }
            }
        };
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    accept_error(&name, &e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        stats.accepted();
        let Some(address_slot) = per_address.take(peer.ip(), limits.max_connections_per_address)
        else {
            // Closed before any TLS work; dropping `permit` frees its slot at once.
            stats.closed(Closed::PerAddressLimit);
            if warned_per_address.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
                warned_per_address = Some(Instant::now());
                tracing::warn!(listener = %name, peer = %peer.ip(), max = limits.max_connections_per_address, "per-address connection limit reached; closing new connections from it");
            }
            drop(tcp);
            continue;
        };
        let conn = Conn {
            peer,
            accepted_at: Instant::now(),
            acceptor: acceptor.clone(),
            builder: builder.clone(),
            app: app.clone(),
            limits: limits.clone(),
            stats: stats.clone(),
            phase: phase_rx.clone(),
            _permit: permit,
            _address_slot: address_slot,
        };
        tokio::spawn(conn.run(tcp));
    }

    drop(listener);
    tracing::info!(listener = %name, "shutting down: draining connections");
    let _ = phase.send(Phase::Draining);
    let all = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    // Every connection holds a slot until its task ends, so holding them all means drained.
    let drained = tokio::time::timeout(limits.drain_timeout, slots.acquire_many(all)).await;
    if drained.is_err() {
        tracing::warn!(listener = %name, open = stats.active(), "drain timeout: dropping the remaining connections");
        let _ = phase.send(Phase::Stop);
    }
    Ok(())
}

fn builder(limits: &Limits) -> auto::Builder<TokioExecutor> {
    let mut b = auto::Builder::new(TokioExecutor::new());
    b.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(limits.max_header_bytes)
        .keep_alive(true);
    b.http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.h2_max_concurrent_streams)
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
        .keep_alive_interval(limits.h2_keep_alive_interval)
        .keep_alive_timeout(limits.h2_keep_alive_timeout);
    b
}

/// Errors of `accept` itself. Per-connection ones (the peer reset before we took it) are
/// noise; resource exhaustion (EMFILE, ENFILE, ENOBUFS) would repeat at once, so back off
/// briefly instead of spinning.
async fn accept_error(listener: &str, e: &std::io::Error) {
    use std::io::ErrorKind::*;
    match e.kind() {
        ConnectionAborted | ConnectionReset | ConnectionRefused | Interrupted | WouldBlock => {}
        _ => {
            tracing::warn!(listener, error = %e, "accept failed; retrying shortly");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// One accepted connection and everything it needs.
struct Conn {
    peer: SocketAddr,
    accepted_at: Instant,
    acceptor: TlsAcceptor,
    builder: Arc<auto::Builder<TokioExecutor>>,
    app: Router,
    limits: Arc<Limits>,
    stats: Arc<Stats>,
    phase: watch::Receiver<Phase>,
    /// Released when the task ends, whichever way.
    _permit: OwnedSemaphorePermit,
    _address_slot: AddressSlot,
}

impl Conn {
    async fn run(mut self, tcp: TcpStream) {
        let _active = self.stats.open();
        let _ = tcp.set_nodelay(true);
        // Bounded by the header timeout too, which counts from accept: a connection never
        // outlives `header_timeout` without a request, however the time is spent.
        let handshake_for = self
            .limits
            .handshake_timeout
            .min(self.limits.header_timeout);
        let handshake =
            tokio::time::timeout_at(self.accepted_at + handshake_for, self.acceptor.accept(tcp));
        let tls = tokio::select! {
            r = handshake => match r {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    self.stats.closed(Closed::HandshakeFailed);
                    tracing::debug!(peer = %self.peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    self.stats.closed(Closed::HandshakeTimeout);
                    return;
                }
            },
            () = stopped(&mut self.phase, Phase::Draining) => return,
        };

        let activity = Arc::new(Activity::new(self.accepted_at));
        // The verified client leaf, when the listener asks for one and the peer sent it:
        // the handshake is over, so rustls has already checked it against the trust.
        let peer_cert = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first())
            .map(|leaf| PeerCertificate(Arc::from(leaf.as_ref())));
        let svc = {
            let (app, activity, stats, peer) = (
                self.app.clone(),
                activity.clone(),
                self.stats.clone(),
                self.peer,
            );
            let peer_cert = peer_cert.clone();
            let timeout = self.limits.request_timeout;
            hyper::service::service_fn(move |req: Request<Incoming>| {
                handle(
                    app.clone(),
                    activity.clone(),
                    stats.clone(),
                    peer,
                    peer_cert.clone(),
                    timeout,
                    req,
                )
            })
        };
        let conn = self.builder.serve_connection(TokioIo::new(tls), svc);
        tokio::pin!(conn);
        let watchdog = activity.watch(&self.limits);
        tokio::pin!(watchdog);
        // First the connection's age limit, then (once reached) the end of its drain.
        let age = tokio::time::sleep_until(self.accepted_at + self.limits.max_connection_age);
        tokio::pin!(age);
        let mut aged = false;
        let mut draining = false;
        loop {
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        if is_header_timeout(&*e) {
                            self.stats.closed(Closed::HeaderTimeout);
                        } else {
                            tracing::debug!(peer = %self.peer, error = %e, "connection ended with an error");
                        }
                    }
                    return;
                }
                kind = &mut watchdog => {
                    // Either nothing is in flight (idle, header), so dropping the connection
                    // loses no response, or a response is overdue (response_timeout) and
                    // its peer is not taking it.
                    self.stats.closed(kind);
                    return;
                }
                () = &mut age => {
                    if aged {
                        tracing::debug!(peer = %self.peer, "drain after max connection age timed out; dropping the connection");
                        return;
                    }
                    aged = true;
                    if !draining {
                        draining = true;
                        self.stats.closed(Closed::MaxAge);
                        conn.as_mut().graceful_shutdown();
                    }
                    // In-flight requests may legitimately run to the request timeout (the
                    // API's long polls): give them that, plus the time to send the answer.
                    let grace = self
                        .limits
                        .drain_timeout
                        .max(self.limits.request_timeout + self.limits.response_send_timeout);
                    age.as_mut().reset(Instant::now() + grace);
                }
                changed = self.phase.changed() => {
                    let phase = *self.phase.borrow_and_update();
                    if changed.is_err() || phase == Phase::Stop {
                        return;
                    }
                    if phase == Phase::Draining && !draining {
                        draining = true;
                        conn.as_mut().graceful_shutdown();
                    }
                }
            }
        }
    }
}

/// Resolves once the listener's phase is at least `at` (or the listener is gone).
async fn stopped(phase: &mut watch::Receiver<Phase>, at: Phase) {
    let _ = phase
        .wait_for(|p| match at {
            Phase::Serving => true,
            Phase::Draining => *p != Phase::Serving,
            Phase::Stop => *p == Phase::Stop,
        })
        .await;
}

fn is_header_timeout(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(h) = err.downcast_ref::<hyper::Error>()
            && h.is_timeout()
        {
            return true;
        }
        cur = err.source();
    }
    false
}

/// One request: the peer address for handlers, the per-request timeout, and the activity
/// guard that keeps the idle watchdog away until the response body has been sent.
async fn handle(
    app: Router,
    activity: Arc<Activity>,
    stats: Arc<Stats>,
    peer: SocketAddr,
    peer_cert: Option<PeerCertificate>,
    timeout: Duration,
    mut req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let guard = activity.begin();
    req.extensions_mut().insert(ConnectInfo(peer));
    if let Some(cert) = peer_cert {
        req.extensions_mut().insert(cert);
    }
    let res = match tokio::time::timeout(timeout, app.oneshot(req)).await {
        Ok(Ok(res)) => res,
        Ok(Err(never)) => match never {},
        Err(_) => {
            stats.request_timed_out();
            timed_out()
        }
    };
    Ok(res.map(|inner| {
        Body::new(Tracked {
            inner,
            _guard: guard,
        })
    }))
}

/// The answer to a request that outlived `request_timeout`.
pub fn timed_out() -> Response<Body> {
    let mut res = Response::new(Body::from("request timed out\n"));
    *res.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    res
}

/// A response body that holds its request's activity guard until hyper drops it, which is
/// after the last frame was written (or the peer went away).
struct Tracked {
    inner: Body,
    _guard: InFlight,
}

impl hyper::body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Requests in flight on one connection and since when it has been idle.
#[derive(Debug)]
struct Activity {
    state: Mutex<ActivityState>,
    changed: Notify,
}

#[derive(Debug)]
struct ActivityState {
    /// Start of each request in flight, by a sequence number: starts only grow with it,
    /// so the first entry is the oldest. At most `h2_max_concurrent_streams` entries (one
    /// for HTTP/1), since a stream stays open until its response body is dropped.
    in_flight: BTreeMap<u64, Instant>,
    next_id: u64,
    /// Accept time until the first request, then the end of the last one.
    idle_since: Instant,
    served: bool,
}

impl Activity {
    fn new(accepted_at: Instant) -> Self {
        Self {
            state: Mutex::new(ActivityState {
                in_flight: BTreeMap::new(),
                next_id: 0,
                idle_since: accepted_at,
                served: false,
            }),
            changed: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ActivityState> {
        // The critical sections cannot panic; a poisoned lock still holds valid counts.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn begin(self: &Arc<Self>) -> InFlight {
        let id = {
            let mut s = self.lock();
            let id = s.next_id;
            s.next_id += 1;
            s.in_flight.insert(id, Instant::now());
            s.served = true;
            id
        };
        self.changed.notify_one();
        InFlight(self.clone(), id)
    }

    /// When the connection is to be closed if nothing happens, and why: while requests are
    /// in flight, when the oldest one's response is overdue; otherwise at the idle (or,
    /// before the first request, header) bound.
    fn deadline(&self, limits: &Limits) -> (Instant, Closed) {
        let s = self.lock();
        if let Some((_, &oldest)) = s.in_flight.first_key_value() {
            (
                oldest + limits.request_timeout + limits.response_send_timeout,
                Closed::ResponseTimeout,
            )
        } else if s.served {
            (s.idle_since + limits.idle_timeout, Closed::IdleTimeout)
        } else {
            (s.idle_since + limits.header_timeout, Closed::HeaderTimeout)
        }
    }

    /// Resolves when the connection is past its deadline, with the reason.
    async fn watch(&self, limits: &Limits) -> Closed {
        loop {
            // `notify_one` stores a permit when no one waits, so a change between reading
            // the deadline and waiting is not lost.
            let (at, _) = self.deadline(limits);
            tokio::select! {
                () = tokio::time::sleep_until(at) => {
                    let (now_at, kind) = self.deadline(limits);
                    if now_at <= Instant::now() {
                        return kind;
                    }
                }
                () = self.changed.notified() => {}
            }
        }
    }
}

/// Marks one request in flight until dropped.
#[derive(Debug)]
struct InFlight(Arc<Activity>, u64);

impl Drop for InFlight {
    fn drop(&mut self) {
        {
            let mut s = self.0.lock();
            s.in_flight.remove(&self.1);
            s.idle_since = Instant::now();
        }
        self.0.changed.notify_one();
    }
}

/// Open connections per client address (see [`address_key`]). Only addresses with at
/// least one open connection have an entry, and each open connection holds a listener
/// slot, so there are never more than `max_connections` entries.
#[derive(Debug, Default)]
struct PerAddress {
    open: Mutex<HashMap<IpAddr, usize>>,
}

impl PerAddress {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, usize>> {
        // The critical sections cannot panic; a poisoned lock still holds valid counts.
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A slot for one more connection from `ip`, or `None` if it already holds `max`.
    fn take(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<AddressSlot> {
        let key = address_key(ip);
        let mut open = self.lock();
        let n = open.entry(key).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(AddressSlot(self.clone(), key))
    }
}

/// One connection counted against its address until dropped.
#[derive(Debug)]
struct AddressSlot(Arc<PerAddress>, IpAddr);

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut open = self.0.lock();
        if let Some(n) = open.get_mut(&self.1) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.1);
            }
        }
    }
}

/// What the per-address limit counts by: an IPv4 address (also when it arrives
/// IPv4-mapped on a dual-stack socket), or the /64 an IPv6 address is in, since one host
/// can use any address of its /64 at will.
fn address_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from_bits(v6.to_bits() & !u128::from(u64::MAX))),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_addresses_count_by_their_64_and_mapped_ipv4_by_the_address() {
        let k = |s: &str| address_key(s.parse().unwrap());
        assert_eq!(k("2001:db8:1:2:aaaa::1"), k("2001:db8:1:2:ffff:1:2:3"));
        assert_eq!(
            k("2001:db8:1:2::9"),
            "2001:db8:1:2::".parse::<IpAddr>().unwrap()
        );
        assert_ne!(k("2001:db8:1:2::1"), k("2001:db8:1:3::1"));
        assert_eq!(k("::ffff:192.0.2.7"), k("192.0.2.7"));
        assert_ne!(k("192.0.2.7"), k("192.0.2.8"));
    }

    #[test]
    fn an_address_holds_at_most_max_and_is_forgotten_at_zero() {
        let p = Arc::new(PerAddress::default());
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let s1 = p.take(a, 2).unwrap();
        let s2 = p.take(a, 2).unwrap();
        assert!(p.take(a, 2).is_none());
        let s3 = p.take(b, 2).unwrap();
        drop(s1);
        let s4 = p.take(a, 2).unwrap();
        drop((s2, s3, s4));
        assert!(p.lock().is_empty(), "{:?}", p.lock());
    }
}
