//! The application server: one HTTP/1.1 endpoint that routes each request to the transport that owns
//! its path (plus `POST /messages` for upstream messages). Network-agnostic: it serves any byte stream,
//! simulated or real.
//!
//! Every request passes [`admit`] first — the rules of RFC 9110/9112 that are the server's rather
//! than a transport's (`Host` on HTTP/1.1, 405 with `Allow`, `OPTIONS`) and the origin policy (CORS
//! headers and preflights, 403 for origins not allowed). Simulated clients send `Host` and no
//! `Origin`, so none of this changes a simulated byte.

use std::convert::Infallible;
use std::future::Future;
use std::rc::Rc;

use futures_util::future::LocalBoxFuture;
use futures_util::FutureExt;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode, Version};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::transport::http::{self, ResponseBody};
use crate::transport::{transport_for, Origins, ServerCtx, TransportKind, RESET_HEADER};

/// Path of the upstream message endpoint.
pub const MESSAGES_PATH: &str = "/messages";

/// Serves one accepted connection until the client goes away, or until the server's shutdown (a
/// drain) ends it gracefully.
pub async fn serve_connection<I>(io: I, server: Rc<ServerCtx>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // Open until hyper lets the connection go; an upgraded WebSocket session counts itself from there.
    let _open = server.connection_opened();
    let server_shutdown = server.shutdown.clone();
    // Numbered, so that its watchers (its own and its requests') share one moment in a spread drain.
    let index = server.connections_numbered.get();
    server.connections_numbered.set(index + 1);
    let service = service_fn(move |request: Request<Incoming>| {
        let answer = route(request, server.clone(), Some(index));
        async move { Ok::<_, Infallible>(answer.await) }
    });
    let mut stopping = server_shutdown.watch_connection(Some(index));
    let mut builder = http1::Builder::new();
    // hyper's own Date header reads the wall clock; responses carry a simulated date instead.
    builder.auto_date_header(false);
    // Errors here are clients that vanished or spoke garbage: nothing to do but drop the connection.
    let connection = builder
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    tokio::pin!(connection);
    tokio::select! {
        // The shutdown first: the response a shutdown releases (a held long poll answered, an event
        // stream ended) must be written after keep-alive is off, so that it says `Connection: close`.
        biased;
        () = stopping.triggered() => {}
        _ = connection.as_mut() => return,
    }
    // A graceful shutdown (a drain): hyper closes the connection if it is idle between requests,
    // or finishes the response in flight with `Connection: close` and closes it then.
    connection.as_mut().graceful_shutdown();
    let _ = connection.await;
}

/// Answers one request: the transport that owns its path, `POST /messages`, or 404. Shared by
/// [`serve_connection`] (the simulation) and `serve` (real sockets), which adds its own page and stats
/// routes in front of it. `connection` numbers the connection the request came on (`None` when the
/// server does not number them, as `serve` does not); see [`crate::transport::Transport::serve`].
///
/// The request is read, admitted and handed to its route when `route` is called, not when the
/// future is first polled, so that the future holds only what the answer still needs. hyper keeps
/// the future in the connection's memory and moves it there whole for every request: with the
/// request and the rarer routes' waiting inline it was 1.7 KB, now 0.4 KB. And a route done with
/// the request drops it at once, before hyper reads ahead on the connection: the request's head
/// shares hyper's read buffer, which hyper otherwise replaced with a new one (its first size, 1 KiB
/// in the vendored hyper, see `vendor/hyper/PATCHES.md`) for every long poll.
pub fn route(
    request: Request<Incoming>,
    server: Rc<ServerCtx>,
    connection: Option<u64>,
) -> impl Future<Output = Response<ResponseBody>> {
    let routed = dispatch(request, &server, connection);
    async move {
        match routed {
            Routed::Answered(response) => response,
            Routed::Pending { answer, cors } => with_cors(answer.await, cors),
        }
    }
}

/// Where [`dispatch`] sent a request.
enum Routed {
    /// Answered at once: a refusal, a preflight or a 404.
    Answered(Response<ResponseBody>),
    /// The route's answer to come, and the CORS header to add to it.
    Pending {
        answer: LocalBoxFuture<'static, Response<ResponseBody>>,
        cors: Option<HeaderValue>,
    },
}

