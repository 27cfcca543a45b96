//! A synthetic S3 listing server: the ListObjectsV2 protocol over HTTP/1.1 on a free loopback
//! port, for a virtual bucket of any number of generated keys. Nothing is stored: each key,
//! its LastModified, size and ETag are computed from the key's index, and a page is found by
//! binary search over the indices, so a million-object bucket costs no memory. It exists to
//! test listings at a scale `moto_server` cannot hold, and (with
//! [`ListingServerBuilder::object_body`], every object having that one body) to measure whole
//! backfills of many objects from an S3 server that is never the bottleneck.
//!
//! The virtual bucket (see [`ListingServer::key`] and [`ListingServer::last_modified`]):
//! object `i` (from 0) has the key `{prefix}YYYY/MM/DD/obj-{i:010}.json.gz`, where the date
//! is 2024-01-01 plus `i / objects_per_day` days, and was last modified at that day's
//! midnight plus `(i % objects_per_day) * (86_400_000 / objects_per_day)` milliseconds, so
//! keys and modification times both increase with the index. Keys are in UTF-8 byte order
//! (S3's order) when sorted by index.
//!
//! What it implements (path-style addressing only):
//! - `GET /{bucket}?list-type=2` with `prefix`, `start-after`, `continuation-token` and
//!   `max-keys` (default and maximum 1000): a `ListBucketResult` with `Name`, `Prefix`,
//!   `ContinuationToken` and `StartAfter` (echoed when sent), `NextContinuationToken` (whenever
//!   the result is truncated, as S3 does), `KeyCount`, `MaxKeys`, `IsTruncated` and
//!   `Contents` (`Key`, `LastModified` as `2024-01-01T00:00:08.640Z`, quoted `ETag`, `Size`,
//!   `StorageClass` `STANDARD`). A continuation token takes precedence over `start-after`.
//!   Request signatures are not checked.
//! - Only when the builder was given an [`object_body`](ListingServerBuilder::object_body):
//!   `GET /{bucket}/{key}` (GetObject) and `HEAD /{bucket}/{key}` (HeadObject) of a key of the
//!   bucket, answered `200` with that body (none for HEAD), `Content-Length` (the body's
//!   length, which is then every object's `Size` in the listing too), the object's quoted
//!   `ETag` and its `Last-Modified` (the listing's, to the second, as an HTTP date),
//!   `Content-Type: binary/octet-stream` and `Accept-Ranges: bytes`; `NoSuchKey` (404) for a
//!   key the bucket does not hold. The SDK's `x-id` query parameter is accepted; any other
//!   (`versionId`, `partNumber`, `response-*`...), a `Range` and conditional (`If-*`) headers
//!   are not implemented.
//! - Errors as S3 XML error documents (without a body for HEAD, as S3 does): `NoSuchBucket`
//!   (404) for another bucket, `NoSuchKey` (404), `InvalidArgument` (400) for a bad
//!   `max-keys` or continuation token, `MethodNotAllowed` (405), and `NotImplemented` (501)
//!   for everything else (ListObjects v1, `delimiter`, `encoding-type`, `fetch-owner=true`,
//!   object requests without an object body, ranges): unsupported requests fail loudly.
//!
//! [`ListingServerBuilder::page_limit`] makes truncated pages shorter than `max-keys`, which
//! S3's documentation allows ("the response might contain fewer keys but will never contain
//! more"), and [`ListingServerBuilder::empty_pages_every`] answers some truncated pages with
//! no keys at all (S3 can, for a prefix full of delete markers). [`ListingServer::stats`] counts requests, pages, keys and objects served and keeps
//! the largest `start-after` received: all of it flat, whatever the number of requests.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, MutexGuard};

use base64::Engine;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use logferry_core::Timestamp;

use crate::TestkitError;
use crate::http::Background;

/// Keys per page at most, whatever `max-keys` asks (S3's limit).
pub const S3_MAX_KEYS: usize = 1000;

/// Objects per day of the virtual bucket unless [`ListingServerBuilder::objects_per_day`] says
/// otherwise (one every 8.64 seconds).
pub const DEFAULT_OBJECTS_PER_DAY: u64 = 10_000;

/// Most objects a virtual bucket holds (the index has ten digits in the key).
pub const MAX_OBJECTS: u64 = 10_000_000_000;

/// 2024-01-01T00:00:00Z, the first day of the virtual bucket, in milliseconds.
const FIRST_DAY_MS: i64 = 1_704_067_200_000;

const DAY_MS: u64 = 86_400_000;

/// What a continuation token of this server holds before base64: this prefix and an index.
const TOKEN_PREFIX: &str = "logferry-listing:";

/// The virtual bucket: keys and metadata computed from an index.
#[derive(Clone, Debug)]
struct VirtualBucket {
    name: String,
    prefix: String,
    objects: u64,
    per_day: u64,
    /// Every object's size when they all have one body (see [`ListingServerBuilder::object_body`]).
    body_size: Option<u64>,
}

