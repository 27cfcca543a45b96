//! The S3 output against a real moto_server: keys, bytes, multipart, least privilege, assumed
//! roles, encryption options, the local store, and how failures are classified.

use std::io::Read;

use logferry_core::Timestamp;
use logferry_sink_s3::{ChunkIdentity, LocalStore, S3Config, SinkError, StoreErrorKind, Uploader};
use logferry_testkit::{MotoServer, TEST_ACCESS_KEY_ID, TEST_REGION, TEST_SECRET_ACCESS_KEY};

fn moto() -> MotoServer {
    MotoServer::start().expect("moto_server must run (scripts/install-test-deps installs it)")
}

/// An S3 output writing to `bucket` on `moto` with static test keys.
fn config(moto: &MotoServer, bucket: &str, extra: &str) -> S3Config {
    let text = format!(
        r#"
        bucket = "{bucket}"
        region = "{TEST_REGION}"
        endpoint = "{}"
        force_path_style = true
        utc = true
        {extra}
        "#,
        moto.endpoint()
    );
    let mut config: S3Config = toml::from_str(&text).unwrap();
    if config.credentials.aws_key_id.is_none() {
        config.credentials.aws_key_id = Some(TEST_ACCESS_KEY_ID.to_string());
        config.credentials.aws_sec_key = Some(TEST_SECRET_ACCESS_KEY.to_string());
    }
    config
}

fn chunk(tag: &str, hour: u32, seq: u64, id_byte: u8) -> ChunkIdentity {
    ChunkIdentity {
        tag: tag.to_string(),
        timekey: Timestamp::from_civil(2022, 1, 17, hour, 0, 0, 0).unwrap(),
        seq,
        id: [id_byte; 16],
        sealed_at: Timestamp::from_civil(2022, 1, 17, hour + 1, 0, 30, 0).unwrap(),
    }
}

fn lines(count: usize, seed: usize) -> Vec<u8> {
    (0..count)
        .flat_map(|i| {
            format!(
                "{{\"time\":\"2022-01-17T13:{:02}:00Z\",\"n\":{i},\"seed\":{seed},\"msg\":\"GET /items/{}\"}}\n",
                i % 60,
                i * 31 + seed
            )
            .into_bytes()
        })
        .collect()
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(bytes)
        .read_to_end(&mut out)
        .unwrap();
    out
}

fn store_kind(err: &SinkError) -> StoreErrorKind {
    match err {
        SinkError::Store(store) => store.kind(),
        other => panic!("not a store error: {other}"),
    }
}

#[tokio::test]
async fn uploads_follow_the_template_and_gunzip_to_the_input() {
    let moto = moto();
    moto.create_bucket("logs").await.unwrap();
    let config = config(
        &moto,
        "logs",
        r#"path = "app/"
        s3_object_key_format = "%{path}${tag[1]}/%Y/%m/%d/%{time_slice}_%{index}.%{file_extension}""#,
    );
    let uploader = config.build_uploader().await.unwrap();
    let first = lines(2000, 1);
    let second = lines(10, 2);
    let a = uploader
        .upload(
            &chunk("s3.web", 13, 0, 1),
            std::io::Cursor::new(first.clone()),
        )
        .await
        .unwrap();
    let b = uploader
        .upload(
            &chunk("s3.db", 14, 7, 2),
            std::io::Cursor::new(second.clone()),
        )
        .await
        .unwrap();
    assert_eq!(a.key, "app/web/2022/01/17/2022011713_0.gz");
    assert_eq!(b.key, "app/db/2022/01/17/2022011714_7.gz");
    assert_eq!(a.bytes_in, first.len() as u64);
    assert!(a.bytes_out < a.bytes_in / 3, "{a:?}");

    assert_eq!(
        moto.list_keys("logs", "").await.unwrap(),
        [b.key.clone(), a.key.clone()]
    );
    let stored = moto.get_object_bytes("logs", &a.key).await.unwrap();
    assert_eq!(stored.len() as u64, a.bytes_out);
    assert_eq!(gunzip(&stored), first);
    assert_eq!(
        gunzip(&moto.get_object_bytes("logs", &b.key).await.unwrap()),
        second
    );

    let head = moto
        .s3_client()
        .head_object()
        .bucket("logs")
        .key(&a.key)
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_type(), Some("application/x-gzip"));
    assert_eq!(head.content_encoding(), None);

    // A retried upload of the same chunk overwrites the same object with the same bytes.
    let again = uploader
        .upload(
            &chunk("s3.web", 13, 0, 1),
            std::io::Cursor::new(first.clone()),
        )
        .await
        .unwrap();
    assert_eq!(again, a);
    assert_eq!(moto.list_keys("logs", "").await.unwrap().len(), 2);
    assert_eq!(moto.get_object_bytes("logs", &a.key).await.unwrap(), stored);
}

