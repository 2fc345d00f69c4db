//! Topics created when missing: the dead letters (by the runtime), the target of `produce`.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientConfig;

use super::RuntimeError;

/// Creates `topic` with `partitions` unless it exists.
pub async fn ensure(
    brokers: &str,
    properties: &BTreeMap<String, String>,
    topic: &str,
    partitions: i32,
) -> Result<(), RuntimeError> {
    let mut config = ClientConfig::new();
    for (key, value) in properties {
        if key.starts_with("ssl.") || key.starts_with("sasl.") || key == "security.protocol" {
            config.set(key, value);
        }
    }
    let admin: AdminClient<DefaultClientContext> = config
        .set("bootstrap.servers", brokers)
        .create()
        .map_err(|error| RuntimeError::Broker(format!("admin client for {brokers}: {error}")))?;
    let options = AdminOptions::new()
        .operation_timeout(Some(Duration::from_secs(30)))
        .request_timeout(Some(Duration::from_secs(30)));
    let results = admin
        .create_topics(
            &[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))],
            &options,
        )
        .await
        .map_err(|error| {
            RuntimeError::Broker(format!(
                "cannot reach the brokers at {brokers} to create {topic}: {error}"
            ))
        })?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, error)) => {
                return Err(RuntimeError::Broker(format!(
                    "cannot create topic {topic}: {error}"
                )));
            }
        }
    }
    Ok(())
}
