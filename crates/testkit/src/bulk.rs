//! A bulk-API test server: the documented Elasticsearch `_bulk` protocol over HTTP/1.1 (or
//! HTTPS, see [`BulkServerBuilder::tls`]) on a free loopback port, with documents kept in
//! memory, injectable faults and inspection.
//!
//! What it implements (Elasticsearch 8 semantics, no `_type`):
//! - `POST|PUT /_bulk` and `POST|PUT /{index}/_bulk` (query parameters such as `filter_path`
//!   are accepted and ignored): NDJSON action and source lines, `index`, `create` and `delete`
//!   actions with `_index` and `_id`; bodies may be gzip (`Content-Encoding: gzip`); the body
//!   must end with a newline. `create` of an existing `_id` is a 409
//!   `version_conflict_engine_exception` item; `index` answers 201 for a new document and 200
//!   when it overwrites one; a missing `_id` gets a generated one. A source line that is not a
//!   JSON object is a 400 `mapper_parsing_exception` item; an unknown action, a `_type`, a
//!   missing index or a missing source line fail the whole request with 400.
//! - `GET /` (cluster information, `version.number` 8.x), `GET /{index}/_doc/{id}`,
//!   `GET|POST /{index}/_count`, `POST /{index}/_refresh`, `DELETE /{index}`.
//! - Authentication when configured: `Authorization: Basic ...` and/or `ApiKey ...`, else 401.
//! - TLS when configured: TLS 1.2 and 1.3 (rustls with aws-lc-rs), no client certificates;
//!   failed handshakes are recorded ([`BulkServer::tls_handshake_failures`]).
//!
//! Faults: [`BulkServer::fail_next_requests`] (whole requests answered 429/503/...),
//! [`BulkServer::fail_next_items`] and [`BulkServer::fail_items_where`] (items answered with an
//! [`ItemFault`]), [`BulkServer::set_delay`] (slow answers).

use std::collections::{BTreeMap, VecDeque};
use std::convert::Infallible;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{Value, json};
use tokio_rustls::TlsAcceptor;

use crate::TestkitError;
use crate::http::Background;

/// How an item of a bulk request is made to fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ItemFault {
    /// 429 `es_rejected_execution_exception` (the write queue is full): retryable.
    TooManyRequests,
    /// 503 `unavailable_shards_exception`: retryable.
    Unavailable,
    /// 400 `mapper_parsing_exception`: rejected for good.
    MapperParsing,
}

impl ItemFault {
    fn status(self) -> u16 {
        match self {
            ItemFault::TooManyRequests => 429,
            ItemFault::Unavailable => 503,
            ItemFault::MapperParsing => 400,
        }
    }

    fn error(self, index: &str) -> Value {
        let (kind, reason) = match self {
            ItemFault::TooManyRequests => (
                "es_rejected_execution_exception",
                "rejected execution of coordinating operation (injected)",
            ),
            ItemFault::Unavailable => (
                "unavailable_shards_exception",
                "primary shard is not active (injected)",
            ),
            ItemFault::MapperParsing => (
                "mapper_parsing_exception",
                "failed to parse field [status] of type [long] (injected)",
            ),
        };
        json!({"type": kind, "reason": reason, "index": index})
    }
}

/// A predicate choosing which items fail: `(index, document) -> Some(fault)`.
type ItemRule = Box<dyn Fn(&str, &Value) -> Option<ItemFault> + Send>;

/// One HTTP request the server received.
#[derive(Clone, Debug)]
pub struct ReceivedRequest {
    /// `GET`, `POST`, ...
    pub method: String,
    /// Path and query, as sent.
    pub path: String,
    /// Header names (lower case) and values, in the order received.
    pub headers: Vec<(String, String)>,
    /// The body as received (compressed if it was).
    pub body: Vec<u8>,
    /// Whether the body was gzip (`Content-Encoding: gzip`).
    pub gzip: bool,
    /// Length of the body after decompression.
    pub decoded_len: usize,
    /// Bulk items processed (0 when the request was failed whole or was not a bulk request).
    pub items: usize,
    /// The status the server answered.
    pub status: u16,
}

impl ReceivedRequest {
    /// The value of a header (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether this was a `_bulk` request.
    pub fn is_bulk(&self) -> bool {
        self.path
            .split('?')
            .next()
            .is_some_and(|p| p.ends_with("/_bulk"))
    }
}

#[derive(Default)]
struct IndexData {
    docs: BTreeMap<String, (Value, u64)>,
}

