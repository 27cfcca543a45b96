//! The kit against a real moto_server: start, S3 helpers, IAM enforcement, stop and restart.

use std::time::{Duration, Instant};

use logferry_testkit::{MotoServer, wait_until};

fn put_only_policy(bucket: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"s3:PutObject","Resource":"arn:aws:s3:::{bucket}/*"}}]}}"#
    )
}

#[tokio::test]
async fn s3_helpers_round_trip() {
    let moto = MotoServer::start().expect("moto_server (run scripts/install-test-deps)");
    moto.create_bucket("kit-bucket").await.unwrap();
    let client = moto.s3_client();
    for key in ["b/2.txt", "a/1.txt", "b/3.txt"] {
        client
            .put_object()
            .bucket("kit-bucket")
            .key(key)
            .body(key.as_bytes().to_vec().into())
            .send()
            .await
            .unwrap();
    }
    assert_eq!(
        moto.list_keys("kit-bucket", "").await.unwrap(),
        ["a/1.txt", "b/2.txt", "b/3.txt"]
    );
    assert_eq!(
        moto.list_keys("kit-bucket", "b/").await.unwrap(),
        ["b/2.txt", "b/3.txt"]
    );
    assert_eq!(
        moto.get_object_bytes("kit-bucket", "a/1.txt")
            .await
            .unwrap(),
        b"a/1.txt"
    );
    assert!(moto.get_object_bytes("kit-bucket", "nope").await.is_err());
}

#[tokio::test]
async fn iam_enforcement_denies_listing_to_a_put_only_user() {
    let moto = MotoServer::start().unwrap();
    moto.create_bucket("secure").await.unwrap();
    let writer = moto
        .create_user_with_policy("writer", &put_only_policy("secure"))
        .unwrap();
    assert_eq!(writer.arn, "arn:aws:iam::123456789012:user/writer");
    moto.enforce_iam(true).unwrap();

    let client = moto.s3_client_with_keys(&writer.access_key_id, &writer.secret_access_key);
    client
        .put_object()
        .bucket("secure")
        .key("x.txt")
        .body(b"x".to_vec().into())
        .send()
        .await
        .unwrap();
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
            .get_object()
            .bucket("secure")
            .key("x.txt")
            .send()
            .await
            .is_err()
    );
    // Unknown keys are refused too.
    assert!(
        moto.s3_client()
            .list_objects_v2()
            .bucket("secure")
            .send()
            .await
            .is_err()
    );

    moto.enforce_iam(false).unwrap();
    assert_eq!(moto.list_keys("secure", "").await.unwrap(), ["x.txt"]);
}

#[tokio::test]
async fn initial_no_auth_action_count_lets_setup_through() {
    // Two unauthenticated actions (CreateBucket, PutObject), then IAM is enforced.
    let moto = MotoServer::builder()
        .initial_no_auth_action_count(2)
        .start()
        .unwrap();
    moto.create_bucket("counted").await.unwrap();
    let client = moto.s3_client();
    client
        .put_object()
        .bucket("counted")
        .key("a")
        .body(b"a".to_vec().into())
        .send()
        .await
        .unwrap();
    assert!(
        client
            .put_object()
            .bucket("counted")
            .key("b")
            .body(b"b".to_vec().into())
            .send()
            .await
            .is_err()
    );
}

#[tokio::test]
async fn stop_and_restart_on_the_same_port() {
    let mut moto = MotoServer::start().unwrap();
    let endpoint = moto.endpoint();
    moto.create_bucket("before").await.unwrap();
    moto.stop().unwrap();
    assert!(!moto.is_running());
    assert!(moto.create_bucket("during").await.is_err());
    let port = moto.port();
    assert!(wait_until(Instant::now() + Duration::from_secs(5), || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err()
    }));
    moto.restart().unwrap();
    assert_eq!(moto.endpoint(), endpoint);
    // State is gone: the bucket must be created again.
    assert!(moto.list_keys("before", "").await.is_err());
    moto.create_bucket("after").await.unwrap();
    assert!(moto.list_keys("after", "").await.unwrap().is_empty());
}

#[test]
fn a_missing_moto_is_an_error_naming_the_install_script() {
    let err = MotoServer::builder()
        .program("/nonexistent/moto_server")
        .start()
        .unwrap_err();
    assert!(
        err.to_string().contains("scripts/install-test-deps"),
        "{err}"
    );
}
