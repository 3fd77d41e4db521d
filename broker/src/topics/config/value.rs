//! Parsing and checking one configuration value against its kind and range.
//!
//! Owns [`Kind`] (Kafka's type of a config with the range Weir accepts), [`Value`] (a parsed
//! value) and [`InvalidConfig`] (why a name or value is refused, naming the key and the range).
//! Pure: no state, no I/O. Invariant: [`Kind::parse`] returns a value whose
//! [`Value::to_text`] parses back to the same value, and that text holds no whitespace (the
//! catalog stores it as one word).

/// Kafka's type of a config, with the values Weir accepts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// A whole number between `min` and `max` (Kafka's LONG).
    Long {
        /// Smallest accepted.
        min: i64,
        /// Largest accepted.
        max: i64,
    },
    /// A whole number between `min` and `max` (Kafka's INT).
    Int {
        /// Smallest accepted.
        min: i64,
        /// Largest accepted.
        max: i64,
    },
    /// A decimal number between `min` and `max` (Kafka's DOUBLE).
    Double {
        /// Smallest accepted.
        min: f64,
        /// Largest accepted.
        max: f64,
    },
    /// `true` or `false` (Kafka's BOOLEAN).
    Bool,
    /// One of these words, as spelled here (Kafka's STRING with a `ValidString`).
    Choice(&'static [&'static str]),
    /// A non-empty comma-separated set of these words (Kafka's LIST with a `ValidList`).
    List(&'static [&'static str]),
}

/// Kafka's `ConfigType` codes, as DescribeConfigs v3+ reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i8)]
pub enum ConfigType {
    /// BOOLEAN.
    Boolean = 1,
    /// STRING.
    String = 2,
    /// INT.
    Int = 3,
    /// LONG.
    Long = 5,
    /// DOUBLE.
    Double = 6,
    /// LIST.
    List = 7,
}

/// A parsed value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// An INT or LONG.
    Long(i64),
    /// A DOUBLE.
    Double(f64),
    /// A BOOLEAN.
    Bool(bool),
    /// A STRING choice.
    Text(&'static str),
    /// A LIST, without duplicates, in the order given.
    List(Vec<&'static str>),
}

/// Why a config name or value is refused (Kafka: INVALID_CONFIG). Every message names the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidConfig {
    /// No such config for this kind of resource.
    #[error("unknown {scope} config {name:?}")]
    Unknown {
        /// The name given.
        name: String,
        /// "topic" or "broker".
        scope: &'static str,
    },
    /// The value is not of the config's type or outside its range.
    #[error("invalid value {value:?} for config {name}: {expected}")]
    BadValue {
        /// The config.
        name: String,
        /// The value given.
        value: String,
        /// What is accepted, with the range.
        expected: String,
    },
    /// A config that cannot change while the broker runs (a flag sets it).
    #[error("config {name} is read-only: it is set by a broker flag at start-up")]
    ReadOnly {
        /// The config.
        name: String,
    },
    /// A null value where one is needed.
    #[error("config {name} needs a value (null given)")]
    Null {
        /// The config.
        name: String,
    },
    /// APPEND or SUBTRACT on a config that is not a list.
    #[error("config {name} is not a list: APPEND and SUBTRACT apply only to list configs")]
    NotAList {
        /// The config.
        name: String,
    },
    /// The same config twice in one request.
    #[error("config {name} appears more than once")]
    Duplicate {
        /// The config.
        name: String,
    },
    /// An operation code Kafka does not define.
    #[error("config {name}: unknown operation {op} (0 SET, 1 DELETE, 2 APPEND, 3 SUBTRACT)")]
    UnknownOperation {
        /// The config.
        name: String,
        /// The code given.
        op: i8,
    },
}

impl Kind {
    /// Kafka's type code for this kind.
    pub fn config_type(self) -> ConfigType {
        match self {
            Self::Long { .. } => ConfigType::Long,
            Self::Int { .. } => ConfigType::Int,
            Self::Double { .. } => ConfigType::Double,
            Self::Bool => ConfigType::Boolean,
            Self::Choice(_) => ConfigType::String,
            Self::List(_) => ConfigType::List,
        }
    }

    /// What this kind accepts, for error messages and documentation.
    pub fn expected(self) -> String {
        match self {
            Self::Long { min, max } | Self::Int { min, max } => {
                format!("a whole number between {min} and {max}")
            }
            Self::Double { min, max } => format!(
                "a number between {} and {}",
                format_double(min),
                format_double(max)
            ),
            Self::Bool => "true or false".to_owned(),
            Self::Choice(words) => format!("one of {}", words.join(", ")),
            Self::List(words) => format!(
                "a comma-separated list of one or more of {}",
                words.join(", ")
            ),
        }
    }