#[derive(Default)]
struct State {
    indices: BTreeMap<String, IndexData>,
    requests: Vec<ReceivedRequest>,
    fail_requests: VecDeque<u16>,
    fail_items: VecDeque<ItemFault>,
    item_rule: Option<ItemRule>,
    delay: Duration,
    items_received: u64,
    seq_no: u64,
    auto_id: u64,
    tls_failures: Vec<String>,
}

/// Credentials the server accepts; with none configured every request is accepted.
#[derive(Clone, Debug, Default)]
struct Auth {
    basic: Option<(String, String)>,
    api_key: Option<String>,
}

impl Auth {
    fn required(&self) -> bool {
        self.basic.is_some() || self.api_key.is_some()
    }

    fn accepts(&self, header: Option<&str>) -> bool {
        if !self.required() {
            return true;
        }
        let Some(header) = header else { return false };
        if let (Some((user, password)), Some(encoded)) =
            (&self.basic, header.strip_prefix("Basic "))
        {
            let expected =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            if encoded.trim() == expected {
                return true;
            }
        }
        if let (Some(key), Some(given)) = (&self.api_key, header.strip_prefix("ApiKey ")) {
            return given.trim() == key;
        }
        false
    }
}

struct Shared {
    state: Mutex<State>,
    auth: Auth,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Longest time a client may take to complete a TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Configures a [`BulkServer`] before it starts.
#[derive(Debug, Default)]
pub struct BulkServerBuilder {
    auth: Auth,
    /// PEM certificate chain and private key: serve HTTPS.
    tls: Option<(PathBuf, PathBuf)>,
}

impl BulkServerBuilder {
    /// Requires `Authorization: Basic` with this user and password (default: no authentication).
    pub fn basic_auth(mut self, user: &str, password: &str) -> BulkServerBuilder {
        self.auth.basic = Some((user.to_string(), password.to_string()));
        self
    }

    /// Requires `Authorization: ApiKey <key>` (default: no authentication). With both basic
    /// and API-key credentials configured, either is accepted.
    pub fn api_key(mut self, key: &str) -> BulkServerBuilder {
        self.auth.api_key = Some(key.to_string());
        self
    }

    /// Serves HTTPS instead of HTTP with the PEM certificate chain `cert_pem` and the PEM
    /// private key `key_pem` (TLS 1.2 and 1.3, no client certificates); [`BulkServer::url`]
    /// then starts with `https://`. The test kit's [`crate::tls_fixture`] `server.pem` and
    /// `server.key` are valid for `127.0.0.1` and `localhost` and signed by its `ca.pem`.
    /// The files are read by [`BulkServerBuilder::start`], whose error names them.
    ///
    /// ```
    /// use logferry_testkit::{BulkServer, tls_fixture};
    ///
    /// let server = BulkServer::builder()
    ///     .tls(tls_fixture("server.pem"), tls_fixture("server.key"))
    ///     .start()
    ///     .unwrap();
    /// assert!(server.url().starts_with("https://127.0.0.1:"));
    /// ```
    pub fn tls(
        mut self,
        cert_pem: impl AsRef<Path>,
        key_pem: impl AsRef<Path>,
    ) -> BulkServerBuilder {
        self.tls = Some((
            cert_pem.as_ref().to_path_buf(),
            key_pem.as_ref().to_path_buf(),
        ));
        self
    }

    /// Binds a free loopback port and starts serving on a thread of its own.
    pub fn start(self) -> Result<BulkServer, TestkitError> {
        let acceptor = match &self.tls {
            Some((cert, key)) => Some(tls_acceptor(cert, key)?),
            None => None,
        };
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            auth: self.auth,
        });
        let serving = Arc::clone(&shared);
        let server = Background::start("bulk", move |listener| {
            accept_loop(listener, serving, acceptor)
        })?;
        Ok(BulkServer {
            server,
            tls: self.tls.is_some(),
            shared,
        })
    }
}

/// The bulk-API test server, stopped on drop.
///
/// ```
/// use logferry_testkit::{BulkServer, ItemFault};
///
/// let server = BulkServer::start().unwrap();
/// server.fail_next_items(1, ItemFault::MapperParsing);
/// let body = "{\"create\":{\"_index\":\"logs\",\"_id\":\"a\"}}\n{\"n\":1}\n\
///             {\"create\":{\"_index\":\"logs\",\"_id\":\"b\"}}\n{\"n\":2}\n";
/// let (status, answer) = server.post_bulk(body.as_bytes()).unwrap();
/// assert_eq!(status, 200);
/// assert_eq!(answer["errors"], true);
/// assert_eq!(answer["items"][0]["create"]["status"], 400);
/// assert_eq!(answer["items"][1]["create"]["status"], 201);
/// assert_eq!(server.count("logs"), 1);
/// assert_eq!(server.document("logs", "b").unwrap()["n"], 2);
/// ```
pub struct BulkServer {
    server: Background,
    tls: bool,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for BulkServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BulkServer")
            .field("addr", &self.server.addr())
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

impl BulkServer {
    /// Starts a server that accepts every request (no authentication).
    pub fn start() -> Result<BulkServer, TestkitError> {
        BulkServer::builder().start()
    }

