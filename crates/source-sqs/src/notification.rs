//! SQS message bodies: S3 event notifications, the same wrapped in SNS, and EventBridge
//! "Object Created" events.

use serde_json::Value;

use crate::error::NotificationError;

/// One object named by a notification (or listed for a backfill).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ObjectRef {
    /// The bucket name, or `file://DIR` for the local-directory store.
    pub bucket: String,
    /// The object key, URL-decoded.
    pub key: String,
    /// Size in bytes as notified or listed.
    pub size: Option<u64>,
    /// Version id (versioned buckets). After a download: the version read.
    pub version_id: Option<String>,
    /// ETag without quotes. After a download: the ETag of the bytes read.
    pub etag: Option<String>,
}

/// What one SQS message body holds.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Notification {
    /// Objects created (`ObjectCreated:*` records, EventBridge "Object Created").
    pub objects: Vec<ObjectRef>,
    /// `s3:TestEvent` messages (S3 sends one when a notification configuration is set).
    pub test_events: u64,
    /// Other records (`ObjectRemoved:*`, `ObjectRestore:*`, other EventBridge detail types).
    pub non_create_events: u64,
}

/// Parses one SQS message body. The keys of the objects are URL-decoded (`+` is a space).
///
/// ```
/// use logferry_source_sqs::parse_notification;
///
/// let body = r#"{"Records":[{"eventName":"ObjectCreated:Put",
///   "s3":{"bucket":{"name":"logs"},"object":{"key":"a+b%2Fc.gz","size":10}}}]}"#;
/// let n = parse_notification("m-1", body).unwrap();
/// assert_eq!(n.objects[0].key, "a b/c.gz");
/// assert!(parse_notification("m-2", "nope").unwrap_err().to_string().contains("m-2"));
/// ```
pub fn parse_notification(message_id: &str, body: &str) -> Result<Notification, NotificationError> {
    let err = |reason: String| NotificationError {
        message_id: message_id.to_string(),
        reason,
    };
    let value: Value =
        serde_json::from_str(body).map_err(|e| err(format!("body is not JSON: {e}")))?;
    let mut notification = Notification::default();
    parse_value(&value, &mut notification, true).map_err(err)?;
    Ok(notification)
}

fn parse_value(value: &Value, out: &mut Notification, allow_sns: bool) -> Result<(), String> {
    let Some(object) = value.as_object() else {
        return Err("body is not a JSON object".to_string());
    };
    if allow_sns && object.get("Type").and_then(Value::as_str) == Some("Notification") {
        let message = object
            .get("Message")
            .and_then(Value::as_str)
            .ok_or("SNS notification without a `Message` string")?;
        let inner: Value = serde_json::from_str(message)
            .map_err(|e| format!("the SNS `Message` is not JSON: {e}"))?;
        return parse_value(&inner, out, false)
            .map_err(|reason| format!("in the SNS `Message`: {reason}"));
    }
    if object.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        out.test_events += 1;
        return Ok(());
    }
    if let Some(records) = object.get("Records") {
        let records = records.as_array().ok_or("`Records` is not an array")?;
        for (i, record) in records.iter().enumerate() {
            parse_record(record, out).map_err(|reason| format!("Records[{i}]: {reason}"))?;
        }
        return Ok(());
    }
    if let Some(detail_type) = object.get("detail-type") {
        let detail_type = detail_type
            .as_str()
            .ok_or("`detail-type` is not a string")?;
        if detail_type != "Object Created" {
            out.non_create_events += 1;
            return Ok(());
        }
        let detail = object
            .get("detail")
            .ok_or("EventBridge event without `detail`")?;
        let object = detail.get("object").ok_or("`detail.object` is missing")?;
        out.objects.push(ObjectRef {
            bucket: string_at(detail, &["bucket", "name"], "detail.bucket.name")?.to_string(),
            key: key_at(object, "detail.object.key")?,
            size: object.get("size").and_then(Value::as_u64),
            version_id: optional_string(object, "version-id"),
            etag: optional_string(object, "etag").map(unquote),
        });
        return Ok(());
    }
    Err("not an S3 event notification (no `Records`, `Event` or `detail-type`)".to_string())
}