/// [`route`]'s work up to the route's own answer: the request counted, admitted, and given to the
/// route that owns its path.
fn dispatch(request: Request<Incoming>, server: &Rc<ServerCtx>, connection: Option<u64>) -> Routed {
    server.recorder.borrow_mut().request();
    server.requests.set(server.requests.get() + 1);
    let path = request.uri().path();
    let Some(allow) = allowed_methods(path) else {
        return Routed::Answered(match admit(&request, server, "GET, HEAD, OPTIONS") {
            Ok(cors) => with_cors(
                http::error(server, StatusCode::NOT_FOUND, "no such endpoint"),
                cors,
            ),
            Err(answer) => *answer,
        });
    };
    let cors = match admit(&request, server, allow) {
        Ok(cors) => cors,
        Err(answer) => return Routed::Answered(*answer),
    };
    let server = server.clone();
    let answer = if path == MESSAGES_PATH {
        http::receive_upstream(request, server).boxed_local()
    } else if path == crate::transport::engine_io::PATH {
        // The WebSocket transport's long-polling fallback (engine.io sessions).
        crate::transport::engine_io::serve(request, server).boxed_local()
    } else {
        let owner = TransportKind::ALL
            .into_iter()
            .map(transport_for)
            .find(|t| t.path() == path);
        match owner {
            Some(transport) => transport.serve(request, server, connection),
            None => {
                let missing = http::error(&server, StatusCode::NOT_FOUND, "no such endpoint");
                return Routed::Answered(with_cors(missing, cors));
            }
        }
    };
    Routed::Pending { answer, cors }
}

/// The methods a route of this module accepts (for 405's `Allow` and preflights); `None` for paths
/// it does not serve.
pub fn allowed_methods(path: &str) -> Option<&'static str> {
    if path == MESSAGES_PATH {
        return Some("POST, OPTIONS");
    }
    if path == crate::transport::engine_io::PATH {
        return Some("GET, POST, OPTIONS");
    }
    let transport = TransportKind::ALL
        .into_iter()
        .map(transport_for)
        .find(|t| t.path() == path)?;
    Some(match transport.kind() {
        // An upgrade is a GET; HEAD cannot upgrade.
        TransportKind::Websocket => "GET, OPTIONS",
        _ => "GET, HEAD, OPTIONS",
    })
}

/// The request headers a cross-origin page may send (preflight answer).
const ALLOWED_HEADERS: &str = "content-type, last-event-id";

/// The checks every request passes before its route sees it: `Host` present on HTTP/1.1 (RFC 9112
/// §3.2), an allowed `Origin`, `OPTIONS` answered (a CORS preflight when it is one), and a method the
/// route accepts (405 with `Allow` otherwise, RFC 9110 §15.5.6). `Ok` carries the
/// `Access-Control-Allow-Origin` value for the answer when the request came from a browser page.
pub fn admit(
    request: &Request<Incoming>,
    server: &ServerCtx,
    allow: &'static str,
) -> Result<Option<HeaderValue>, Box<Response<ResponseBody>>> {
    let hosts = request.headers().get_all(header::HOST).iter().count();
    if hosts > 1 || (hosts == 0 && request.version() == Version::HTTP_11) {
        return Err(Box::new(http::closing(http::error(
            server,
            StatusCode::BAD_REQUEST,
            "an HTTP/1.1 request needs exactly one Host header",
        ))));
    }
    let cors = match request.headers().get(header::ORIGIN) {
        None => None,
        Some(origin) => {
            let host = request
                .headers()
                .get(header::HOST)
                .and_then(|h| h.to_str().ok());
            if !origin_allowed(&server.policy.origins, origin, host) {
                return Err(Box::new(http::error(
                    server,
                    StatusCode::FORBIDDEN,
                    &format!(
                        "origin {} may not use this server (rtsim serve --allow-origin adds it)",
                        String::from_utf8_lossy(origin.as_bytes())
                    ),
                )));
            }
            Some(match server.policy.origins {
                Origins::Any => HeaderValue::from_static("*"),
                _ => origin.clone(),
            })
        }
    };
    let method = request.method();
    if method == Method::OPTIONS {
        let mut answer =
            http::response(server, StatusCode::NO_CONTENT, "text/plain", http::full(""));
        let headers = answer.headers_mut();
        headers.remove(header::CONTENT_TYPE);
        headers.insert(header::ALLOW, HeaderValue::from_static(allow));
        let preflight = request
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
        if preflight && cors.is_some() {
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_METHODS,
                HeaderValue::from_static(allow),
            );
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                HeaderValue::from_static(ALLOWED_HEADERS),
            );
            headers.insert(
                header::ACCESS_CONTROL_MAX_AGE,
                HeaderValue::from_static("600"),
            );
        }
        return Err(Box::new(with_cors(answer, cors)));
    }
    let accepted = allow
        .split(", ")
        .any(|name| name.as_bytes() == method.as_str().as_bytes());
    if !accepted {
        let mut answer = http::error(
            server,
            StatusCode::METHOD_NOT_ALLOWED,
            &format!("{method} is not served here; use {allow}"),
        );
        answer
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static(allow));
        return Err(Box::new(with_cors(answer, cors)));
    }
    Ok(cors)
}