impl VirtualBucket {
    /// Appends the key of object `i` to `out`.
    fn write_key(&self, i: u64, out: &mut String) {
        let (year, month, day, ..) = self.day_start(i).civil();
        let _ = write!(
            out,
            "{}{year:04}/{month:02}/{day:02}/obj-{i:010}.json.gz",
            self.prefix
        );
    }

    fn key(&self, i: u64) -> String {
        let mut key = String::with_capacity(self.prefix.len() + 32);
        self.write_key(i, &mut key);
        key
    }

    fn day_start(&self, i: u64) -> Timestamp {
        let days = (i / self.per_day) as i64;
        Timestamp::from_unix_millis(FIRST_DAY_MS + days * DAY_MS as i64)
            .unwrap_or(Timestamp::UNIX_EPOCH)
    }

    fn last_modified(&self, i: u64) -> Timestamp {
        let within = (i % self.per_day) * (DAY_MS / self.per_day);
        let ms = self.day_start(i).unix_millis() + within as i64;
        Timestamp::from_unix_millis(ms).unwrap_or(Timestamp::UNIX_EPOCH)
    }

    fn size(&self, i: u64) -> u64 {
        self.body_size.unwrap_or_else(|| object_size(i))
    }

    /// The index of `key`, if it is a key of this bucket.
    fn index_of(&self, key: &str) -> Option<u64> {
        let rest = key.strip_prefix(self.prefix.as_str())?;
        let digits = rest.strip_suffix(".json.gz")?.rsplit("/obj-").next()?;
        let i: u64 = digits.parse().ok()?;
        (i < self.objects && self.key(i) == key).then_some(i)
    }

    /// The first index whose key is not "before" (`before(key)` is monotonic: true, then false).
    fn partition_point(&self, mut before: impl FnMut(&str) -> bool) -> u64 {
        let (mut low, mut high) = (0, self.objects);
        let mut key = String::new();
        while low < high {
            let mid = low + (high - low) / 2;
            key.clear();
            self.write_key(mid, &mut key);
            if before(&key) {
                low = mid + 1;
            } else {
                high = mid;
            }
        }
        low
    }
}

/// 64 well-mixed bits from `x` (SplitMix64's finaliser).
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn object_size(i: u64) -> u64 {
    512 + mix(i) % (1 << 20)
}

fn object_etag(i: u64) -> String {
    format!("{:016x}{:016x}", mix(i), mix(!i))
}

/// What the server has served, for assertions. Every field is a counter or a single value:
/// it does not grow with the number of requests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListingStats {
    /// HTTP requests received (answered with a listing or an error).
    pub requests: u64,
    /// ListObjectsV2 pages answered.
    pub pages: u64,
    /// Requests answered with an error document.
    pub errors: u64,
    /// Pages requested with a `continuation-token`.
    pub continuation_requests: u64,
    /// Keys returned over every page.
    pub keys_returned: u64,
    /// Most keys returned in one page.
    pub largest_page: usize,
    /// The greatest `start-after` received (in byte order), if any was.
    pub largest_start_after: Option<String>,
    /// GetObject requests answered with an object (a missing key counts in `errors`).
    pub get_objects: u64,
    /// HeadObject requests answered with an object's metadata.
    pub head_objects: u64,
    /// Object body bytes sent by GetObject.
    pub body_bytes: u64,
}

struct Shared {
    bucket: VirtualBucket,
    body: Option<Bytes>,
    page_limit: usize,
    /// Every `empty_every`-th page (0: none) is empty and truncated.
    empty_every: u64,
    stats: Mutex<ListingStats>,
}

impl Shared {
    fn stats(&self) -> MutexGuard<'_, ListingStats> {
        self.stats.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Configures a [`ListingServer`] before it starts.
#[derive(Clone, Debug)]
pub struct ListingServerBuilder {
    bucket: String,
    prefix: String,
    objects: u64,
    per_day: u64,
    page_limit: usize,
    empty_every: u64,
    body: Option<Bytes>,
}

impl Default for ListingServerBuilder {
    fn default() -> ListingServerBuilder {
        ListingServerBuilder {
            bucket: "logs".to_string(),
            prefix: "logs/".to_string(),
            objects: 0,
            per_day: DEFAULT_OBJECTS_PER_DAY,
            page_limit: S3_MAX_KEYS,
            empty_every: 0,
            body: None,
        }
    }
}

impl ListingServerBuilder {
    /// The bucket's name (default `logs`).
    pub fn bucket(mut self, name: &str) -> ListingServerBuilder {
        self.bucket = name.to_string();
        self
    }

    /// What every key starts with (default `logs/`).
    pub fn prefix(mut self, prefix: &str) -> ListingServerBuilder {
        self.prefix = prefix.to_string();
        self
    }

    /// Number of objects, at most [`MAX_OBJECTS`] (default 0).
    pub fn objects(mut self, objects: u64) -> ListingServerBuilder {
        self.objects = objects;
        self
    }

    /// Objects per day of keys and modification times (default [`DEFAULT_OBJECTS_PER_DAY`];
    /// from 1 to 86,400,000).
    pub fn objects_per_day(mut self, per_day: u64) -> ListingServerBuilder {
        self.per_day = per_day;
        self
    }

