//! The client's own connections: hyper's HTTP/1.1 client connection on a
//! TCP (or TLS) socket, driven by the task that reads its response, and a
//! pool of the idle ones.
//!
//! Why not reqwest's pool: hyper-util runs each connection in a task of its
//! own, so every streamed chunk woke two tasks (the connection's, which
//! reads the socket, then the reader's), 1-2 µs of CPU per token at 256
//! and 1,024 streams (`cargo bench --bench http_client`, its hyper row);
//! and its checkout raced a new connect against connections still on their
//! way back to the pool, so `preconnect` could not know when it was done.
//! Here the reader polls the connection itself, and a connection is in the
//! pool or in one request's hands, never in between.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::{Body, Incoming};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::rustls;

use super::connects::ConnectCount;

/// A request body: the whole JSON at once.
pub(super) type RequestBody = Full<Bytes>;

/// How long an idle connection is kept: servers close theirs sooner
/// (uvicorn after 5 s, cpp-httplib after 5 s), which a checkout notices.
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

/// Why a connection could not be opened.
#[derive(Debug, thiserror::Error)]
pub(super) enum ConnectError {
    /// The host name did not resolve (or resolved to nothing).
    #[error("{authority}: host name not resolved: {source}")]
    Dns {
        authority: String,
        source: std::io::Error,
    },
    /// TCP connect failed (refused, unreachable, reset).
    #[error("{authority}: tcp connect: {source}")]
    Tcp {
        authority: String,
        source: std::io::Error,
    },
    /// The TLS handshake failed (the rustls error is inside).
    #[error("{authority}: TLS handshake: {source}")]
    Tls {
        authority: String,
        source: std::io::Error,
    },
    /// Not connected within the timeout.
    #[error("{authority}: no connection within {limit:?}")]
    Timeout { authority: String, limit: Duration },
    /// hyper refused the connection (not expected on a fresh socket).
    #[error("{authority}: HTTP handshake: {source}")]
    Http {
        authority: String,
        source: hyper::Error,
    },
}

/// A socket, plain or TLS.
enum Socket {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for Socket {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Socket::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Socket::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Socket {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Socket::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Socket::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Socket::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Socket::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Socket::Plain(s) => s.is_write_vectored(),
            Socket::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Socket::Plain(s) => Pin::new(s).poll_flush(cx),
            Socket::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        match self.get_mut() {
            Socket::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Socket::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

type Driver = http1::Connection<TokioIo<Socket>, RequestBody>;

/// One HTTP/1.1 connection: the handle requests are sent through, and the
/// connection itself, which only makes progress while someone polls it
/// (the request's own task, through [`Connection::drive`] and
/// [`ResponseBody`]).
pub(super) struct Connection {
    sender: http1::SendRequest<RequestBody>,
    /// `None` once it has ended (closed or failed).
    driver: Option<Pin<Box<Driver>>>,
    /// Taken from the pool rather than opened for this request.
    pub(super) reused: bool,
}

impl Connection {
    /// Polls the connection (while it lasts), then `future`, until `future`
    /// is ready: the connection reads the socket and hands what it read to
    /// `future` in the same poll.
    pub(super) async fn drive<F: Future>(&mut self, future: F) -> F::Output {
        let mut future = std::pin::pin!(future);
        std::future::poll_fn(|cx| {
            self.poll_driver(cx);
            future.as_mut().poll(cx)
        })
        .await
    }

    /// Lets the connection do what it can; an ended one is dropped, which
    /// fails whatever still waits on it.
    fn poll_driver(&mut self, cx: &mut Context<'_>) -> Option<hyper::Error> {
        let driver = self.driver.as_mut()?;
        match driver.as_mut().poll(cx) {
            Poll::Pending => None,
            Poll::Ready(ended) => {
                self.driver = None;
                ended.err()
            }
        }
    }

    /// Sends `request` once the connection can take it; the response's head.
    pub(super) async fn send(
        &mut self,
        request: hyper::Request<RequestBody>,
    ) -> hyper::Result<hyper::Response<Incoming>> {
        std::future::poll_fn(|cx| {
            self.poll_driver(cx);
            self.sender.poll_ready(cx)
        })
        .await?;
        let response = self.sender.send_request(request);
        self.drive(response).await
    }

    /// Whether the connection can carry another request now: it has not
    /// ended and has finished the last one. Polls it once, without a
    /// waker, so that a close the server sent while it sat idle is seen.
    fn reusable(&mut self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        self.poll_driver(&mut cx);
        self.driver.is_some() && self.sender.is_ready()
    }
}

/// A response body read by the task that polls it, which drives the
/// connection first: one task woken per chunk.
pub(super) struct ResponseBody<'c> {
    connection: &'c mut Connection,
    body: Incoming,
    /// How the connection failed, until the body has given what it holds.
    ended: Option<hyper::Error>,
}

impl<'c> ResponseBody<'c> {
    /// `body`, read through `connection`, the one it came on.
    pub(super) fn new(connection: &'c mut Connection, body: Incoming) -> ResponseBody<'c> {
        ResponseBody {
            connection,
            body,
            ended: None,
        }
    }
}

impl futures_util::Stream for ResponseBody<'_> {
    type Item = hyper::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if let Some(e) = this.connection.poll_driver(cx) {
            this.ended = Some(e);
        }
        loop {
            // What the connection put in the body before it failed comes
            // first, then its error.
            return match Pin::new(&mut this.body).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => Poll::Ready(Some(Ok(data))),
                    Err(_trailers) => continue,
                },
                Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e))),
                Poll::Ready(None) => Poll::Ready(this.ended.take().map(Err)),
                Poll::Pending => match this.ended.take() {
                    Some(e) => Poll::Ready(Some(Err(e))),
                    None => Poll::Pending,
                },
            };
        }
    }
}

