//! Topic name rules, as Kafka applies them: the shared rules of `weir_protocol::topic_name`.

pub(crate) use weir_protocol::topic_name::collides;
pub use weir_protocol::topic_name::{MAX_TOPIC_NAME_LEN, TopicNameError, validate_topic_name};