fn parse_record(record: &Value, out: &mut Notification) -> Result<(), String> {
    let name = record
        .get("eventName")
        .and_then(Value::as_str)
        .ok_or("`eventName` is missing")?;
    let name = name.strip_prefix("s3:").unwrap_or(name);
    if !name.starts_with("ObjectCreated:") {
        out.non_create_events += 1;
        return Ok(());
    }
    let s3 = record.get("s3").ok_or("`s3` is missing")?;
    let object = s3.get("object").ok_or("`s3.object` is missing")?;
    out.objects.push(ObjectRef {
        bucket: string_at(s3, &["bucket", "name"], "s3.bucket.name")?.to_string(),
        key: key_at(object, "s3.object.key")?,
        size: object.get("size").and_then(Value::as_u64),
        version_id: optional_string(object, "versionId"),
        etag: optional_string(object, "eTag").map(unquote),
    });
    Ok(())
}

fn string_at<'v>(value: &'v Value, path: &[&str], name: &str) -> Result<&'v str, String> {
    let mut v = value;
    for part in path {
        v = v.get(part).ok_or_else(|| format!("`{name}` is missing"))?;
    }
    v.as_str()
        .ok_or_else(|| format!("`{name}` is not a string"))
}

fn key_at(object: &Value, name: &str) -> Result<String, String> {
    let raw = string_at(object, &["key"], name)?;
    decode_key(raw).map_err(|e| format!("`{name}`: {e}"))
}

