//! The cluster the sink tests write to: the testkit bulk server, or a real Elasticsearch /
//! OpenSearch cluster when `LOGFERRY_ES_URL` is set (e.g. `http://elastic:pw@127.0.0.1:9200`
//! is not supported: put credentials in `LOGFERRY_ES_USER` / `LOGFERRY_ES_PASSWORD`).
//! Fault-injection tests need the testkit server and are skipped (with a message) against a
//! real cluster; everything else runs against both.

#![allow(dead_code, unreachable_pub)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use logferry_core::{AckReceiver, AckToken, Timestamp};
use logferry_sink_es::{AuthConfig, DocumentId, EsConfig, EsEvent, EventOrigin, IdMode};
use logferry_testkit::BulkServer;
use serde_json::Value;

/// The variable that points the tests at a real cluster.
pub const ES_URL_ENV: &str = "LOGFERRY_ES_URL";

pub struct Cluster {
    pub url: String,
    pub server: Option<BulkServer>,
    auth: Option<(String, String)>,
    client: Client<HttpConnector, Full<Bytes>>,
}

static UNIQUE: AtomicU64 = AtomicU64::new(0);

impl Cluster {
    /// The testkit server, or the real cluster of `LOGFERRY_ES_URL`.
    pub fn start() -> Cluster {
        let client = Client::builder(TokioExecutor::new()).build_http();
        match std::env::var(ES_URL_ENV) {
            Ok(url) => {
                let auth = std::env::var("LOGFERRY_ES_USER").ok().map(|user| {
                    (
                        user,
                        std::env::var("LOGFERRY_ES_PASSWORD").unwrap_or_default(),
                    )
                });
                Cluster {
                    url: url.trim_end_matches('/').to_string(),
                    server: None,
                    auth,
                    client,
                }
            }
            Err(_) => {
                let server = BulkServer::start().expect("the bulk server starts");
                Cluster {
                    url: server.url(),
                    server: Some(server),
                    auth: None,
                    client,
                }
            }
        }
    }

    /// The testkit server, for fault-injection tests; `None` (with a note) on a real cluster.
    pub fn fault_injection(&self) -> Option<&BulkServer> {
        if self.server.is_none() {
            eprintln!(
                "skipped: fault injection needs the testkit bulk server ({ES_URL_ENV} is set)"
            );
        }
        self.server.as_ref()
    }

    /// A fresh index name (real clusters keep indices between runs).
    pub fn index(&self, prefix: &str) -> String {
        let n = UNIQUE.fetch_add(1, Ordering::Relaxed);
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis();
        format!("logferry-test-{prefix}-{}-{stamp}-{n}", std::process::id())
    }

    /// A sink configuration for this cluster with fast retries and small batches.
    pub fn config(&self, index: &str) -> EsConfig {
        let mut config = EsConfig::new(vec![self.url.clone()]);
        config.index = index.to_string();
        config.batch_max_events = 100;
        config.batch_timeout = "50ms".parse().unwrap();
        config.retry_initial_backoff = "10ms".parse().unwrap();
        config.retry_max_backoff = "100ms".parse().unwrap();
        if let Some((user, password)) = &self.auth {
            config.auth = Some(AuthConfig::Basic {
                user: user.clone(),
                password: password.clone(),
            });
        }
        config
    }

    async fn call(&self, method: &str, path: &str) -> (u16, Value) {
        let mut request = http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.url));
        if let Some((user, password)) = &self.auth {
            let encoded =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
            request = request.header("Authorization", format!("Basic {encoded}"));
        }
        let response = self
            .client
            .request(request.body(Full::new(Bytes::new())).unwrap())
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    /// Documents in `index` (after a refresh).
    pub async fn count(&self, index: &str) -> u64 {
        self.call("POST", &format!("/{index}/_refresh")).await;
        let (status, answer) = self.call("GET", &format!("/{index}/_count")).await;
        if status == 404 {
            return 0;
        }
        answer["count"].as_u64().unwrap_or(0)
    }

    /// One document's source.
    pub async fn document(&self, index: &str, id: &str) -> Option<Value> {
        let (status, answer) = self.call("GET", &format!("/{index}/_doc/{id}")).await;
        (status == 200).then(|| answer["_source"].clone())
    }

    /// Deletes a test index (real clusters).
    pub async fn delete(&self, index: &str) {
        self.call("DELETE", &format!("/{index}")).await;
    }

    /// Waits until `index` holds `n` documents.
    pub async fn wait_count(&self, index: &str, n: u64) -> bool {
        logferry_testkit::wait_until_async(Instant::now() + Duration::from_secs(20), || async {
            self.count(index).await == n
        })
        .await
    }
}

/// ALB-like documents `first..first+n` of one object; all share one acknowledgement token.
pub fn events(key: &str, first: u64, n: u64) -> (Vec<EsEvent>, AckReceiver) {
    let (token, receiver) = AckToken::new();
    let events = events_with(key, first, n, &token);
    (events, receiver)
}

pub fn events_with(key: &str, first: u64, n: u64, token: &AckToken) -> Vec<EsEvent> {
    (first..first + n)
        .map(|i| {
            let ts = Timestamp::from_unix(1_709_632_800 + i as i64, 0).unwrap();
            let json = format!(
                r#"{{"@timestamp":"{ts}","type":"https","client_ip":"10.0.{}.{}","status":{},"request":"GET https://example.com:443/item/{i} HTTP/1.1","n":{i}}}"#,
                i / 250 % 250,
                i % 250,
                if i % 7 == 0 { 404 } else { 200 }
            );
            EsEvent::new(json, ts, EventOrigin::new("logs", key, i + 1, i * 180)).with_ack(token.clone())
        })
        .collect()
}

/// Waits for an acknowledgement with a deadline.
pub async fn acked(receiver: AckReceiver) -> logferry_core::AckStatus {
    tokio::time::timeout(Duration::from_secs(30), receiver)
        .await
        .expect("acknowledged in time")
}

/// The `_id` and document each event must be indexed as.
pub fn expected_documents(batch: &[EsEvent]) -> Vec<(String, Value)> {
    batch
        .iter()
        .map(|e| {
            let id = DocumentId::for_event(IdMode::Position, e)
                .unwrap()
                .to_string();
            (id, serde_json::from_str(&e.json).unwrap())
        })
        .collect()
}