/// Adds the CORS headers of an admitted cross-origin (or same-origin) browser request.
pub fn with_cors(
    mut response: Response<ResponseBody>,
    cors: Option<HeaderValue>,
) -> Response<ResponseBody> {
    let Some(origin) = cors else {
        return response;
    };
    if response.status() == StatusCode::SWITCHING_PROTOCOLS {
        return response;
    }
    let headers = response.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(RESET_HEADER),
    );
    headers.append(header::VARY, HeaderValue::from_static("origin"));
    response
}

/// Whether a page from `origin` may use the server: its own origin (the `Host` it was served from,
/// over http or https — a TLS proxy may sit in front), or one the policy lists.
pub fn origin_allowed(origins: &Origins, origin: &HeaderValue, host: Option<&str>) -> bool {
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let origin = origin.trim().to_ascii_lowercase();
    if let Some(host) = host {
        let host = host.trim().to_ascii_lowercase();
        let own = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"));
        if own == Some(host.as_str()) {
            return true;
        }
    }
    match origins {
        Origins::SameOrigin => false,
        Origins::Any => true,
        Origins::List(list) => list.contains(&origin),
    }
}

/// Checks and normalises an `--allow-origin` value: `*`, or `scheme://host[:port]` (http or https,
/// no path), lower-cased.
pub fn parse_origin(text: &str) -> Result<String, String> {
    let text = text.trim();
    if text == "*" {
        return Ok(text.to_string());
    }
    let lower = text.trim_end_matches('/').to_ascii_lowercase();
    let rest = lower
        .strip_prefix("http://")
        .or_else(|| lower.strip_prefix("https://"))
        .ok_or_else(|| {
            format!("`{text}` is not an origin: expected `*` or http(s)://host[:port]")
        })?;
    if rest.is_empty() || rest.contains(['/', '?', '#', ' ', '@']) {
        return Err(format!(
            "`{text}` is not an origin: expected `*` or http(s)://host[:port], without a path"
        ));
    }
    Ok(lower)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_parsed_and_matched() {
        assert_eq!(parse_origin("*").unwrap(), "*");
        assert_eq!(
            parse_origin("HTTPS://App.Example:8443/").unwrap(),
            "https://app.example:8443"
        );
        for bad in [
            "example.com",
            "ftp://x",
            "http://",
            "http://x/path",
            "http://a b",
        ] {
            assert!(parse_origin(bad).is_err(), "{bad}");
        }
        let own = HeaderValue::from_static("http://127.0.0.1:8080");
        let other = HeaderValue::from_static("https://app.example");
        let null = HeaderValue::from_static("null");
        let host = Some("127.0.0.1:8080");
        assert!(origin_allowed(&Origins::SameOrigin, &own, host));
        assert!(!origin_allowed(&Origins::SameOrigin, &other, host));
        assert!(!origin_allowed(
            &Origins::SameOrigin,
            &own,
            Some("localhost:8080")
        ));
        let list = Origins::List(vec!["https://app.example".into()]);
        assert!(origin_allowed(&list, &other, host));
        assert!(!origin_allowed(&list, &null, host));
        assert!(origin_allowed(&Origins::Any, &null, host));
    }
}
