//! An SQS client for a [`MotoServer`], queues, and S3 -> SQS bucket notifications.

use aws_sdk_sqs::Client;
use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_sqs::types::QueueAttributeName;

use crate::{MotoServer, TEST_ACCESS_KEY_ID, TEST_REGION, TEST_SECRET_ACCESS_KEY, TestkitError};

fn sqs_err<E>(operation: &'static str) -> impl FnOnce(E) -> TestkitError
where
    E: std::error::Error + Send + Sync + 'static,
{
    move |source| TestkitError::Io {
        context: format!("SQS {operation} failed"),
        source: std::io::Error::other(source),
    }
}

/// Counts of a queue's messages (SQS's approximate attributes, exact on moto).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueCounts {
    /// Messages that can be received now.
    pub visible: u64,
    /// Messages received and not deleted, inside their visibility timeout.
    pub in_flight: u64,
}

impl QueueCounts {
    /// Messages still in the queue, visible or not.
    pub fn total(&self) -> u64 {
        self.visible + self.in_flight
    }
}

impl MotoServer {
    /// An SQS client for this server: static test credentials, `us-east-1`.
    pub fn sqs_client(&self) -> Client {
        let credentials = Credentials::new(
            TEST_ACCESS_KEY_ID,
            TEST_SECRET_ACCESS_KEY,
            None,
            None,
            "logferry-testkit",
        );
        let config = aws_sdk_sqs::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(TEST_REGION))
            .endpoint_url(self.endpoint())
            .credentials_provider(credentials)
            .build();
        Client::from_conf(config)
    }

    /// Creates a queue and returns its URL.
    pub async fn create_queue(&self, name: &str) -> Result<String, TestkitError> {
        let out = self
            .sqs_client()
            .create_queue()
            .queue_name(name)
            .send()
            .await
            .map_err(sqs_err("CreateQueue"))?;
        Ok(out.queue_url().unwrap_or_default().to_string())
    }

    /// The ARN of a queue.
    pub async fn queue_arn(&self, queue_url: &str) -> Result<String, TestkitError> {
        let out = self
            .sqs_client()
            .get_queue_attributes()
            .queue_url(queue_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(sqs_err("GetQueueAttributes"))?;
        Ok(out
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::QueueArn))
            .cloned()
            .unwrap_or_default())
    }

    /// Sends `ObjectCreated:*` notifications of `bucket` to the queue (S3 then sends an
    /// `s3:TestEvent` message to it).
    pub async fn notify_queue_on_create(
        &self,
        bucket: &str,
        queue_url: &str,
    ) -> Result<(), TestkitError> {
        use aws_sdk_s3::types::{Event, NotificationConfiguration, QueueConfiguration};
        let arn = self.queue_arn(queue_url).await?;
        let queue = QueueConfiguration::builder()
            .queue_arn(arn)
            .events(Event::from("s3:ObjectCreated:*"))
            .build()
            .map_err(sqs_err("QueueConfiguration"))?;
        self.s3_client()
            .put_bucket_notification_configuration()
            .bucket(bucket)
            .notification_configuration(
                NotificationConfiguration::builder()
                    .queue_configurations(queue)
                    .build(),
            )
            .send()
            .await
            .map_err(|source| TestkitError::S3 {
                operation: "PutBucketNotificationConfiguration",
                source: Box::new(source),
            })?;
        Ok(())
    }

    /// Sends one message with `body`; returns its id.
    pub async fn send_message(&self, queue_url: &str, body: &str) -> Result<String, TestkitError> {
        let out = self
            .sqs_client()
            .send_message()
            .queue_url(queue_url)
            .message_body(body)
            .send()
            .await
            .map_err(sqs_err("SendMessage"))?;
        Ok(out.message_id().unwrap_or_default().to_string())
    }

    /// Visible and in-flight message counts of a queue.
    pub async fn queue_counts(&self, queue_url: &str) -> Result<QueueCounts, TestkitError> {
        let out = self
            .sqs_client()
            .get_queue_attributes()
            .queue_url(queue_url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .map_err(sqs_err("GetQueueAttributes"))?;
        let get = |name: QueueAttributeName| {
            out.attributes()
                .and_then(|a| a.get(&name))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        Ok(QueueCounts {
            visible: get(QueueAttributeName::ApproximateNumberOfMessages),
            in_flight: get(QueueAttributeName::ApproximateNumberOfMessagesNotVisible),
        })
    }

    /// Receives (and deletes) every message visible now, returning their bodies: for tests
    /// that check what was sent to a queue. Waits up to `wait_seconds` for the first.
    pub async fn drain_queue(
        &self,
        queue_url: &str,
        wait_seconds: i32,
    ) -> Result<Vec<String>, TestkitError> {
        let client = self.sqs_client();
        let mut bodies = Vec::new();
        loop {
            let out = client
                .receive_message()
                .queue_url(queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(if bodies.is_empty() { wait_seconds } else { 0 })
                .send()
                .await
                .map_err(sqs_err("ReceiveMessage"))?;
            let messages = out.messages.unwrap_or_default();
            if messages.is_empty() {
                return Ok(bodies);
            }
            for message in messages {
                bodies.push(message.body().unwrap_or_default().to_string());
                if let Some(receipt) = message.receipt_handle() {
                    client
                        .delete_message()
                        .queue_url(queue_url)
                        .receipt_handle(receipt)
                        .send()
                        .await
                        .map_err(sqs_err("DeleteMessage"))?;
                }
            }
        }
    }
}