#[tokio::test]
async fn large_objects_go_up_in_parts() {
    let moto = moto();
    moto.create_bucket("big").await.unwrap();
    let config = config(
        &moto,
        "big",
        r#"store_as = "text"
        multipart_threshold = "1MiB"
        multipart_chunk_size = "5MiB""#,
    );
    let uploader = config
        .build_uploader()
        .await
        .unwrap()
        .with_memory_limit(1 << 20);
    let input = lines(150_000, 3);
    assert!(input.len() > 10 << 20, "{}", input.len());
    let report = uploader
        .upload(&chunk("big", 1, 0, 9), std::io::Cursor::new(input.clone()))
        .await
        .unwrap();
    assert_eq!(report.key, "2022011701_0.txt");
    let head = moto
        .s3_client()
        .head_object()
        .bucket("big")
        .key(&report.key)
        .send()
        .await
        .unwrap();
    assert!(
        head.e_tag().is_some_and(|tag| tag.ends_with("-3\"")),
        "{:?}",
        head.e_tag()
    );
    assert_eq!(head.content_type(), Some("text/plain"));
    assert_eq!(
        moto.get_object_bytes("big", &report.key).await.unwrap(),
        input
    );
}

fn put_only_policy(resource: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"s3:PutObject","Resource":"{resource}"}}]}}"#
    )
}

#[tokio::test]
async fn a_put_only_user_is_enough() {
    let moto = moto();
    moto.create_bucket("secure").await.unwrap();
    let user = moto
        .create_user_with_policy("shipper", &put_only_policy("arn:aws:s3:::secure/logs/*"))
        .unwrap();
    moto.enforce_iam(true).unwrap();

    let mut config = config(
        &moto,
        "secure",
        r#"path = "logs/"
        multipart_threshold = "1MiB"
        multipart_chunk_size = "5MiB"
        store_as = "text""#,
    );
    config.credentials.aws_key_id = Some(user.access_key_id.clone());
    config.credentials.aws_sec_key = Some(user.secret_access_key.clone());
    let uploader = config.build_uploader().await.unwrap();
    // PutObject, then a multipart upload: both need nothing but s3:PutObject.
    let small = lines(10, 4);
    uploader
        .upload(&chunk("a", 2, 0, 1), std::io::Cursor::new(small.clone()))
        .await
        .unwrap();
    let large = lines(80_000, 5);
    assert!(large.len() > 5 << 20);
    uploader
        .upload(&chunk("a", 3, 0, 2), std::io::Cursor::new(large.clone()))
        .await
        .unwrap();

    // The same user may not list, head or read: the shipper never needs to.
    let client = moto.s3_client_with_keys(&user.access_key_id, &user.secret_access_key);
    let denied = client
        .list_objects_v2()
        .bucket("secure")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        denied.raw_response().map(|r| r.status().as_u16()),
        Some(403)
    );
    assert!(client.head_bucket().bucket("secure").send().await.is_err());
    assert!(
        client
            .head_object()
            .bucket("secure")
            .key("logs/2022011702_0.txt")
            .send()
            .await
            .is_err()
    );

    // Outside its prefix the put is denied, and that is not retryable.
    let mut outside = config.clone();
    outside.path = "elsewhere/".to_string();
    let err = outside
        .build_uploader()
        .await
        .unwrap()
        .upload(&chunk("a", 2, 0, 1), std::io::Cursor::new(small.clone()))
        .await
        .unwrap_err();
    assert_eq!(store_kind(&err), StoreErrorKind::AccessDenied, "{err}");
    assert!(!err.is_retryable());

    moto.enforce_iam(false).unwrap();
    assert_eq!(
        moto.list_keys("secure", "").await.unwrap(),
        ["logs/2022011702_0.txt", "logs/2022011703_0.txt"]
    );
    assert_eq!(
        moto.get_object_bytes("secure", "logs/2022011703_0.txt")
            .await
            .unwrap(),
        large
    );
}

