//! Changes to a set of overrides: AlterConfigs' replacement and IncrementalAlterConfigs'
//! SET, DELETE, APPEND and SUBTRACT, as pure functions from the old set to the new one.
//!
//! Every value of the result has been checked and normalised under its kind; a name given
//! twice, an unknown name, a bad value, or APPEND/SUBTRACT on a non-list config refuses the
//! whole change (Kafka applies a resource's changes all or nothing).

use std::collections::BTreeMap;

use super::value::{InvalidConfig, Kind, Value};

/// One IncrementalAlterConfigs operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigOp {
    /// The config.
    pub name: String,
    /// Kafka's code: 0 SET, 1 DELETE, 2 APPEND, 3 SUBTRACT.
    pub op: i8,
    /// The value (ignored by DELETE).
    pub value: Option<String>,
}

/// How a scope's names are checked and what they hold now.
pub trait Scope {
    /// The kind of config `name`, or why it cannot be changed here.
    ///
    /// # Errors
    /// An unknown or read-only name.
    fn kind(&self, name: &str) -> Result<Kind, InvalidConfig>;

    /// The value in force of `name` (for APPEND and SUBTRACT on a config not overridden).
    fn in_force(&self, name: &str) -> Option<String>;
}

fn parse(scope: &dyn Scope, name: &str, value: Option<&str>) -> Result<String, InvalidConfig> {
    let kind = scope.kind(name)?;
    let value = value.ok_or_else(|| InvalidConfig::Null {
        name: name.to_owned(),
    })?;
    Ok(kind.parse(name, value)?.to_text())
}

fn refuse_duplicates<'a>(names: impl Iterator<Item = &'a str>) -> Result<(), InvalidConfig> {
    let mut seen = std::collections::HashSet::new();
    for name in names {
        if !seen.insert(name) {
            return Err(InvalidConfig::Duplicate {
                name: name.to_owned(),
            });
        }
    }
    Ok(())
}

/// AlterConfigs: the whole set of overrides becomes `entries`.
///
/// # Errors
/// The first entry refused.
pub fn replace_all(
    scope: &dyn Scope,
    entries: &[(String, Option<String>)],
) -> Result<BTreeMap<String, String>, InvalidConfig> {
    refuse_duplicates(entries.iter().map(|(n, _)| n.as_str()))?;
    entries
        .iter()
        .map(|(name, value)| Ok((name.clone(), parse(scope, name, value.as_deref())?)))
        .collect()
}

/// IncrementalAlterConfigs: `ops` applied to `current`.
///
/// # Errors
/// The first operation refused.
pub fn incremental(
    scope: &dyn Scope,
    current: &BTreeMap<String, String>,
    ops: &[ConfigOp],
) -> Result<BTreeMap<String, String>, InvalidConfig> {
    refuse_duplicates(ops.iter().map(|o| o.name.as_str()))?;
    let mut next = current.clone();
    for op in ops {
        let name = &op.name;
        match op.op {
            0 => {
                next.insert(name.clone(), parse(scope, name, op.value.as_deref())?);
            }
            1 => {
                scope.kind(name)?;
                next.remove(name);
            }
            2 | 3 => {
                let kind = scope.kind(name)?;
                if !matches!(kind, Kind::List(_)) {
                    return Err(InvalidConfig::NotAList { name: name.clone() });
                }
                let given = op
                    .value
                    .as_deref()
                    .ok_or_else(|| InvalidConfig::Null { name: name.clone() })?;
                let Value::List(given) = kind.parse(name, given)? else {
                    return Err(InvalidConfig::NotAList { name: name.clone() });
                };
                let old = next
                    .get(name)
                    .cloned()
                    .or_else(|| scope.in_force(name))
                    .unwrap_or_default();
                let mut items: Vec<String> = old
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect();
                if op.op == 2 {
                    for item in given {
                        if !items.iter().any(|i| i == item) {
                            items.push(item.to_owned());
                        }
                    }
                } else {
                    items.retain(|i| !given.contains(&i.as_str()));
                }
                next.insert(name.clone(), kind.parse(name, &items.join(","))?.to_text());
            }
            other => {
                return Err(InvalidConfig::UnknownOperation {
                    name: name.clone(),
                    op: other,
                });
            }
        }
    }
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topics::config::{ConfigSnapshot, TopicScope};

    fn op(name: &str, op: i8, value: Option<&str>) -> ConfigOp {
        ConfigOp {
            name: name.to_owned(),
            op,
            value: value.map(str::to_owned),
        }
    }

    #[test]
    fn set_delete_append_subtract() {
        let snapshot = ConfigSnapshot::kafka_defaults();
        let scope = TopicScope(&snapshot);
        let current = BTreeMap::from([("retention.ms".to_owned(), "1000".to_owned())]);
        let next = incremental(
            &scope,
            &current,
            &[
                op("retention.ms", 1, None),
                op("segment.ms", 0, Some("5000")),
                op("cleanup.policy", 2, Some("compact")),
            ],
        )
        .unwrap();
        assert_eq!(
            next,
            BTreeMap::from([
                ("cleanup.policy".to_owned(), "delete,compact".to_owned()),
                ("segment.ms".to_owned(), "5000".to_owned()),
            ])
        );
        let next = incremental(&scope, &next, &[op("cleanup.policy", 3, Some("delete"))]).unwrap();
        assert_eq!(next["cleanup.policy"], "compact");
        // Subtracting the last item leaves an empty list: refused.
        assert!(matches!(
            incremental(&scope, &next, &[op("cleanup.policy", 3, Some("compact"))]),
            Err(InvalidConfig::BadValue { .. })
        ));
    }

    #[test]
    fn refusals_name_the_key() {
        let snapshot = ConfigSnapshot::kafka_defaults();
        let scope = TopicScope(&snapshot);
        let none = BTreeMap::new();
        let err = incremental(&scope, &none, &[op("retention.ms", 2, Some("5"))]).unwrap_err();
        assert!(matches!(err, InvalidConfig::NotAList { .. }), "{err}");
        let err = incremental(&scope, &none, &[op("no.such", 0, Some("5"))]).unwrap_err();
        assert!(err.to_string().contains("no.such"), "{err}");
        let err = incremental(&scope, &none, &[op("segment.bytes", 0, Some("100"))]).unwrap_err();
        assert!(err.to_string().contains("between 4096 and"), "{err}");
        let err = incremental(&scope, &none, &[op("retention.ms", 9, Some("5"))]).unwrap_err();
        assert!(
            matches!(err, InvalidConfig::UnknownOperation { .. }),
            "{err}"
        );
        let err = replace_all(
            &scope,
            &[
                ("retention.ms".to_owned(), Some("1".to_owned())),
                ("retention.ms".to_owned(), Some("2".to_owned())),
            ],
        )
        .unwrap_err();
        assert!(matches!(err, InvalidConfig::Duplicate { .. }), "{err}");
        let err = replace_all(&scope, &[("retention.ms".to_owned(), None)]).unwrap_err();
        assert!(matches!(err, InvalidConfig::Null { .. }), "{err}");
    }
}