    /// Most keys in one page (default and at most [`S3_MAX_KEYS`]): a lower limit answers
    /// truncated pages shorter than the `max-keys` asked for.
    pub fn page_limit(mut self, limit: usize) -> ListingServerBuilder {
        self.page_limit = limit.clamp(1, S3_MAX_KEYS);
        self
    }

    /// Answers every `n`-th ListObjectsV2 page (counting every page served) with no keys,
    /// `IsTruncated` true and a continuation token that resumes where the page would have
    /// started, as S3 can (a prefix full of delete markers): a lister that stops at an empty
    /// page, or that can go on only by `start-after` its last key, ends early. 0 (the
    /// default): never.
    pub fn empty_pages_every(mut self, n: u64) -> ListingServerBuilder {
        self.empty_every = n;
        self
    }

    /// Serves GetObject and HeadObject, every object having this body: its length becomes
    /// every object's `Size` in the listing too. Without it, objects have sizes from 512 B to
    /// 1 MiB computed from their index, and object requests are answered `NotImplemented`.
    pub fn object_body(mut self, body: impl Into<Bytes>) -> ListingServerBuilder {
        self.body = Some(body.into());
        self
    }

    /// Binds a free loopback port and starts serving on a thread of its own.
    pub fn start(self) -> Result<ListingServer, TestkitError> {
        let invalid = |message: &str| TestkitError::Io {
            context: "configuring the listing server".to_string(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, message.to_string()),
        };
        if self.objects > MAX_OBJECTS {
            return Err(invalid("more objects than MAX_OBJECTS"));
        }
        if !(1..=DAY_MS).contains(&self.per_day) {
            return Err(invalid("objects per day must be from 1 to 86,400,000"));
        }
        if self.objects / self.per_day > 2_000_000 {
            return Err(invalid("the keys' dates would pass the year 9999"));
        }
        let shared = Arc::new(Shared {
            bucket: VirtualBucket {
                name: self.bucket,
                prefix: self.prefix,
                objects: self.objects,
                per_day: self.per_day,
                body_size: self.body.as_ref().map(|b| b.len() as u64),
            },
            body: self.body,
            page_limit: self.page_limit,
            empty_every: self.empty_every,
            stats: Mutex::new(ListingStats::default()),
        });
        let serving = Arc::clone(&shared);
        let server = Background::start("listing", move |listener| accept_loop(listener, serving))?;
        Ok(ListingServer { server, shared })
    }
}

/// The synthetic S3 listing server, stopped on drop.
///
/// ```
/// use logferry_testkit::ListingServer;
///
/// let server = ListingServer::builder().bucket("b").objects(1_000_000).start().unwrap();
/// assert_eq!(server.key(0), "logs/2024/01/01/obj-0000000000.json.gz");
/// assert_eq!(server.key(999_999), "logs/2024/04/09/obj-0000999999.json.gz");
/// assert_eq!(server.last_modified(1).to_string(), "2024-01-01T00:00:08.640Z");
/// assert_eq!(server.index_of("logs/2024/04/09/obj-0000999999.json.gz"), Some(999_999));
/// // An S3 client with `endpoint_url(server.endpoint())` and path-style addressing lists it.
/// assert!(server.endpoint().starts_with("http://127.0.0.1:"));
/// ```
pub struct ListingServer {
    server: Background,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for ListingServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ListingServer")
            .field("addr", &self.server.addr())
            .field("bucket", &self.shared.bucket)
            .field(
                "object_body_len",
                &self.shared.body.as_ref().map(Bytes::len),
            )
            .finish_non_exhaustive()
    }
}

impl ListingServer {
    /// A builder (bucket `logs`, prefix `logs/`, no objects, 1000 keys per page, no object
    /// body).
    pub fn builder() -> ListingServerBuilder {
        ListingServerBuilder::default()
    }

    /// `http://127.0.0.1:PORT`, the S3 endpoint URL to give a path-style client.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.server.addr())
    }

    /// The loopback port.
    pub fn port(&self) -> u16 {
        self.server.addr().port()
    }

    /// The bucket's name.
    pub fn bucket(&self) -> &str {
        &self.shared.bucket.name
    }

    /// What every key starts with.
    pub fn prefix(&self) -> &str {
        &self.shared.bucket.prefix
    }

    /// Number of objects in the bucket.
    pub fn objects(&self) -> u64 {
        self.shared.bucket.objects
    }

    /// The key of object `i` (any `i`, even past the last object).
    pub fn key(&self, i: u64) -> String {
        self.shared.bucket.key(i)
    }

    /// The LastModified of object `i` (millisecond precision).
    pub fn last_modified(&self, i: u64) -> Timestamp {
        self.shared.bucket.last_modified(i)
    }

    /// The Size of object `i` (the object body's length, if the builder was given one).
    pub fn size(&self, i: u64) -> u64 {
        self.shared.bucket.size(i)
    }

    /// The body of every object, if the builder was given one.
    pub fn object_body(&self) -> Option<&Bytes> {
        self.shared.body.as_ref()
    }

    /// The ETag of object `i`, without its quotes.
    pub fn etag(&self, i: u64) -> String {
        object_etag(i)
    }

    /// The index of the object with this key, if the bucket holds it.
    pub fn index_of(&self, key: &str) -> Option<u64> {
        self.shared.bucket.index_of(key)
    }

    /// What the server has served so far.
    pub fn stats(&self) -> ListingStats {
        self.shared.stats().clone()
    }

    /// Sets every counter back to zero.
    pub fn reset_stats(&self) {
        *self.shared.stats() = ListingStats::default();
    }
}

