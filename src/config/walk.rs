//! A walker over the parsed YAML that collects every mistake with its key path.
//!
//! serde's `deny_unknown_fields` stops at the first error and knows no paths,
//! so the schema is read through this walker instead: each accessor checks one
//! value, records a [`ConfigError`] naming its [`KeyPath`] when the value is
//! wrong, and carries on, so `switchyard check` reports everything at once.

use std::time::Duration;

use serde_yaml::{Mapping, Value};

use super::interpolate::{interpolate, InterpolateError};
use super::keypath::KeyPath;
use super::suggest;
use crate::units;

/// One mistake in the config, with the key it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Where the mistake is.
    pub path: KeyPath,
    /// What is wrong, and the fix where one is known.
    pub message: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// The walk's findings: hard errors and warnings.
pub struct Walk<'env> {
    /// Mistakes that make the config unusable.
    pub errors: Vec<ConfigError>,
    /// Things worth saying that do not stop the config from loading.
    pub warnings: Vec<ConfigError>,
    lookup: &'env dyn Fn(&str) -> Option<String>,
}

/// A string value after interpolation.
pub struct Text {
    /// The interpolated value.
    pub value: String,
    /// Variables referenced as `${VAR}` that are unset.
    pub unset: Vec<String>,
}

/// A YAML mapping whose keys were checked against the allowed set.
pub struct Fields<'a> {
    /// The mapping's own path.
    pub path: KeyPath,
    map: &'a Mapping,
}

impl<'a> Fields<'a> {
    /// The value at `key` and its path, if present and not null.
    pub fn get(&self, key: &str) -> Option<(&'a Value, KeyPath)> {
        self.map
            .get(key)
            .filter(|v| !v.is_null())
            .map(|v| (v, self.path.key(key)))
    }
}

/// Human name of a YAML value's type, for "expected X, found Y".
pub fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing (null)",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