    /// Parses and checks `text` for config `name`.
    ///
    /// # Errors
    /// [`InvalidConfig::BadValue`] naming `name` and the accepted range.
    pub fn parse(self, name: &str, text: &str) -> Result<Value, InvalidConfig> {
        let bad = || InvalidConfig::BadValue {
            name: name.to_owned(),
            value: text.to_owned(),
            expected: self.expected(),
        };
        let text = text.trim();
        match self {
            Self::Long { min, max } | Self::Int { min, max } => text
                .parse::<i64>()
                .ok()
                .filter(|n| (min..=max).contains(n))
                .map(Value::Long)
                .ok_or_else(bad),
            Self::Double { min, max } => text
                .parse::<f64>()
                .ok()
                .filter(|n| n.is_finite() && (min..=max).contains(n))
                .map(Value::Double)
                .ok_or_else(bad),
            Self::Bool => match text.to_ascii_lowercase().as_str() {
                "true" => Ok(Value::Bool(true)),
                "false" => Ok(Value::Bool(false)),
                _ => Err(bad()),
            },
            Self::Choice(words) => words
                .iter()
                .find(|w| w.eq_ignore_ascii_case(text))
                .map(|w| Value::Text(w))
                .ok_or_else(bad),
            Self::List(words) => {
                let mut items = Vec::new();
                for item in text.split(',').map(str::trim) {
                    let word = words
                        .iter()
                        .find(|w| w.eq_ignore_ascii_case(item))
                        .ok_or_else(bad)?;
                    if !items.contains(word) {
                        items.push(*word);
                    }
                }
                if items.is_empty() {
                    return Err(bad());
                }
                Ok(Value::List(items))
            }
        }
    }
}

impl Value {
    /// The value as stored and reported: Kafka's spelling, no whitespace.
    pub fn to_text(&self) -> String {
        match self {
            Self::Long(n) => n.to_string(),
            Self::Double(x) => format_double(*x),
            Self::Bool(b) => b.to_string(),
            Self::Text(w) => (*w).to_owned(),
            Self::List(items) => items.join(","),
        }
    }

    /// The number, for an INT or LONG.
    pub fn as_long(&self) -> Option<i64> {
        match self {
            Self::Long(n) => Some(*n),
            _ => None,
        }
    }
}

/// A double as Java's `Double.toString` writes the ones Kafka reports (`0.5`,
/// `1.7976931348623157E308`), so tools comparing with Kafka's defaults see the same text.
pub fn format_double(x: f64) -> String {
    if x != 0.0 && (x.abs() >= 1e7 || x.abs() < 1e-3) {
        let text = format!("{x:e}");
        let (mantissa, exponent) = text.split_once('e').unwrap_or((&text, "0"));
        let point = if mantissa.contains('.') { "" } else { ".0" };
        return format!("{mantissa}{point}E{exponent}");
    }
    format!("{x:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_checked_against_their_range() {
        let kind = Kind::Long { min: -1, max: 10 };
        assert_eq!(kind.parse("retention.ms", " 7 "), Ok(Value::Long(7)));
        assert_eq!(kind.parse("retention.ms", "-1"), Ok(Value::Long(-1)));
        let err = kind.parse("retention.ms", "11").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid value \"11\" for config retention.ms: a whole number between -1 and 10"
        );
        assert!(kind.parse("retention.ms", "1.5").is_err());
        assert!(kind.parse("retention.ms", "").is_err());
        let ratio = Kind::Double { min: 0.0, max: 1.0 };
        assert_eq!(ratio.parse("r", "0.25"), Ok(Value::Double(0.25)));
        assert!(ratio.parse("r", "1.5").is_err());
        assert!(ratio.parse("r", "NaN").is_err());
    }

    #[test]
    fn lists_and_choices_are_normalised() {
        let policy = Kind::List(&["compact", "delete"]);
        assert_eq!(
            policy.parse("cleanup.policy", "delete, compact").unwrap(),
            Value::List(vec!["delete", "compact"])
        );
        assert_eq!(
            policy
                .parse("cleanup.policy", "Compact,compact")
                .unwrap()
                .to_text(),
            "compact"
        );
        assert!(policy.parse("cleanup.policy", "").is_err());
        assert!(policy.parse("cleanup.policy", "compact,shred").is_err());
        let ts = Kind::Choice(&["CreateTime", "LogAppendTime"]);
        assert_eq!(
            ts.parse("t", "logappendtime"),
            Ok(Value::Text("LogAppendTime"))
        );
        assert!(ts.parse("t", "Now").is_err());
    }

    #[test]
    fn doubles_print_as_java_does() {
        assert_eq!(format_double(0.5), "0.5");
        assert_eq!(format_double(1.0), "1.0");
        assert_eq!(format_double(f64::MAX), "1.7976931348623157E308");
        assert_eq!(format_double(1e9), "1.0E9");
        let text = format_double(f64::MAX);
        assert_eq!(text.parse::<f64>().ok(), Some(f64::MAX));
    }
}