async fn accept_loop(listener: tokio::net::TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let shared = Arc::clone(&shared);
                async move { Ok::<_, Infallible>(handle(&shared, &request)) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// An S3 error: status, code and message.
struct S3Error(u16, &'static str, String);

fn not_implemented(what: &str) -> S3Error {
    S3Error(
        501,
        "NotImplemented",
        format!("{what} is not implemented by the test listing server"),
    )
}

/// What a request is answered with.
enum Reply {
    /// A ListObjectsV2 page.
    Listing(String),
    /// Object `index`: its metadata, and its body unless `head`.
    Object { index: u64, head: bool },
}

fn handle(shared: &Shared, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    use hyper::header::HeaderValue;

    let request_number = {
        let mut stats = shared.stats();
        stats.requests += 1;
        stats.requests
    };
    let request_id = format!("{:016X}", mix(request_number));
    let mut response = match route(shared, request) {
        Ok(Reply::Listing(body)) => xml_response(200, body),
        Ok(Reply::Object { index, head }) => object_response(shared, index, head),
        Err(S3Error(status, code, message)) => {
            shared.stats().errors += 1;
            let mut body = String::new();
            // S3 answers a failed HEAD with the status alone.
            if request.method() != Method::HEAD {
                body.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error>");
                push_element(&mut body, "Code", code);
                push_element(&mut body, "Message", &message);
                push_element(&mut body, "RequestId", &request_id);
                body.push_str("</Error>");
            }
            xml_response(status, body)
        }
    };
    if let Ok(id) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-amz-request-id", id);
    }
    response
}

fn xml_response(status: u16, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/xml"),
    );
    response
}

/// Object `index` of a bucket with an object body: the body (none for HEAD) and its headers.
fn object_response(shared: &Shared, index: u64, head: bool) -> Response<Full<Bytes>> {
    use hyper::header::{self, HeaderValue};

    let body = shared.body.clone().unwrap_or_default();
    let length = body.len();
    {
        let mut stats = shared.stats();
        if head {
            stats.head_objects += 1;
        } else {
            stats.get_objects += 1;
            stats.body_bytes += length as u64;
        }
    }
    let mut response = Response::new(Full::new(if head { Bytes::new() } else { body }));
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("binary/octet-stream"),
    );
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{}\"", object_etag(index))) {
        headers.insert(header::ETAG, etag);
    }
    if let Ok(date) = HeaderValue::from_str(&http_date(shared.bucket.last_modified(index))) {
        headers.insert(header::LAST_MODIFIED, date);
    }
    response
}

/// `Mon, 01 Jan 2024 00:00:08 GMT` (RFC 9110's IMF-fixdate; the fraction of a second dropped).
fn http_date(time: Timestamp) -> String {
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (y, mo, d, h, mi, s) = time.civil();
    // 1970-01-01 was a Thursday.
    let weekday = time.unix_millis().div_euclid(DAY_MS as i64).rem_euclid(7) as usize;
    let month = MONTHS[(mo as usize).clamp(1, 12) - 1];
    format!(
        "{}, {d:02} {month} {y:04} {h:02}:{mi:02}:{s:02} GMT",
        WEEKDAYS[weekday]
    )
}

/// The query parameters a listing uses (percent-decoded).
#[derive(Default)]
struct ListQuery {
    list_type: Option<String>,
    prefix: Option<String>,
    start_after: Option<String>,
    continuation_token: Option<String>,
    max_keys: Option<String>,
    unsupported: Option<&'static str>,
}

fn parse_query(query: &str) -> Result<ListQuery, S3Error> {
    let mut parsed = ListQuery::default();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_decode(value, true).ok_or_else(|| {
            S3Error(
                400,
                "InvalidArgument",
                format!("query parameter `{name}` is not valid percent-encoded UTF-8"),
            )
        })?;
        match name {
            "list-type" => parsed.list_type = Some(value),
            "prefix" => parsed.prefix = Some(value),
            "start-after" => parsed.start_after = Some(value),
            "continuation-token" => parsed.continuation_token = Some(value),
            "max-keys" => parsed.max_keys = Some(value),
            "delimiter" if !value.is_empty() => parsed.unsupported = Some("delimiter"),
            "encoding-type" => parsed.unsupported = Some("encoding-type"),
            "fetch-owner" if value == "true" => parsed.unsupported = Some("fetch-owner"),
            _ => {}
        }
    }
    Ok(parsed)
}

