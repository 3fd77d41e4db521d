//! Kafka's topic name rules (`org.apache.kafka.common.internals.Topic.validate`), checked
//! before a name is sent, so that a bad name is a clear local error rather than an
//! INVALID_TOPIC_EXCEPTION or a metadata lookup that never succeeds. The broker applies the
//! same rules on its side (`broker/src/topics/name.rs`); the client cannot depend on the
//! broker, hence this copy of a dozen lines.

/// Longest legal topic name: 249, so that `<name>-<partition>` fits a 255-byte file name.
pub const MAX_TOPIC_NAME_LEN: usize = 249;

/// Why a topic name is illegal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TopicNameError {
    /// The empty string.
    #[error("a topic name cannot be empty")]
    Empty,
    /// `.` or `..`, which would be directory names.
    #[error("a topic name cannot be \".\" or \"..\"")]
    Dots,
    /// Longer than [`MAX_TOPIC_NAME_LEN`].
    #[error("it is {0} characters long; the maximum is 249")]
    TooLong(usize),
    /// A character outside `[a-zA-Z0-9._-]`.
    #[error("it contains {0:?}; only ASCII letters, digits, '.', '_' and '-' are allowed")]
    IllegalCharacter(char),
}

/// Checks `name` against Kafka's rules.
///
/// # Errors
/// The first rule broken.
pub fn validate_topic_name(name: &str) -> Result<(), TopicNameError> {
    if name.is_empty() {
        return Err(TopicNameError::Empty);
    }
    if name == "." || name == ".." {
        return Err(TopicNameError::Dots);
    }
    if name.len() > MAX_TOPIC_NAME_LEN {
        return Err(TopicNameError::TooLong(name.chars().count()));
    }
    match name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        Some(c) => Err(TopicNameError::IllegalCharacter(c)),
        None => Ok(()),
    }
}

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
    fn kafka_rules() {
        assert_eq!(validate_topic_name("orders.v1_x-2"), Ok(()));
        assert_eq!(validate_topic_name(""), Err(TopicNameError::Empty));
        assert_eq!(validate_topic_name(".."), Err(TopicNameError::Dots));
        assert_eq!(validate_topic_name("..."), Ok(()));
        assert_eq!(validate_topic_name(&"a".repeat(249)), Ok(()));
        assert_eq!(
            validate_topic_name(&"a".repeat(250)),
            Err(TopicNameError::TooLong(250))
        );
        assert_eq!(
            validate_topic_name("my topic"),
            Err(TopicNameError::IllegalCharacter(' '))
        );
        assert_eq!(
            validate_topic_name("a/b"),
            Err(TopicNameError::IllegalCharacter('/'))
        );
        assert_eq!(
            validate_topic_name("café"),
            Err(TopicNameError::IllegalCharacter('é'))
        );
        let err = check("a b").expect_err("illegal");
        assert_eq!(
            err.to_string(),
            "invalid topic name \"a b\": it contains ' '; only ASCII letters, digits, '.', \
             '_' and '-' are allowed"
        );
    }
}
