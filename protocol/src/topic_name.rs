//! Kafka's topic name rules (`org.apache.kafka.common.internals.Topic`), shared by the broker
//! (which refuses illegal names with INVALID_TOPIC_EXCEPTION) and the client (which checks a
//! name before sending it, so a bad name is a clear local error rather than a metadata lookup
//! that never succeeds). Error messages read after "invalid topic name \"X\": ".

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

/// Kafka refuses to create a topic whose name differs from an existing one only by `.`
/// against `_` (they collide in metric names).
pub fn collides(a: &str, b: &str) -> bool {
    a != b
        && a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .all(|(x, y)| x == y || (matches!(x, b'.' | b'_') && matches!(y, b'.' | b'_')))
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
        assert!(collides("a.b", "a_b"));
        assert!(!collides("a.b", "a.b"));
        assert!(!collides("a.b", "a-b"));
    }
}