#[tokio::test]
async fn assumed_role_credentials_come_from_sts() {
    let moto = moto();
    moto.create_bucket("roles").await.unwrap();
    let role_arn = "arn:aws:iam::123456789012:role/S3WriteSecurityData";
    let user = moto
        .create_user_with_policy(
            "host-1",
            &format!(
                r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"{role_arn}"}}]}}"#
            ),
        )
        .unwrap();
    let trust = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"{}"}},"Action":"sts:AssumeRole","Condition":{{"StringEquals":{{"sts:ExternalId":"ext-42"}}}}}}]}}"#,
        user.arn
    );
    let created = moto
        .create_role(
            "S3WriteSecurityData",
            &trust,
            &put_only_policy("arn:aws:s3:::roles/*"),
        )
        .unwrap();
    assert_eq!(created, role_arn);
    moto.enforce_iam(true).unwrap();

    let mut config = config(&moto, "roles", "");
    config.credentials.aws_key_id = Some(user.access_key_id.clone());
    config.credentials.aws_sec_key = Some(user.secret_access_key.clone());

    // The user's own keys may not put objects...
    let err = config
        .build_uploader()
        .await
        .unwrap()
        .upload(&chunk("r", 5, 0, 1), std::io::Cursor::new(lines(3, 6)))
        .await
        .unwrap_err();
    assert_eq!(store_kind(&err), StoreErrorKind::AccessDenied, "{err}");

    // ...the role's may.
    config.credentials.role_arn = Some(role_arn.to_string());
    config.credentials.role_session_name = Some("host-1".to_string());
    config.credentials.external_id = Some("ext-42".to_string());
    config.credentials.duration_seconds = Some(900);
    config.credentials.sts_endpoint_url = Some(moto.endpoint());
    config.validate().unwrap();
    let report = config
        .build_uploader()
        .await
        .unwrap()
        .upload(&chunk("r", 5, 0, 1), std::io::Cursor::new(lines(3, 6)))
        .await
        .unwrap();

    // A wrong external id: STS refuses, which surfaces as a (retryable) credentials error.
    config.credentials.external_id = Some("wrong".to_string());
    let err = config
        .build_uploader()
        .await
        .unwrap()
        .upload(&chunk("r", 6, 0, 1), std::io::Cursor::new(lines(3, 6)))
        .await
        .unwrap_err();
    assert_eq!(store_kind(&err), StoreErrorKind::Credentials, "{err}");

    moto.enforce_iam(false).unwrap();
    assert_eq!(moto.list_keys("roles", "").await.unwrap(), [report.key]);
}