/// Where connections go: the server's address and, for https, how its
/// certificate is checked.
#[derive(Clone)]
pub(super) struct Target {
    host: String,
    port: u16,
    /// `host:port`, as the `Host` header and messages name it.
    pub(super) authority: String,
    tls: Option<(
        tokio_rustls::TlsConnector,
        rustls::pki_types::ServerName<'static>,
    )>,
}

impl Target {
    /// The server of `url`; `tls` is the client configuration for https.
    pub(super) fn new(
        url: &url::Url,
        tls: Option<Arc<rustls::ClientConfig>>,
    ) -> Result<Target, String> {
        let host = url.host_str().ok_or("no host")?;
        // An IPv6 literal comes bracketed; the resolver wants it bare.
        let bare = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = url
            .port_or_known_default()
            .ok_or("no port, and no default one for the scheme")?;
        let authority = match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_string(),
        };
        let tls = match tls {
            Some(config) => {
                let name = rustls::pki_types::ServerName::try_from(bare.clone())
                    .map_err(|e| format!("not a TLS server name: {e}"))?;
                Some((tokio_rustls::TlsConnector::from(config), name))
            }
            None => None,
        };
        Ok(Target {
            host: bare,
            port,
            authority,
            tls,
        })
    }
}

/// A connection left idle, and since when.
struct Idle {
    connection: Connection,
    since: Instant,
}

/// The connections to one server: those idle, and how to open more.
pub(super) struct Pool {
    target: Target,
    connect_timeout: Duration,
    connects: Arc<ConnectCount>,
    /// The most recently returned at the back, where checkouts take from.
    idle: Mutex<VecDeque<Idle>>,
}

impl std::fmt::Debug for Pool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pool")
            .field("authority", &self.target.authority)
            .field("idle", &self.idle_count())
            .finish()
    }
}

impl Pool {
    /// An empty pool for `target`.
    pub(super) fn new(
        target: Target,
        connect_timeout: Duration,
        connects: Arc<ConnectCount>,
    ) -> Pool {
        Pool {
            target,
            connect_timeout,
            connects,
            idle: Mutex::new(VecDeque::new()),
        }
    }

