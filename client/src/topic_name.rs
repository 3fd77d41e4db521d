//! Kafka's topic name rules (`weir_protocol::topic_name`, shared with the broker), checked
//! before a name is sent, so that a bad name is a clear local error rather than an
//! INVALID_TOPIC_EXCEPTION or a metadata lookup that never succeeds.

pub use weir_protocol::topic_name::{MAX_TOPIC_NAME_LEN, TopicNameError, validate_topic_name};

/// [`validate_topic_name`] as a client error naming the topic.
///
/// # Errors
/// [`crate::Error::InvalidTopicName`].
pub(crate) fn check(name: &str) -> crate::Result<()> {
    validate_topic_name(name).map_err(|reason| crate::Error::InvalidTopicName {
        name: name.to_owned(),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_name_is_an_error_naming_the_topic() {
        let err = check("a b").expect_err("illegal");
        assert_eq!(
            err.to_string(),
            "invalid topic name \"a b\": it contains ' '; only ASCII letters, digits, '.', \
             '_' and '-' are allowed"
        );
        assert!(check("orders.v1").is_ok());
    }
}