fn route(shared: &Shared, request: &Request<Incoming>) -> Result<Reply, S3Error> {
    let bucket = &shared.bucket;
    let path = percent_decode(request.uri().path(), false).unwrap_or_default();
    let (name, rest) = path
        .trim_start_matches('/')
        .split_once('/')
        .unwrap_or((path.trim_start_matches('/'), ""));
    if name.is_empty() {
        return Err(not_implemented("ListBuckets"));
    }
    let head = request.method() == Method::HEAD;
    // HEAD of an object is HeadObject; HEAD of the bucket (HeadBucket) is not served.
    let allowed = request.method() == Method::GET || (head && !rest.is_empty());
    if !allowed {
        return Err(S3Error(
            405,
            "MethodNotAllowed",
            format!("{} is not allowed here", request.method()),
        ));
    }
    if name != bucket.name {
        return Err(S3Error(
            404,
            "NoSuchBucket",
            "The specified bucket does not exist".to_string(),
        ));
    }
    if !rest.is_empty() {
        let index = object_index(shared, request, rest)?;
        return Ok(Reply::Object { index, head });
    }
    list(shared, request).map(Reply::Listing)
}

/// The index of the object a GetObject or HeadObject request asks for.
fn object_index(shared: &Shared, request: &Request<Incoming>, key: &str) -> Result<u64, S3Error> {
    if shared.body.is_none() {
        return Err(not_implemented(
            "GetObject or HeadObject without an object body",
        ));
    }
    let query = request.uri().query().unwrap_or("");
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let name = pair.split_once('=').map_or(pair, |(name, _)| name);
        if name != "x-id" {
            return Err(not_implemented(&format!(
                "the `{name}` parameter of an object request"
            )));
        }
    }
    for header in [
        "range",
        "if-match",
        "if-none-match",
        "if-modified-since",
        "if-unmodified-since",
    ] {
        if request.headers().contains_key(header) {
            return Err(not_implemented(&format!(
                "the `{header}` header of an object request"
            )));
        }
    }
    shared.bucket.index_of(key).ok_or_else(|| {
        S3Error(
            404,
            "NoSuchKey",
            "The specified key does not exist.".to_string(),
        )
    })
}

/// A ListObjectsV2 page of the bucket.
fn list(shared: &Shared, request: &Request<Incoming>) -> Result<String, S3Error> {
    let bucket = &shared.bucket;
    let query = parse_query(request.uri().query().unwrap_or(""))?;
    if query.list_type.as_deref() != Some("2") {
        return Err(not_implemented("ListObjects (version 1)"));
    }
    if let Some(parameter) = query.unsupported {
        return Err(not_implemented(&format!("the `{parameter}` parameter")));
    }
    let max_keys = match &query.max_keys {
        None => S3_MAX_KEYS,
        Some(text) => match text.parse::<i64>() {
            Ok(n) if n >= 0 => usize::try_from(n).unwrap_or(usize::MAX).min(S3_MAX_KEYS),
            _ => {
                return Err(S3Error(
                    400,
                    "InvalidArgument",
                    "Provided max-keys not an integer or within integer range".to_string(),
                ));
            }
        },
    };
    let prefix = query.prefix.as_deref().unwrap_or("");
    let from_token = match &query.continuation_token {
        Some(token) => Some(decode_token(token, bucket.objects).ok_or_else(|| {
            S3Error(
                400,
                "InvalidArgument",
                "The continuation token provided is incorrect".to_string(),
            )
        })?),
        None => None,
    };
    let first_in_prefix = bucket.partition_point(|key| key < prefix);
    let start = match (from_token, &query.start_after) {
        (Some(index), _) => index.max(first_in_prefix),
        (None, Some(after)) => {
            first_in_prefix.max(bucket.partition_point(|key| key <= after.as_str()))
        }
        (None, None) => first_in_prefix,
    };
    let mut take = max_keys.min(shared.page_limit);
    if shared.empty_every > 0 && (shared.stats().pages + 1).is_multiple_of(shared.empty_every) {
        take = 0;
    }

    let mut contents = String::with_capacity(take * 256);
    let mut key = String::new();
    let mut index = start;
    let mut count = 0;
    let matches = |i: u64, key: &mut String| {
        key.clear();
        bucket.write_key(i, key);
        i < bucket.objects && key.starts_with(prefix)
    };
    while count < take && matches(index, &mut key) {
        contents.push_str("<Contents>");
        push_element(&mut contents, "Key", &key);
        let modified = bucket.last_modified(index);
        let (y, mo, d, h, mi, s) = modified.civil();
        let millis = modified.subsec_nanos() / 1_000_000;
        let _ = write!(
            contents,
            "<LastModified>{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{millis:03}Z</LastModified>\
             <ETag>&quot;{}&quot;</ETag><Size>{}</Size><StorageClass>STANDARD</StorageClass>\
             </Contents>",
            object_etag(index),
            bucket.size(index),
        );
        count += 1;
        index += 1;
    }
    let truncated = matches(index, &mut key);

    let mut body = String::with_capacity(contents.len() + 512);
    body.push_str(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">",
    );
    push_element(&mut body, "Name", &bucket.name);
    push_element(&mut body, "Prefix", prefix);
    if let Some(token) = &query.continuation_token {
        push_element(&mut body, "ContinuationToken", token);
    }
    if truncated {
        push_element(&mut body, "NextContinuationToken", &encode_token(index));
    }
    let _ = write!(
        body,
        "<KeyCount>{count}</KeyCount><MaxKeys>{max_keys}</MaxKeys>"
    );
    if let Some(after) = &query.start_after {
        push_element(&mut body, "StartAfter", after);
    }
    let _ = write!(body, "<IsTruncated>{truncated}</IsTruncated>");
    body.push_str(&contents);
    body.push_str("</ListBucketResult>");

    let mut stats = shared.stats();
    stats.pages += 1;
    stats.keys_returned += count as u64;
    stats.largest_page = stats.largest_page.max(count);
    if query.continuation_token.is_some() {
        stats.continuation_requests += 1;
    }
    if let Some(after) = query.start_after
        && stats
            .largest_start_after
            .as_ref()
            .is_none_or(|l| *l < after)
    {
        stats.largest_start_after = Some(after);
    }
    Ok(body)
}

