//! The application server: one HTTP/1.1 endpoint that routes each request to the transport that owns
//! its path (plus `POST /messages` for upstream messages). Network-agnostic: it serves any byte stream,
//! simulated or real.

use std::convert::Infallible;
use std::rc::Rc;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::transport::http::{self, ResponseBody};
use crate::transport::{transport_for, ServerCtx, TransportKind};

/// Path of the upstream message endpoint.
pub const MESSAGES_PATH: &str = "/messages";

/// Serves one accepted connection until the client goes away.
pub async fn serve_connection<I>(io: I, server: Rc<ServerCtx>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |request| {
        let server = server.clone();
        async move { Ok::<_, Infallible>(route(request, server).await) }
    });
    let mut builder = http1::Builder::new();
    // hyper's own Date header reads the wall clock; responses carry a simulated date instead.
    builder.auto_date_header(false);
    // Errors here are clients that vanished or spoke garbage: nothing to do but drop the connection.
    let _ = builder
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades()
        .await;
}

/// Answers one request: the transport that owns its path, `POST /messages`, or 404. Shared by
/// [`serve_connection`] (the simulation) and `serve` (real sockets), which adds its own page and stats
/// routes in front of it.
pub async fn route(request: Request<Incoming>, server: Rc<ServerCtx>) -> Response<ResponseBody> {
    server.recorder.borrow_mut().request();
    let path = request.uri().path();
    if path == MESSAGES_PATH {
        return http::receive_upstream(request, server).await;
    }
    let owner = TransportKind::ALL
        .into_iter()
        .map(transport_for)
        .find(|t| t.path() == path);
    match owner {
        Some(transport) => transport.serve(request, server).await,
        None => http::error(&server, StatusCode::NOT_FOUND, "no such endpoint"),
    }
}