fn optional_string(value: &Value, member: &str) -> Option<String> {
    value
        .get(member)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn unquote(etag: String) -> String {
    match etag.strip_prefix('"').and_then(|e| e.strip_suffix('"')) {
        Some(inner) => inner.to_string(),
        None => etag,
    }
}

/// Decodes an object key as S3 notifications write it: `+` is a space and `%XX` a byte.
/// A `%` not followed by two hex digits is kept as it is; the bytes must be UTF-8.
///
/// ```
/// use logferry_source_sqs::decode_key;
/// assert_eq!(decode_key("logs/a+b%2Bc%C3%A9.gz").unwrap(), "logs/a b+cé.gz");
/// assert_eq!(decode_key("100%").unwrap(), "100%");
/// assert!(decode_key("%FF").is_err());
/// ```
pub fn decode_key(raw: &str) -> Result<String, std::string::FromUtf8Error> {
    let bytes = raw.as_bytes();
    if !bytes.iter().any(|&b| b == b'+' || b == b'%') {
        return Ok(raw.to_string());
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => match (hex(bytes.get(i + 1)), hex(bytes.get(i + 2))) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out)
}

fn hex(b: Option<&u8>) -> Option<u8> {
    match *b? {
        c @ b'0'..=b'9' => Some(c - b'0'),
        c @ b'a'..=b'f' => Some(c - b'a' + 10),
        c @ b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Encodes a key as S3 writes it in notifications: unreserved characters and `/` stay, a space
/// becomes `+`, every other byte `%XX`. [`decode_key`] undoes it.
pub(crate) fn encode_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 8);
    for &b in key.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                out.push('%');
                out.push(HEX[usize::from(b >> 4)] as char);
                out.push(HEX[usize::from(b & 15)] as char);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const S3_PUT: &str = r#"{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","awsRegion":"us-east-1",
      "eventTime":"2024-01-17T13:00:00.000Z","eventName":"ObjectCreated:Put",
      "s3":{"s3SchemaVersion":"1.0","configurationId":"c","bucket":{"name":"logs","arn":"arn:aws:s3:::logs"},
      "object":{"key":"AWSLogs/my+file%3D1.log.gz","size":1024,"eTag":"0123abc","versionId":"v1","sequencer":"0A1B"}}},
      {"eventName":"ObjectRemoved:Delete","s3":{"bucket":{"name":"logs"},"object":{"key":"old"}}}]}"#;

    #[test]
    fn s3_records() {
        let n = parse_notification("m", S3_PUT).unwrap();
        assert_eq!(
            n.objects,
            [ObjectRef {
                bucket: "logs".into(),
                key: "AWSLogs/my file=1.log.gz".into(),
                size: Some(1024),
                version_id: Some("v1".into()),
                etag: Some("0123abc".into()),
            }]
        );
        assert_eq!((n.test_events, n.non_create_events), (0, 1));
    }

    #[test]
    fn sns_wrapped_and_test_events() {
        let sns = serde_json::json!({
            "Type": "Notification", "MessageId": "x", "TopicArn": "arn:aws:sns:us-east-1:1:t",
            "Message": S3_PUT,
        })
        .to_string();
        let n = parse_notification("m", &sns).unwrap();
        assert_eq!(n.objects.len(), 1);
        let test = r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2024-01-17T13:00:00Z","Bucket":"logs"}"#;
        assert_eq!(parse_notification("m", test).unwrap().test_events, 1);
        let sns_test = serde_json::json!({"Type": "Notification", "Message": test}).to_string();
        assert_eq!(parse_notification("m", &sns_test).unwrap().test_events, 1);
    }

    #[test]
    fn eventbridge() {
        let body = r#"{"version":"0","id":"1","detail-type":"Object Created","source":"aws.s3",
          "account":"1","time":"2024-01-17T13:00:00Z","region":"us-east-1","resources":[],
          "detail":{"version":"0","bucket":{"name":"logs"},"object":{"key":"a%20b.gz","size":5,
          "etag":"\"e1\"","version-id":"v9","sequencer":"1"},"reason":"PutObject"}}"#;
        let n = parse_notification("m", body).unwrap();
        assert_eq!(n.objects[0].key, "a b.gz");
        assert_eq!(n.objects[0].etag.as_deref(), Some("e1"));
        assert_eq!(n.objects[0].version_id.as_deref(), Some("v9"));
        let deleted = body.replace("Object Created", "Object Deleted");
        assert_eq!(
            parse_notification("m", &deleted).unwrap().non_create_events,
            1
        );
    }

    #[test]
    fn malformed_bodies_name_the_message() {
        for (body, needle) in [
            ("{", "not JSON"),
            ("[1]", "not a JSON object"),
            ("{}", "not an S3 event notification"),
            (r#"{"Records":{}}"#, "not an array"),
            (
                r#"{"Records":[{"eventName":"ObjectCreated:Put"}]}"#,
                "Records[0]: `s3` is missing",
            ),
            (
                r#"{"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{}}}]}"#,
                "`s3.object.key` is missing",
            ),
            (
                r#"{"Type":"Notification","Message":"{"}"#,
                "SNS `Message` is not JSON",
            ),
            (
                r#"{"Type":"Notification","Message":"{}"}"#,
                "in the SNS `Message`",
            ),
            (r#"{"detail-type":"Object Created"}"#, "without `detail`"),
            (
                r#"{"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{"key":"%FF"}}}]}"#,
                "invalid utf-8",
            ),
        ] {
            let err = parse_notification("msg-42", body).unwrap_err();
            let text = err.to_string();
            assert!(text.starts_with("SQS message msg-42: "), "{text}");
            assert!(text.contains(needle), "{body}: {text}");
        }
    }

    #[test]
    fn key_decoding() {
        assert_eq!(decode_key("plain/key.gz").unwrap(), "plain/key.gz");
        assert_eq!(decode_key("a+b").unwrap(), "a b");
        assert_eq!(decode_key("a%2bb%2B").unwrap(), "a+b+");
        assert_eq!(decode_key("%").unwrap(), "%");
        assert_eq!(decode_key("%4").unwrap(), "%4");
        assert_eq!(decode_key("%zz%41").unwrap(), "%zzA");
        assert_eq!(decode_key("x%E2%82%AC").unwrap(), "x€");
        assert!(decode_key("%C3").is_err());
    }

    proptest! {
        #[test]
        fn encode_then_decode_is_identity(key in "\\PC{0,40}") {
            prop_assert_eq!(decode_key(&encode_key(&key)).unwrap(), key);
        }

        #[test]
        fn decode_never_panics(raw in "[%+a-fA-F0-9 zé]{0,30}") {
            let _ = decode_key(&raw);
        }
    }
}