    /// A builder for a server with authentication or TLS.
    pub fn builder() -> BulkServerBuilder {
        BulkServerBuilder::default()
    }

    /// `http://127.0.0.1:PORT`, or `https://127.0.0.1:PORT` when started with
    /// [`BulkServerBuilder::tls`].
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.server.addr())
    }

    /// Whether the server serves HTTPS ([`BulkServerBuilder::tls`]).
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// The errors of TLS handshakes that failed so far, in order (empty without TLS): a
    /// client that rejects the server's certificate shows up here as a received alert such
    /// as `UnknownCA`; such a connection never makes a [`ReceivedRequest`].
    pub fn tls_handshake_failures(&self) -> Vec<String> {
        self.shared.lock().tls_failures.clone()
    }

    /// The loopback port.
    pub fn port(&self) -> u16 {
        self.server.addr().port()
    }

    /// Answers the next `n` requests (of any kind) with `status` (429, 503, ...) without
    /// processing them.
    pub fn fail_next_requests(&self, n: usize, status: u16) {
        let mut state = self.shared.lock();
        state.fail_requests.extend(std::iter::repeat_n(status, n));
    }

    /// Fails the next `n` bulk items with `fault` (in the order they arrive).
    pub fn fail_next_items(&self, n: usize, fault: ItemFault) {
        let mut state = self.shared.lock();
        state.fail_items.extend(std::iter::repeat_n(fault, n));
    }

    /// Fails every item for which `rule(index, document)` returns a fault, until
    /// [`BulkServer::clear_faults`] (the rule is tested before the queue of `fail_next_items`).
    pub fn fail_items_where(
        &self,
        rule: impl Fn(&str, &Value) -> Option<ItemFault> + Send + 'static,
    ) {
        self.shared.lock().item_rule = Some(Box::new(rule));
    }

    /// Delays every answer by `delay` (zero turns slow mode off).
    pub fn set_delay(&self, delay: Duration) {
        self.shared.lock().delay = delay;
    }

    /// Removes every pending fault and the delay.
    pub fn clear_faults(&self) {
        let mut state = self.shared.lock();
        state.fail_requests.clear();
        state.fail_items.clear();
        state.item_rule = None;
        state.delay = Duration::ZERO;
    }

    /// The documents of `index` by id.
    pub fn documents(&self, index: &str) -> BTreeMap<String, Value> {
        let state = self.shared.lock();
        state
            .indices
            .get(index)
            .map(|data| {
                data.docs
                    .iter()
                    .map(|(id, (doc, _))| (id.clone(), doc.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// One document of `index`.
    pub fn document(&self, index: &str, id: &str) -> Option<Value> {
        let state = self.shared.lock();
        Some(state.indices.get(index)?.docs.get(id)?.0.clone())
    }

    /// The version of a document (1 when created, +1 per overwrite by `index`).
    pub fn version(&self, index: &str, id: &str) -> Option<u64> {
        let state = self.shared.lock();
        Some(state.indices.get(index)?.docs.get(id)?.1)
    }

    /// Number of documents in `index`.
    pub fn count(&self, index: &str) -> usize {
        let state = self.shared.lock();
        state.indices.get(index).map_or(0, |data| data.docs.len())
    }

    /// Number of documents in every index.
    pub fn total_count(&self) -> usize {
        let state = self.shared.lock();
        state.indices.values().map(|data| data.docs.len()).sum()
    }

    /// Names of the indices holding documents (or created by a request).
    pub fn indices(&self) -> Vec<String> {
        self.shared.lock().indices.keys().cloned().collect()
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<ReceivedRequest> {
        self.shared.lock().requests.clone()
    }

    /// Number of requests received (of any kind, failed or not).
    pub fn request_count(&self) -> usize {
        self.shared.lock().requests.len()
    }

    /// Number of `_bulk` requests received (failed or not).
    pub fn bulk_request_count(&self) -> usize {
        self.shared
            .lock()
            .requests
            .iter()
            .filter(|r| r.is_bulk())
            .count()
    }

    /// Number of bulk items processed (requests failed whole are not counted).
    pub fn items_received(&self) -> u64 {
        self.shared.lock().items_received
    }

    /// Forgets every document, request, fault and recorded TLS handshake failure.
    pub fn reset(&self) {
        let mut state = self.shared.lock();
        *state = State::default();
    }

    /// Sends a plain (uncompressed, unauthenticated) bulk body to the server and returns the
    /// status and the parsed answer: a convenience for tests of the server itself. It speaks
    /// plain HTTP only: with [`BulkServerBuilder::tls`] it returns an error.
    pub fn post_bulk(&self, body: &[u8]) -> Result<(u16, Value), TestkitError> {
        if self.tls {
            return Err(TestkitError::Http {
                endpoint: self.url(),
                source: std::io::Error::new(
                    std::io::ErrorKind::Unsupported,
                    "BulkServer::post_bulk speaks plain HTTP and this server serves HTTPS",
                ),
            });
        }
        let response = crate::http::request(
            self.port(),
            "POST",
            "/_bulk",
            &[("Content-Type", "application/x-ndjson")],
            body,
            Duration::from_secs(30),
        )
        .map_err(|source| TestkitError::Http {
            endpoint: self.url(),
            source,
        })?;
        let value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
        Ok((response.status, value))
    }
}

/// The rustls server configuration of [`BulkServerBuilder::tls`] (aws-lc-rs, TLS 1.2 and 1.3).
fn tls_acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, TestkitError> {
    let error = |path: &Path, reason: String| TestkitError::Tls {
        path: path.to_path_buf(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|e| error(cert, e.to_string()))?;
    if certs.is_empty() {
        return Err(error(cert, "holds no PEM certificate".to_string()));
    }
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| error(key, e.to_string()))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| error(cert, e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key_der)
        .map_err(|e| error(key, e.to_string()))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

async fn accept_loop(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    acceptor: Option<TlsAcceptor>,
) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let shared = Arc::clone(&shared);
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            match acceptor {
                None => serve(stream, shared).await,
                Some(acceptor) => {
                    let handshake =
                        tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await;
                    match handshake {
                        Ok(Ok(stream)) => serve(stream, shared).await,
                        Ok(Err(err)) => shared.lock().tls_failures.push(err.to_string()),
                        Err(_) => shared
                            .lock()
                            .tls_failures
                            .push(format!("no TLS handshake within {HANDSHAKE_TIMEOUT:?}")),
                    }
                }
            }
        });
    }
}

/// Serves HTTP/1.1 on one connection (plain TCP or TLS).
async fn serve<S>(stream: S, shared: Arc<Shared>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |request| {
        let shared = Arc::clone(&shared);
        async move { Ok::<_, Infallible>(handle(&shared, request).await) }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

fn respond(status: u16, body: &Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

fn error_body(status: u16, kind: &str, reason: &str) -> Value {
    json!({"error": {"root_cause": [{"type": kind, "reason": reason}], "type": kind, "reason": reason}, "status": status})
}

async fn handle(shared: &Shared, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let method = request.method().as_str().to_string();
    let path = request
        .uri()
        .path_and_query()
        .map_or("/".to_string(), |pq| pq.as_str().to_string());
    let headers: Vec<(String, String)> = request
        .headers()
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let body = match request.into_body().collect().await {
        Ok(collected) => collected.to_bytes().to_vec(),
        Err(_) => Vec::new(),
    };
    let delay = shared.lock().delay;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let mut record = ReceivedRequest {
        method,
        path,
        headers,
        gzip: false,
        decoded_len: body.len(),
        body,
        items: 0,
        status: 0,
    };
    let (status, answer) = process(shared, &mut record);
    record.status = status;
    shared.lock().requests.push(record);
    respond(status, &answer)
}

fn process(shared: &Shared, record: &mut ReceivedRequest) -> (u16, Value) {
    if let Some(status) = shared.lock().fail_requests.pop_front() {
        let kind = if status == 429 {
            "es_rejected_execution_exception"
        } else {
            "cluster_unavailable_exception"
        };
        return (status, error_body(status, kind, "injected request failure"));
    }
    if !shared.auth.accepts(record.header("authorization")) {
        return (
            401,
            error_body(401, "security_exception", "missing or wrong credentials"),
        );
    }
    record.gzip = record
        .header("content-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
    let decoded = if record.gzip {
        let mut out = Vec::new();
        if flate2::read::MultiGzDecoder::new(&record.body[..])
            .read_to_end(&mut out)
            .is_err()
        {
            return (
                400,
                error_body(400, "parse_exception", "request body is not valid gzip"),
            );
        }
        out
    } else {
        record.body.clone()
    };
    record.decoded_len = decoded.len();
    let path = record.path.split('?').next().unwrap_or("/").to_string();
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    let method = record.method.as_str();
    match (method, parts.as_slice()) {
        ("GET" | "HEAD", []) => (
            200,
            json!({
                "name": "logferry-testkit",
                "cluster_name": "logferry-testkit",
                "cluster_uuid": "testkit",
                "version": {"number": "8.15.0", "build_flavor": "default", "lucene_version": "9.11.1"},
                "tagline": "You Know, for Search"
            }),
        ),
        ("POST" | "PUT", ["_bulk"]) => bulk(shared, None, &decoded, record),
        ("POST" | "PUT", [index, "_bulk"]) => bulk(shared, Some(index), &decoded, record),
        ("GET" | "POST", [index, "_count"]) => {
            let state = shared.lock();
            let count = state.indices.get(*index).map_or(0, |d| d.docs.len());
            (200, json!({"count": count}))
        }
        ("POST" | "GET", [_, "_refresh"]) => (200, json!({"_shards": {"failed": 0}})),
        ("GET", [index, "_doc", id]) => {
            let state = shared.lock();
            match state.indices.get(*index).and_then(|d| d.docs.get(*id)) {
                Some((doc, version)) => (
                    200,
                    json!({"_index": index, "_id": id, "_version": version, "found": true, "_source": doc}),
                ),
                None => (404, json!({"_index": index, "_id": id, "found": false})),
            }
        }
        ("DELETE", [index]) => {
            let mut state = shared.lock();
            match state.indices.remove(*index) {
                Some(_) => (200, json!({"acknowledged": true})),
                None => (
                    404,
                    error_body(404, "index_not_found_exception", "no such index"),
                ),
            }
        }
        _ => (
            404,
            error_body(
                404,
                "illegal_argument_exception",
                &format!("no handler for {method} {path}"),
            ),
        ),
    }
}

/// One parsed action of a bulk body.
struct Action<'a> {
    op: String,
    index: String,
    id: Option<String>,
    source: Option<&'a [u8]>,
}

fn bad_request(reason: &str) -> (u16, Value) {
    (400, error_body(400, "illegal_argument_exception", reason))
}

fn parse_actions<'a>(
    default_index: Option<&str>,
    body: &'a [u8],
) -> Result<Vec<Action<'a>>, String> {
    if body.is_empty() {
        return Err("request body is required".to_string());
    }
    if body.last() != Some(&b'\n') {
        return Err("The bulk request must be terminated by a newline [\\n]".to_string());
    }
    let mut lines = body.split(|&b| b == b'\n').filter(|l| !l.is_empty());
    let mut actions = Vec::new();
    while let Some(line) = lines.next() {
        let value: Value = serde_json::from_slice(line)
            .map_err(|e| format!("Malformed action/metadata line: {e}"))?;
        let object = value
            .as_object()
            .filter(|o| o.len() == 1)
            .ok_or("Malformed action/metadata line, expected a single action")?;
        let (op, meta) = object.iter().next().ok_or("empty action")?;
        if !matches!(op.as_str(), "index" | "create" | "delete") {
            return Err(format!(
                "Malformed action/metadata line, unknown action [{op}]"
            ));
        }
        let meta = meta
            .as_object()
            .ok_or("action metadata must be an object")?;
        for key in meta.keys() {
            if !matches!(
                key.as_str(),
                "_index" | "_id" | "routing" | "pipeline" | "require_alias" | "op_type"
            ) {
                return Err(format!(
                    "Action/metadata line contains an unknown parameter [{key}]"
                ));
            }
        }
        let index = match meta.get("_index").and_then(Value::as_str) {
            Some(index) => index.to_string(),
            None => default_index.ok_or("index is missing")?.to_string(),
        };
        let id = meta.get("_id").and_then(Value::as_str).map(str::to_string);
        let source = if op == "delete" {
            None
        } else {
            Some(lines.next().ok_or("source line is missing")?)
        };
        actions.push(Action {
            op: op.clone(),
            index,
            id,
            source,
        });
    }
    Ok(actions)
}

fn bulk(
    shared: &Shared,
    default_index: Option<&str>,
    body: &[u8],
    record: &mut ReceivedRequest,
) -> (u16, Value) {
    let started = Instant::now();
    let actions = match parse_actions(default_index, body) {
        Ok(actions) => actions,
        Err(reason) => return bad_request(&reason),
    };
    let mut state = shared.lock();
    let state = &mut *state;
    state.items_received += actions.len() as u64;
    record.items = actions.len();
    let mut errors = false;
    let mut items = Vec::with_capacity(actions.len());
    for action in actions {
        let (status, mut result) = apply(state, &action);
        errors |= status >= 300;
        result["status"] = json!(status);
        items.push(json!({ action.op.clone(): result }));
    }
    let took = started.elapsed().as_millis() as u64;
    (200, json!({"took": took, "errors": errors, "items": items}))
}

fn apply(state: &mut State, action: &Action<'_>) -> (u16, Value) {
    let index = action.index.as_str();
    let id_for_errors = action.id.clone().unwrap_or_default();
    let item_error = |status: u16, error: Value| {
        (
            status,
            json!({"_index": index, "_id": id_for_errors, "error": error}),
        )
    };
    let document = match action.source {
        Some(source) => match serde_json::from_slice::<Value>(source) {
            Ok(doc @ Value::Object(_)) => Some(doc),
            _ => {
                return item_error(
                    400,
                    json!({"type": "mapper_parsing_exception", "reason": "failed to parse: the source is not a JSON object", "index": index}),
                );
            }
        },
        None => None,
    };
    if let Some(doc) = &document {
        let fault = state
            .item_rule
            .as_ref()
            .and_then(|rule| rule(index, doc))
            .or_else(|| state.fail_items.pop_front());
        if let Some(fault) = fault {
            return item_error(fault.status(), fault.error(index));
        }
    }
    state.seq_no += 1;
    let seq_no = state.seq_no;
    let id = match &action.id {
        Some(id) => id.clone(),
        None => {
            state.auto_id += 1;
            format!("testkit{:013}", state.auto_id)
        }
    };
    let data = state.indices.entry(index.to_string()).or_default();
    let shards = json!({"total": 2, "successful": 1, "failed": 0});
    let ok = |status: u16, result: &str, version: u64| {
        (
            status,
            json!({"_index": index, "_id": id, "_version": version, "result": result,
                   "_shards": shards, "_seq_no": seq_no, "_primary_term": 1}),
        )
    };
    match (action.op.as_str(), document) {
        ("delete", _) => match data.docs.remove(&id) {
            Some((_, version)) => ok(200, "deleted", version + 1),
            None => ok(404, "not_found", 1),
        },
        ("create", Some(doc)) => {
            if let Some((_, version)) = data.docs.get(&id) {
                let reason = format!(
                    "[{id}]: version conflict, document already exists (current version [{version}])"
                );
                return (
                    409,
                    json!({"_index": index, "_id": id, "error": {
                        "type": "version_conflict_engine_exception", "reason": reason,
                        "index": index, "shard": "0"}}),
                );
            }
            data.docs.insert(id.clone(), (doc, 1));
            ok(201, "created", 1)
        }
        (_, Some(doc)) => match data.docs.insert(id.clone(), (doc, 1)) {
            Some((_, previous)) => {
                let version = previous + 1;
                if let Some(entry) = data.docs.get_mut(&id) {
                    entry.1 = version;
                }
                ok(200, "updated", version)
            }
            None => ok(201, "created", 1),
        },
        (_, None) => bad_request("source line is missing"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    fn post(
        server: &BulkServer,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> (u16, Value) {
        let response = crate::http::request(
            server.port(),
            "POST",
            path,
            headers,
            body,
            Duration::from_secs(10),
        )
        .unwrap();
        (
            response.status,
            serde_json::from_slice(&response.body).unwrap(),
        )
    }

    #[test]
    fn create_index_conflicts_and_generated_ids() {
        let server = BulkServer::start().unwrap();
        let body = b"{\"create\":{\"_index\":\"a\",\"_id\":\"1\"}}\n{\"x\":1}\n\
{\"create\":{\"_index\":\"a\",\"_id\":\"1\"}}\n{\"x\":2}\n\
{\"index\":{\"_index\":\"a\",\"_id\":\"2\"}}\n{\"x\":3}\n\
{\"index\":{\"_index\":\"a\",\"_id\":\"2\"}}\n{\"x\":4}\n\
{\"create\":{\"_index\":\"b\"}}\n{\"x\":5}\n";
        let (status, answer) = server.post_bulk(body).unwrap();
        assert_eq!(status, 200);
        assert_eq!(answer["errors"], true);
        let statuses: Vec<u64> = answer["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|item| {
                item.as_object().unwrap().values().next().unwrap()["status"]
                    .as_u64()
                    .unwrap()
            })
            .collect();
        assert_eq!(statuses, [201, 409, 201, 200, 201]);
        assert_eq!(
            answer["items"][1]["create"]["error"]["type"],
            "version_conflict_engine_exception"
        );
        assert_eq!(server.document("a", "1").unwrap(), json!({"x": 1}));
        assert_eq!(server.document("a", "2").unwrap(), json!({"x": 4}));
        assert_eq!(server.version("a", "2"), Some(2));
        assert_eq!(server.count("b"), 1);
        let generated = answer["items"][4]["create"]["_id"].as_str().unwrap();
        assert_eq!(server.documents("b").keys().next().unwrap(), generated);
        assert_eq!(server.total_count(), 3);
        assert_eq!(server.items_received(), 5);
        assert_eq!(server.indices(), ["a", "b"]);
    }

    #[test]
    fn index_from_path_gzip_and_malformed_bodies() {
        let server = BulkServer::start().unwrap();
        let body = gzip(b"{\"create\":{\"_id\":\"x\"}}\n{\"m\":\"hi\"}\n");
        let (status, answer) = post(
            &server,
            "/logs-1/_bulk?filter_path=errors",
            &[("Content-Encoding", "gzip")],
            &body,
        );
        assert_eq!((status, &answer["errors"]), (200, &json!(false)));
        assert_eq!(server.document("logs-1", "x").unwrap()["m"], "hi");
        let requests = server.requests();
        assert!(requests[0].gzip && requests[0].is_bulk());
        assert_eq!(requests[0].body.len(), body.len());
        assert_eq!(requests[0].decoded_len, 34);
        // No final newline, unknown action, `_type`, missing source, bad gzip: whole request 400.
        for bad in [
            &b"{\"create\":{\"_index\":\"a\"}}\n{}"[..],
            b"{\"upsert\":{\"_index\":\"a\"}}\n{}\n",
            b"{\"index\":{\"_index\":\"a\",\"_type\":\"doc\"}}\n{}\n",
            b"{\"index\":{\"_index\":\"a\"}}\n",
            b"{\"index\":{}}\n{}\n",
        ] {
            assert_eq!(server.post_bulk(bad).unwrap().0, 400);
        }
        let (status, _) = post(&server, "/_bulk", &[("Content-Encoding", "gzip")], b"xx\n");
        assert_eq!(status, 400);
        // A source that is not an object is an item error.
        let (_, answer) = server
            .post_bulk(b"{\"index\":{\"_index\":\"a\"}}\n[1]\n")
            .unwrap();
        assert_eq!(
            answer["items"][0]["index"]["error"]["type"],
            "mapper_parsing_exception"
        );
    }

    #[test]
    fn injected_faults_and_recovery() {
        let server = BulkServer::start().unwrap();
        server.fail_next_requests(2, 429);
        let body = b"{\"create\":{\"_index\":\"a\",\"_id\":\"1\"}}\n{\"n\":1}\n\
{\"create\":{\"_index\":\"a\",\"_id\":\"2\"}}\n{\"n\":2}\n\
{\"create\":{\"_index\":\"a\",\"_id\":\"3\"}}\n{\"n\":3}\n";
        assert_eq!(server.post_bulk(body).unwrap().0, 429);
        assert_eq!(server.post_bulk(body).unwrap().0, 429);
        assert_eq!(server.items_received(), 0);
        server.fail_next_items(1, ItemFault::TooManyRequests);
        server.fail_items_where(|_, doc| (doc["n"] == 3).then_some(ItemFault::MapperParsing));
        let (status, answer) = server.post_bulk(body).unwrap();
        assert_eq!(status, 200);
        assert_eq!(answer["items"][0]["create"]["status"], 429);
        assert_eq!(answer["items"][1]["create"]["status"], 201);
        assert_eq!(answer["items"][2]["create"]["status"], 400);
        assert_eq!(
            answer["items"][2]["create"]["error"]["type"],
            "mapper_parsing_exception"
        );
        server.clear_faults();
        let (_, answer) = server.post_bulk(body).unwrap();
        assert_eq!(answer["items"][0]["create"]["status"], 201);
        assert_eq!(answer["items"][1]["create"]["status"], 409);
        assert_eq!(server.count("a"), 3);
        assert_eq!(server.items_received(), 6);
        assert_eq!(server.bulk_request_count(), 4);
        server.set_delay(Duration::from_millis(200));
        let started = Instant::now();
        server.post_bulk(body).unwrap();
        assert!(started.elapsed() >= Duration::from_millis(200));
    }

    #[test]
    fn authentication_and_other_endpoints() {
        let server = BulkServer::builder()
            .basic_auth("elastic", "secret")
            .api_key("a2V5OnZhbHVl")
            .start()
            .unwrap();
        let body = b"{\"index\":{\"_index\":\"a\",\"_id\":\"1\"}}\n{}\n";
        assert_eq!(post(&server, "/_bulk", &[], body).0, 401);
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("elastic:secret")
        );
        assert_eq!(
            post(&server, "/_bulk", &[("Authorization", &basic)], body).0,
            200
        );
        let wrong = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("elastic:nope")
        );
        assert_eq!(
            post(&server, "/_bulk", &[("Authorization", &wrong)], body).0,
            401
        );
        assert_eq!(
            post(
                &server,
                "/_bulk",
                &[("Authorization", "ApiKey a2V5OnZhbHVl")],
                body
            )
            .0,
            200
        );
        let auth = [("Authorization", "ApiKey a2V5OnZhbHVl")];
        let info = crate::http::request(
            server.port(),
            "GET",
            "/",
            &auth,
            b"",
            Duration::from_secs(10),
        )
        .unwrap();
        let info: Value = serde_json::from_slice(&info.body).unwrap();
        assert!(
            info["version"]["number"]
                .as_str()
                .unwrap()
                .starts_with("8.")
        );
        let count = post(&server, "/a/_count", &auth, b"");
        assert_eq!(count, (200, json!({"count": 1})));
        let doc = crate::http::request(
            server.port(),
            "GET",
            "/a/_doc/1",
            &auth,
            b"",
            Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!(doc.status, 200);
        assert_eq!(server.request_count(), 7);
    }

    /// One HTTP/1.1 request over TLS to `server`, trusting the CA `ca` (a fixture name).
    async fn https_request(server: &BulkServer, ca: &str, body: &str) -> std::io::Result<String> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_file(crate::tls_fixture(ca)).unwrap())
            .unwrap();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", server.port())).await?;
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
        let mut stream = tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await?;
        let request = format!(
            "POST /_bulk HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\
             Content-Type: application/x-ndjson\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await?;
        Ok(answer)
    }

    #[tokio::test]
    async fn tls_serves_https_and_records_failed_handshakes() {
        let server = BulkServer::builder()
            .tls(
                crate::tls_fixture("server.pem"),
                crate::tls_fixture("server.key"),
            )
            .start()
            .unwrap();
        assert!(server.is_tls());
        assert_eq!(server.url(), format!("https://127.0.0.1:{}", server.port()));
        let body = "{\"create\":{\"_index\":\"t\",\"_id\":\"1\"}}\n{\"over\":\"tls\"}\n";
        let answer = https_request(&server, "ca.pem", body).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert_eq!(server.document("t", "1").unwrap(), json!({"over": "tls"}));
        assert!(server.tls_handshake_failures().is_empty());
        // A client trusting another CA refuses the certificate: the server sees its alert.
        let refused = https_request(&server, "other-ca.pem", body)
            .await
            .unwrap_err();
        assert!(refused.to_string().contains("UnknownIssuer"), "{refused}");
        assert!(crate::wait_until(
            Instant::now() + Duration::from_secs(10),
            || server.tls_handshake_failures().len() == 1
        ));
        let failure = &server.tls_handshake_failures()[0];
        assert!(failure.contains("UnknownCA"), "{failure}");
        // Plain HTTP is not served: no request is recorded, the handshake fails.
        let plain = post_plain(&server);
        assert!(plain.is_err() || plain.is_ok_and(|status| status != 200));
        assert!(crate::wait_until(
            Instant::now() + Duration::from_secs(10),
            || server.tls_handshake_failures().len() == 2
        ));
        assert_eq!(server.request_count(), 1);
        assert_eq!(server.count("t"), 1);
        assert!(server.post_bulk(body.as_bytes()).is_err());
    }

    fn post_plain(server: &BulkServer) -> std::io::Result<u16> {
        crate::http::request(
            server.port(),
            "POST",
            "/_bulk",
            &[],
            b"{\"index\":{\"_index\":\"t\"}}\n{}\n",
            Duration::from_secs(10),
        )
        .map(|r| r.status)
    }

    #[test]
    fn tls_files_that_cannot_be_used_are_named() {
        let missing = crate::tls_fixture("missing.pem");
        let err = BulkServer::builder()
            .tls(&missing, crate::tls_fixture("server.key"))
            .start()
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing.pem"), "{err}");
        // A key where the certificate should be, and a certificate where the key should be.
        let err = BulkServer::builder()
            .tls(
                crate::tls_fixture("server.key"),
                crate::tls_fixture("server.key"),
            )
            .start()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("server.key") && err.contains("no PEM certificate"),
            "{err}"
        );
        let err = BulkServer::builder()
            .tls(
                crate::tls_fixture("server.pem"),
                crate::tls_fixture("server.pem"),
            )
            .start()
            .unwrap_err()
            .to_string();
        assert!(err.contains("server.pem"), "{err}");
    }
}