fn encode_token(index: u64) -> String {
    base64::engine::general_purpose::STANDARD.encode(format!("{TOKEN_PREFIX}{index}"))
}

fn decode_token(token: &str, objects: u64) -> Option<u64> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(token)
        .ok()?;
    let index: u64 = std::str::from_utf8(&raw)
        .ok()?
        .strip_prefix(TOKEN_PREFIX)?
        .parse()
        .ok()?;
    (index <= objects).then_some(index)
}

/// Appends `<name>text</name>` with the text XML-escaped.
fn push_element(out: &mut String, name: &str, text: &str) {
    let _ = write!(out, "<{name}>");
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    let _ = write!(out, "</{name}>");
}

/// Decodes `%XX` escapes (and `+` as a space in a query, not in a path); `None` for a bad
/// escape or non-UTF-8 bytes.
fn percent_decode(text: &str, plus_is_space: bool) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                if !hex.iter().all(u8::is_ascii_hexdigit) {
                    return None;
                }
                let hex = std::str::from_utf8(hex).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            byte => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use aws_sdk_s3::error::ProvideErrorMetadata;

    use super::*;
    use crate::http::{form_encode, request};

    fn client(server: &ListingServer) -> aws_sdk_s3::Client {
        crate::s3::s3_client_at(server.endpoint(), "k", "s")
    }

    fn get(server: &ListingServer, path_and_query: &str) -> (u16, String) {
        let response = request(
            server.port(),
            "GET",
            path_and_query,
            &[],
            b"",
            Duration::from_secs(10),
        )
        .unwrap();
        (response.status, response.text())
    }

    #[test]
    fn keys_are_sorted_and_computed_from_the_index() {
        let bucket = VirtualBucket {
            name: "b".into(),
            prefix: "p/".into(),
            objects: 100,
            per_day: 7,
            body_size: None,
        };
        for i in 0..100 {
            assert!(bucket.key(i) < bucket.key(i + 1));
            assert!(bucket.last_modified(i) < bucket.last_modified(i + 1));
            assert_eq!(bucket.index_of(&bucket.key(i)), Some(i));
        }
        assert_eq!(bucket.key(7), "p/2024/01/02/obj-0000000007.json.gz");
        assert_eq!(bucket.index_of(&bucket.key(100)), None);
        assert_eq!(bucket.index_of("p/2024/01/01/obj-0000000008.json.gz"), None);
        assert_eq!(bucket.partition_point(|k| k < "p/2024/01/02/"), 7);
        assert_eq!(bucket.partition_point(|k| k <= "z"), 100);
        assert_eq!(
            percent_decode("a%2Fb+c%C3%A9", true).as_deref(),
            Some("a/b cé")
        );
        assert_eq!(percent_decode("a+b", false).as_deref(), Some("a+b"));
        assert_eq!(percent_decode("%zz", true), None);
        assert_eq!(percent_decode("%+1", true), None);
        assert_eq!(decode_token(&encode_token(42), 100), Some(42));
        assert_eq!(decode_token(&encode_token(101), 100), None);
        assert_eq!(decode_token("bm90IGEgdG9rZW4=", 100), None);
    }

    #[tokio::test]
    async fn the_sdk_lists_with_tokens_start_after_and_prefixes() {
        let server = ListingServer::builder()
            .bucket("bkt")
            .objects(2500)
            .objects_per_day(1000)
            .start()
            .unwrap();
        let s3 = client(&server);
        // Continuation tokens, pages of 1000.
        let mut token = None;
        let mut listed = 0u64;
        let mut pages = 0;
        loop {
            let page = s3
                .list_objects_v2()
                .bucket("bkt")
                .set_continuation_token(token.take())
                .send()
                .await
                .unwrap();
            pages += 1;
            assert_eq!(page.name(), Some("bkt"));
            assert_eq!(page.max_keys(), Some(1000));
            assert_eq!(page.key_count(), Some(page.contents().len() as i32));
            for object in page.contents() {
                assert_eq!(object.key(), Some(server.key(listed).as_str()));
                let modified = object.last_modified().unwrap();
                assert_eq!(
                    modified.to_millis().unwrap(),
                    server.last_modified(listed).unix_millis()
                );
                assert_eq!(object.size(), Some(server.size(listed) as i64));
                let etag = format!("\"{}\"", server.etag(listed));
                assert_eq!(object.e_tag(), Some(etag.as_str()));
                assert_eq!(object.storage_class().map(|c| c.as_str()), Some("STANDARD"));
                listed += 1;
            }
            match page.next_continuation_token() {
                Some(next) => {
                    assert_eq!(page.is_truncated(), Some(true));
                    token = Some(next.to_string());
                }
                None => {
                    assert_eq!(page.is_truncated(), Some(false));
                    break;
                }
            }
        }
        assert_eq!((listed, pages), (2500, 3));
        let stats = server.stats();
        assert_eq!(
            (stats.pages, stats.keys_returned, stats.largest_page),
            (3, 2500, 1000)
        );
        assert_eq!(stats.continuation_requests, 2);
        assert_eq!(stats.errors, 0);

        // start-after (any string, not only a key) with a prefix of one day.
        let page = s3
            .list_objects_v2()
            .bucket("bkt")
            .prefix("logs/2024/01/02/")
            .start_after("logs/2024/01/02/obj-0000001500")
            .max_keys(300)
            .send()
            .await
            .unwrap();
        assert_eq!(page.start_after(), Some("logs/2024/01/02/obj-0000001500"));
        assert_eq!(page.prefix(), Some("logs/2024/01/02/"));
        let keys: Vec<&str> = page.contents().iter().filter_map(|o| o.key()).collect();
        assert_eq!(keys.len(), 300);
        assert_eq!(keys[0], server.key(1500));
        assert_eq!(page.is_truncated(), Some(true));
        // The token of a start-after page continues it, within the prefix.
        let rest = s3
            .list_objects_v2()
            .bucket("bkt")
            .prefix("logs/2024/01/02/")
            .continuation_token(page.next_continuation_token().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(rest.contents().len(), 200);
        assert_eq!(rest.contents()[0].key(), Some(server.key(1800).as_str()));
        assert_eq!(rest.is_truncated(), Some(false));
        // Past the end, a prefix matching nothing.
        let end = s3
            .list_objects_v2()
            .bucket("bkt")
            .start_after(server.key(2499))
            .send()
            .await
            .unwrap();
        assert!(end.contents().is_empty());
        assert_eq!(
            (end.key_count(), end.is_truncated()),
            (Some(0), Some(false))
        );
        let none = s3
            .list_objects_v2()
            .bucket("bkt")
            .prefix("other/")
            .send()
            .await
            .unwrap();
        assert!(none.contents().is_empty());
        assert_eq!(server.stats().largest_start_after, Some(server.key(2499)));
        // Another bucket.
        let err = s3
            .list_objects_v2()
            .bucket("nope")
            .send()
            .await
            .unwrap_err();
        assert_eq!(err.code(), Some("NoSuchBucket"));
    }

    #[tokio::test]
    async fn the_sdk_gets_and_heads_objects_of_the_listing() {
        let body = Bytes::from_static(b"\x1f\x8b not really gzip, but every object's body");
        let server = ListingServer::builder()
            .bucket("bkt")
            .prefix("ct/")
            .objects(2500)
            .object_body(body.clone())
            .start()
            .unwrap();
        assert_eq!(server.object_body(), Some(&body));
        let s3 = client(&server);
        let page = s3
            .list_objects_v2()
            .bucket("bkt")
            .max_keys(5)
            .send()
            .await
            .unwrap();
        for object in page.contents() {
            assert_eq!(object.size(), Some(body.len() as i64));
        }
        assert_eq!(server.size(7), body.len() as u64);

        let i = 1234;
        let key = page.contents()[0].key().unwrap().to_string();
        assert_eq!(key, "ct/2024/01/01/obj-0000000000.json.gz");
        for (i, key) in [(0, key), (i, server.key(i))] {
            let object = s3
                .get_object()
                .bucket("bkt")
                .key(&key)
                .send()
                .await
                .unwrap();
            assert_eq!(object.content_length(), Some(body.len() as i64));
            let etag = format!("\"{}\"", server.etag(i));
            assert_eq!(object.e_tag(), Some(etag.as_str()));
            assert_eq!(object.content_type(), Some("binary/octet-stream"));
            assert_eq!(
                object.last_modified().unwrap().secs(),
                server.last_modified(i).unix_millis().div_euclid(1000)
            );
            let got = object.body.collect().await.unwrap().into_bytes();
            assert_eq!(got, body);

            let head = s3
                .head_object()
                .bucket("bkt")
                .key(&key)
                .send()
                .await
                .unwrap();
            assert_eq!(head.content_length(), Some(body.len() as i64));
            assert_eq!(head.e_tag(), Some(etag.as_str()));
        }
        let raw = request(
            server.port(),
            "GET",
            &format!("/bkt/{}", server.key(i)),
            &[],
            b"",
            Duration::from_secs(10),
        )
        .unwrap();
        assert_eq!((raw.status, &raw.body[..]), (200, &body[..]));
        assert_eq!(
            http_date(server.last_modified(i)),
            "Mon, 01 Jan 2024 02:57:41 GMT"
        );
        assert_eq!(
            http_date(Timestamp::from_unix_millis(0).unwrap()),
            "Thu, 01 Jan 1970 00:00:00 GMT"
        );

        // Keys the bucket does not hold.
        for missing in [
            server.key(2500),
            "ct/2024/01/01/obj-0000000001.json".to_string(),
            "other".to_string(),
        ] {
            let err = s3
                .get_object()
                .bucket("bkt")
                .key(&missing)
                .send()
                .await
                .unwrap_err();
            assert_eq!(err.code(), Some("NoSuchKey"), "{missing}");
            assert!(err.into_service_error().is_no_such_key());
            let err = s3
                .head_object()
                .bucket("bkt")
                .key(&missing)
                .send()
                .await
                .unwrap_err();
            assert!(err.into_service_error().is_not_found(), "{missing}");
        }
        let err = s3
            .get_object()
            .bucket("nope")
            .key(server.key(0))
            .send()
            .await
            .unwrap_err();
        assert_eq!(err.code(), Some("NoSuchBucket"));
        // Ranges, versions and conditions are not implemented.
        let err = s3
            .get_object()
            .bucket("bkt")
            .key(server.key(0))
            .range("bytes=0-1")
            .send()
            .await
            .unwrap_err();
        assert_eq!(err.code(), Some("NotImplemented"));
        let err = s3
            .get_object()
            .bucket("bkt")
            .key(server.key(0))
            .version_id("v1")
            .send()
            .await
            .unwrap_err();
        assert_eq!(err.code(), Some("NotImplemented"));

        let stats = server.stats();
        assert_eq!(
            (stats.get_objects, stats.head_objects, stats.pages),
            (3, 2, 1)
        );
        assert_eq!(stats.body_bytes, 3 * body.len() as u64);
        // 3 missing keys twice, a missing bucket, a range and a version.
        assert_eq!(stats.errors, 9);
    }

    #[tokio::test]
    async fn a_page_limit_truncates_pages_below_max_keys() {
        let server = ListingServer::builder()
            .objects(20)
            .page_limit(7)
            .start()
            .unwrap();
        let page = client(&server)
            .list_objects_v2()
            .bucket("logs")
            .max_keys(10)
            .send()
            .await
            .unwrap();
        assert_eq!((page.key_count(), page.max_keys()), (Some(7), Some(10)));
        assert_eq!(page.is_truncated(), Some(true));
    }

    #[tokio::test]
    async fn empty_truncated_pages_carry_a_token_to_go_on() {
        let server = ListingServer::builder()
            .objects(5)
            .empty_pages_every(2)
            .start()
            .unwrap();
        let list = |token: Option<String>| {
            client(&server)
                .list_objects_v2()
                .bucket("logs")
                .max_keys(2)
                .set_continuation_token(token)
                .send()
        };
        let mut keys = Vec::new();
        let mut token = None;
        let mut empty = 0;
        loop {
            let page = list(token.take()).await.unwrap();
            if page.contents().is_empty() && page.is_truncated() == Some(true) {
                empty += 1;
            }
            keys.extend(page.contents().iter().map(|o| o.key().unwrap().to_string()));
            if page.is_truncated() != Some(true) {
                break;
            }
            token = page.next_continuation_token().map(str::to_string);
        }
        let expected: Vec<String> = (0..5).map(|i| server.key(i)).collect();
        assert_eq!(keys, expected);
        // Pages 2 and 4 were empty; 1, 3 and 5 held 2, 2 and 1 keys.
        assert_eq!((empty, server.stats().pages), (2, 5));
    }

    #[test]
    fn unsupported_and_bad_requests_fail_loudly() {
        let server = ListingServer::builder().objects(10).start().unwrap();
        let (status, body) = get(&server, "/logs?list-type=2&max-keys=2&prefix=logs%2F");
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("<KeyCount>2</KeyCount><MaxKeys>2</MaxKeys>"));
        assert!(body.contains("<Prefix>logs/</Prefix>"));
        let token = format!(
            "/logs?list-type=2&continuation-token={}",
            form_encode("garbage")
        );
        for (path, status, code) in [
            ("/logs", 501, "NotImplemented"),
            ("/logs?list-type=2&delimiter=%2F", 501, "NotImplemented"),
            ("/logs?list-type=2&encoding-type=url", 501, "NotImplemented"),
            ("/logs?list-type=2&fetch-owner=true", 501, "NotImplemented"),
            ("/logs/some/key", 501, "NotImplemented"),
            ("/", 501, "NotImplemented"),
            ("/logs?list-type=2&max-keys=-1", 400, "InvalidArgument"),
            ("/logs?list-type=2&max-keys=x", 400, "InvalidArgument"),
            (token.as_str(), 400, "InvalidArgument"),
            ("/other?list-type=2", 404, "NoSuchBucket"),
        ] {
            let (got, body) = get(&server, path);
            assert_eq!(got, status, "{path}: {body}");
            assert!(
                body.contains(&format!("<Code>{code}</Code>")),
                "{path}: {body}"
            );
        }
        let stats = server.stats();
        assert_eq!((stats.requests, stats.errors, stats.pages), (11, 10, 1));
        server.reset_stats();
        assert_eq!(server.stats(), ListingStats::default());
    }
}
