//! Sending bulk bodies: the HTTP client (hyper + rustls), host rotation, authentication and
//! timeouts.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::auth::Auth;
use crate::config::{Compression, EsConfig};
use crate::{EsError, tls};

/// The query string of bulk requests: answers carry only what the sink reads.
const BULK_QUERY: &str = "filter_path=errors,items.*.status,items.*.error";

/// Largest answer body read (a bulk answer of 100,000 failed items stays well below).
const MAX_ANSWER_BYTES: usize = 64 * 1024 * 1024;

/// An HTTP answer.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) host: String,
    pub(crate) status: u16,
    pub(crate) body: Bytes,
}

/// Sends bulk requests to the configured hosts.
#[derive(Debug)]
pub(crate) struct Transport {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    hosts: Vec<String>,
    next: AtomicUsize,
    auth: Auth,
    gzip: bool,
    timeout: Duration,
}

impl Transport {
    pub(crate) async fn build(config: &EsConfig) -> Result<Transport, EsError> {
        let https = config.hosts.iter().any(|h| h.starts_with("https://"));
        let tls = tls::client_config(&config.tls, https)?;
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(Duration::from_secs(10)));
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(config.concurrency)
            .build(connector);
        Ok(Transport {
            client,
            hosts: config
                .hosts
                .iter()
                .map(|h| h.trim_end_matches('/').to_string())
                .collect(),
            next: AtomicUsize::new(0),
            auth: Auth::build(config.auth.as_ref()).await?,
            gzip: config.compression == Compression::Gzip,
            timeout: config.request_timeout.as_duration(),
        })
    }

    fn host(&self) -> &str {
        &self.hosts[self.next.load(Ordering::Relaxed) % self.hosts.len()]
    }

    /// Moves to the next host (after a connection error).
    pub(crate) fn rotate(&self) {
        self.next.fetch_add(1, Ordering::Relaxed);
    }

    /// POSTs a bulk body and reads the answer.
    pub(crate) async fn post_bulk(&self, body: Bytes) -> Result<Answer, EsError> {
        let host = self.host().to_string();
        let uri = format!("{host}/_bulk?{BULK_QUERY}");
        let connection = |source: Box<dyn std::error::Error + Send + Sync>| EsError::Connection {
            host: host.clone(),
            source,
        };
        let parsed: http::Uri = uri.parse().map_err(|e| connection(Box::new(e)))?;
        let authority = parsed
            .authority()
            .map(|a| a.as_str().to_string())
            .unwrap_or_default();
        let mut request = http::Request::post(parsed)
            .header(http::header::HOST, authority)
            .header(http::header::CONTENT_TYPE, "application/x-ndjson")
            .body(Full::new(body.clone()))
            .map_err(|e| connection(Box::new(e)))?;
        if self.gzip {
            request.headers_mut().insert(
                http::header::CONTENT_ENCODING,
                http::HeaderValue::from_static("gzip"),
            );
        }
        self.auth.apply(&mut request, &body).await?;
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| connection(Box::new(e)))?;
            let status = response.status().as_u16();
            let body = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
                .collect()
                .await
                .map_err(connection)?
                .to_bytes();
            Ok::<_, EsError>((status, body))
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(Ok((status, body))) => Ok(Answer { host, status, body }),
            Ok(Err(err)) => Err(err),
            Err(_) => Err(EsError::Timeout {
                host,
                timeout: self.timeout,
            }),
        }
    }
}