#[tokio::test]
async fn encryption_and_storage_class_are_sent() {
    let moto = moto();
    moto.create_bucket("enc").await.unwrap();
    let cases = [
        (r#"sse = "AES256""#, "AES256", None),
        (
            r#"sse = "aws:kms"
            ssekms_key_id = "arn:aws:kms:us-east-1:123456789012:key/logs""#,
            "aws:kms",
            Some("arn:aws:kms:us-east-1:123456789012:key/logs"),
        ),
    ];
    for (n, (extra, sse, kms)) in cases.into_iter().enumerate() {
        let config = config(
            &moto,
            "enc",
            &format!("{extra}\nstorage_class = \"STANDARD_IA\""),
        );
        let report = config
            .build_uploader()
            .await
            .unwrap()
            .upload(
                &chunk("e", 7, n as u64, 1),
                std::io::Cursor::new(lines(5, 7)),
            )
            .await
            .unwrap();
        let head = moto
            .s3_client()
            .head_object()
            .bucket("enc")
            .key(&report.key)
            .send()
            .await
            .unwrap();
        assert_eq!(head.server_side_encryption().map(|s| s.as_str()), Some(sse));
        assert_eq!(head.ssekms_key_id(), kms);
        assert_eq!(
            head.storage_class().map(|s| s.as_str()),
            Some("STANDARD_IA")
        );
    }
}

#[tokio::test]
async fn the_local_store_writes_the_same_keys_and_bytes() {
    let moto = moto();
    moto.create_bucket("same").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let input = lines(500, 8);
    let chunk = chunk("svc.api", 9, 2, 0xc3);
    for (store_as, extension) in [
        ("gzip", "gz"),
        ("zstd", "zst"),
        ("text", "txt"),
        ("json", "json"),
    ] {
        let options = format!(
            r#"s3_object_key_format = "%{{path}}${{tag}}/%{{time_slice}}_%{{hex_random}}_%{{index}}.%{{file_extension}}"
            path = "p/"
            store_as = "{store_as}""#
        );
        let s3 = config(&moto, "same", &options)
            .build_uploader()
            .await
            .unwrap();
        let mut local_config = config(&moto, "same", &options);
        local_config.bucket = format!("file://{}", dir.path().display());
        let local = local_config.build_uploader().await.unwrap();
        assert_eq!(
            local.store().location(),
            format!("file://{}", dir.path().display())
        );

        let a = s3
            .upload(&chunk, std::io::Cursor::new(input.clone()))
            .await
            .unwrap();
        let b = local
            .upload(&chunk, std::io::Cursor::new(input.clone()))
            .await
            .unwrap();
        assert_eq!(a, b);
        assert_eq!(a.key, format!("p/svc.api/2022011709_c3c3_2.{extension}"));
        let from_s3 = moto.get_object_bytes("same", &a.key).await.unwrap();
        let from_disk =
            std::fs::read(LocalStore::new(dir.path()).path_of(&b.key).unwrap()).unwrap();
        assert_eq!(from_s3, from_disk, "{store_as}");
        let decoded = match store_as {
            "gzip" => gunzip(&from_disk),
            "zstd" => zstd::stream::decode_all(&from_disk[..]).unwrap(),
            _ => from_disk,
        };
        assert_eq!(decoded, input, "{store_as}");
    }
}

#[tokio::test]
async fn failures_say_whether_to_retry() {
    let mut moto = moto();
    moto.create_bucket("flaky").await.unwrap();
    let uploader: Uploader = config(&moto, "flaky", "").build_uploader().await.unwrap();
    let missing = config(&moto, "no-such-bucket", "")
        .build_uploader()
        .await
        .unwrap();

    let err = missing
        .upload(&chunk("x", 1, 0, 1), std::io::Cursor::new(lines(2, 9)))
        .await
        .unwrap_err();
    assert_eq!(store_kind(&err), StoreErrorKind::NoSuchBucket, "{err}");
    assert!(!err.is_retryable());

    // S3 down for a while: connection refused is retryable...
    moto.stop().unwrap();
    let err = uploader
        .upload(&chunk("x", 1, 0, 1), std::io::Cursor::new(lines(2, 9)))
        .await
        .unwrap_err();
    assert_eq!(store_kind(&err), StoreErrorKind::Connection, "{err}");
    assert!(err.is_retryable());
    // ...and the same uploader succeeds once it is back.
    moto.restart().unwrap();
    moto.create_bucket("flaky").await.unwrap();
    let report = uploader
        .upload(&chunk("x", 1, 0, 1), std::io::Cursor::new(lines(2, 9)))
        .await
        .unwrap();
    assert_eq!(moto.list_keys("flaky", "").await.unwrap(), [report.key]);
}