impl<'env> Walk<'env> {
    /// A walk that looks `${VAR}` up with `lookup`.
    pub fn new(lookup: &'env dyn Fn(&str) -> Option<String>) -> Walk<'env> {
        Walk {
            errors: Vec::new(),
            warnings: Vec::new(),
            lookup,
        }
    }

    /// The environment variable `name`, as `${name}` would read it.
    pub fn env(&self, name: &str) -> Option<String> {
        (self.lookup)(name)
    }

    /// Records an error at `path`.
    pub fn error(&mut self, path: &KeyPath, message: impl Into<String>) {
        self.errors.push(ConfigError {
            path: path.clone(),
            message: message.into(),
        });
    }

    /// Records a warning at `path`.
    pub fn warn(&mut self, path: &KeyPath, message: impl Into<String>) {
        self.warnings.push(ConfigError {
            path: path.clone(),
            message: message.into(),
        });
    }

    /// Reads a mapping whose keys must all be in `allowed`; an unknown key is
    /// an error with a "did you mean" when one of `allowed` is close.
    pub fn fields<'a>(
        &mut self,
        value: &'a Value,
        path: &KeyPath,
        allowed: &[&str],
    ) -> Option<Fields<'a>> {
        let Value::Mapping(map) = value else {
            self.error(path, format!("expected a mapping, found {}", kind(value)));
            return None;
        };
        for key in map.keys() {
            match key.as_str() {
                Some(name) if allowed.contains(&name) => {}
                Some(name) => {
                    let hint = suggest::hint(name, allowed.iter().copied());
                    let message = if hint.is_empty() {
                        format!("unknown key (expected one of: {})", allowed.join(", "))
                    } else {
                        format!("unknown key{hint}")
                    };
                    self.error(&path.key(name), message);
                }
                None => self.error(path, format!("keys must be strings, found {}", kind(key))),
            }
        }
        Some(Fields {
            path: path.clone(),
            map,
        })
    }

    /// Reads a mapping with free-form string keys (names of models, upstreams,
    /// headers), in document order.
    pub fn named<'a>(&mut self, value: &'a Value, path: &KeyPath) -> Vec<(String, &'a Value)> {
        let Value::Mapping(map) = value else {
            self.error(path, format!("expected a mapping, found {}", kind(value)));
            return Vec::new();
        };
        let mut out = Vec::with_capacity(map.len());
        for (key, value) in map {
            match key {
                Value::String(name) => out.push((name.clone(), value)),
                // YAML reads `1.5:` or `true:` as numbers and booleans; a model
                // called `1.5` is plausible, so say how to keep it a string.
                Value::Number(_) | Value::Bool(_) => {
                    let name = serde_yaml::to_string(key).unwrap_or_default();
                    let name = name.trim();
                    self.error(
                        &path.key(name),
                        format!(
                            "this name is read as {}; quote it (\"{name}\") to use it as a name",
                            kind(key)
                        ),
                    );
                }
                other => self.error(
                    path,
                    format!("names must be strings, found {}", kind(other)),
                ),
            }
        }
        out
    }

    /// Reads a list.
    pub fn list<'a>(&mut self, value: &'a Value, path: &KeyPath) -> Vec<(&'a Value, KeyPath)> {
        match value {
            Value::Sequence(items) => items
                .iter()
                .enumerate()
                .map(|(i, v)| (v, path.index(i)))
                .collect(),
            other => {
                self.error(path, format!("expected a list, found {}", kind(other)));
                Vec::new()
            }
        }
    }

    /// Reads a string (numbers and booleans are accepted as their text, since
    /// YAML turns `api_version: 2024-10-21`-like values into other types) and
    /// interpolates `${VAR}`.
    pub fn text(&mut self, value: &Value, path: &KeyPath) -> Option<Text> {
        let raw = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            other => {
                self.error(path, format!("expected a string, found {}", kind(other)));
                return None;
            }
        };
        match interpolate(&raw, self.lookup) {
            Ok(out) => Some(Text {
                value: out.value,
                unset: out.unset,
            }),
            Err(err @ InterpolateError::Required { .. }) => {
                self.error(path, err.to_string());
                None
            }
            Err(err) => {
                self.error(path, format!("bad ${{…}} reference: {err}"));
                None
            }
        }
    }

    /// Reads a string in which an unset `${VAR}` is an error (settings that
    /// have no safe "disabled" meaning, such as router keys).
    pub fn strict_text(&mut self, value: &Value, path: &KeyPath) -> Option<String> {
        let text = self.text(value, path)?;
        if let Some(var) = text.unset.first() {
            self.error(
                path,
                format!(
                    "environment variable {var} is not set (set it, or write ${{{var}:-default}})"
                ),
            );
            return None;
        }
        Some(text.value)
    }

    /// Reads a duration such as `30s`.
    pub fn duration(&mut self, value: &Value, path: &KeyPath) -> Option<Duration> {
        let text = self.strict_text(value, path)?;
        match units::parse_duration(&text) {
            Ok(d) => Some(d),
            Err(message) => {
                self.error(path, message);
                None
            }
        }
    }

    /// Reads a duration of at least `min` (a zero timeout or interval
    /// would fail every request or probe in a tight loop).
    pub fn duration_at_least(
        &mut self,
        value: &Value,
        path: &KeyPath,
        min: Duration,
    ) -> Option<Duration> {
        let d = self.duration(value, path)?;
        if d < min {
            self.error(
                path,
                format!("must be at least {}", units::format_duration(min)),
            );
            return None;
        }
        Some(d)
    }

    /// Reads a byte size such as `16MiB`.
    pub fn bytes(&mut self, value: &Value, path: &KeyPath) -> Option<u64> {
        let text = self.strict_text(value, path)?;
        match units::parse_bytes(&text) {
            Ok(n) => Some(n),
            Err(message) => {
                self.error(path, message);
                None
            }
        }
    }

    /// Reads a whole number in `range`.
    pub fn number(
        &mut self,
        value: &Value,
        path: &KeyPath,
        range: std::ops::RangeInclusive<u64>,
    ) -> Option<u64> {
        let n = match value {
            Value::Number(n) => n.as_u64(),
            Value::String(_) => self.strict_text(value, path)?.trim().parse().ok(),
            _ => None,
        };
        match n {
            Some(n) if range.contains(&n) => Some(n),
            _ => {
                self.error(
                    path,
                    format!(
                        "expected a whole number from {} to {}, found {}",
                        range.start(),
                        range.end(),
                        match value {
                            Value::Number(n) => n.to_string(),
                            Value::String(s) => format!("{s:?}"),
                            other => kind(other).to_owned(),
                        }
                    ),
                );
                None
            }
        }
    }

    /// Reads a non-negative number (integer or decimal).
    pub fn float(&mut self, value: &Value, path: &KeyPath) -> Option<f64> {
        let n = match value {
            Value::Number(n) => n.as_f64(),
            Value::String(_) => self.strict_text(value, path)?.trim().parse().ok(),
            _ => None,
        };
        match n {
            Some(n) if n.is_finite() && n >= 0.0 => Some(n),
            _ => {
                self.error(
                    path,
                    format!("expected a number of 0 or more, found {}", kind(value)),
                );
                None
            }
        }
    }

    /// Reads a list of strings (a single string is accepted as a list of one).
    pub fn strings(&mut self, value: &Value, path: &KeyPath) -> Vec<(String, KeyPath)> {
        if let Value::String(_) = value {
            return self
                .strict_text(value, path)
                .map(|s| vec![(s, path.clone())])
                .unwrap_or_default();
        }
        self.list(value, path)
            .into_iter()
            .filter_map(|(v, p)| self.strict_text(v, &p).map(|s| (s, p)))
            .collect()
    }
}