    /// The server's `host:port`.
    pub(super) fn authority(&self) -> &str {
        &self.target.authority
    }

    /// Connections idle in the pool now.
    pub(super) fn idle_count(&self) -> usize {
        self.idle.lock().map_or(0, |idle| idle.len())
    }

    /// The most recently used idle connection that can still carry a
    /// request, or a new one.
    pub(super) async fn checkout(&self) -> Result<Connection, ConnectError> {
        loop {
            let idle = match self.idle.lock() {
                Ok(mut idle) => idle.pop_back(),
                Err(_) => None,
            };
            let Some(Idle {
                mut connection,
                since,
            }) = idle
            else {
                break;
            };
            if since.elapsed() < IDLE_TIMEOUT && connection.reusable() {
                connection.reused = true;
                return Ok(connection);
            }
        }
        self.connect().await
    }

    /// Takes `connection` back if it can carry another request (its last
    /// response read to the end); otherwise it is closed. True if taken.
    /// Connections idle for longer than [`IDLE_TIMEOUT`] are closed too.
    pub(super) fn checkin(&self, mut connection: Connection) -> bool {
        if !connection.reusable() {
            return false;
        }
        let Ok(mut idle) = self.idle.lock() else {
            return false;
        };
        while idle
            .front()
            .is_some_and(|oldest| oldest.since.elapsed() >= IDLE_TIMEOUT)
        {
            idle.pop_front();
        }
        idle.push_back(Idle {
            connection,
            since: Instant::now(),
        });
        true
    }

    /// Opens a new connection (counted in [`ConnectCount`]).
    pub(super) async fn connect(&self) -> Result<Connection, ConnectError> {
        let _in_progress = self.connects.begin();
        let target = &self.target;
        let authority = || target.authority.clone();
        let connect = async {
            let addrs: Vec<_> = tokio::net::lookup_host((target.host.as_str(), target.port))
                .await
                .map_err(|source| ConnectError::Dns {
                    authority: authority(),
                    source,
                })?
                .collect();
            if addrs.is_empty() {
                return Err(ConnectError::Dns {
                    authority: authority(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        "no address for the host",
                    ),
                });
            }
            // Each address in turn, as a browser would (IPv6 and IPv4 of
            // `localhost`); the last error is the one reported.
            let mut last = None;
            let mut tcp = None;
            for addr in addrs {
                match TcpStream::connect(addr).await {
                    Ok(stream) => {
                        tcp = Some(stream);
                        break;
                    }
                    Err(e) => last = Some(e),
                }
            }
            let tcp = match tcp {
                Some(tcp) => tcp,
                None => {
                    return Err(ConnectError::Tcp {
                        authority: authority(),
                        source: last.unwrap_or_else(|| std::io::ErrorKind::NotFound.into()),
                    })
                }
            };
            // Each chunk leaves as it is written: no request waits on
            // Nagle's algorithm.
            tcp.set_nodelay(true).map_err(|source| ConnectError::Tcp {
                authority: authority(),
                source,
            })?;
            let socket = match &target.tls {
                None => Socket::Plain(tcp),
                Some((connector, name)) => Socket::Tls(Box::new(
                    connector
                        .connect(name.clone(), tcp)
                        .await
                        .map_err(|source| ConnectError::Tls {
                            authority: authority(),
                            source,
                        })?,
                )),
            };
            let (sender, driver) =
                http1::handshake(TokioIo::new(socket))
                    .await
                    .map_err(|source| ConnectError::Http {
                        authority: authority(),
                        source,
                    })?;
            Ok(Connection {
                sender,
                driver: Some(Box::pin(driver)),
                reused: false,
            })
        };
        match tokio::time::timeout(self.connect_timeout, connect).await {
            Ok(connected) => connected,
            Err(_) => Err(ConnectError::Timeout {
                authority: authority(),
                limit: self.connect_timeout,
            }),
        }
    }
}
