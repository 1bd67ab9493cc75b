//! `${VAR}` interpolation in string values.
//!
//! The rules, documented in `docs/config.md`:
//!
//! - `${VAR}`: the variable's value. If `VAR` is unset, the value is
//!   *unresolved*: the walker decides what that means for the key (an
//!   upstream with an unresolved value is loaded but disabled, and requests
//!   routed to it get an error naming the variable; anywhere else it is a
//!   config error).
//! - `${VAR:-default}`: `default` when `VAR` is unset or empty.
//! - `${VAR:?message}`: a config error with `message` when `VAR` is unset or empty.
//! - `$$`: a literal `$`. A `$` not followed by `{` or `$` is kept as is.
//! - `${A:-${B}}` (a reference inside a default or message) is an error.
//!
//! Interpolation runs on parsed string scalars, never on raw YAML text, so a
//! value can never change the document's structure.

/// The outcome of interpolating one string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interpolated {
    /// The string with every reference replaced (unset ones by "").
    pub value: String,
    /// Variables that were referenced with plain `${VAR}` but are unset.
    pub unset: Vec<String>,
}

/// Why a string could not be interpolated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InterpolateError {
    /// `${` with no closing `}`.
    #[error("`${{` at byte {0} has no closing `}}`")]
    Unclosed(usize),
    /// `${}` or a name with characters outside `[A-Za-z0-9_]`.
    #[error("`{0}` is not a valid environment variable name (use letters, digits and `_`)")]
    BadName(String),
    /// `${A:-${B}}`: a reference inside a default or message.
    #[error("`${{{0}}}` nests a `${{…}}` inside it, which is not supported: use one variable per reference (e.g. set a default in the environment)")]
    Nested(String),
    /// `${VAR:?message}` with `VAR` unset or empty.
    #[error("environment variable {name} is required: {message}")]
    Required {
        /// The variable.
        name: String,
        /// The message written after `:?`.
        message: String,
    },
}

/// Interpolates `input`, looking variables up with `lookup`.
pub fn interpolate(
    input: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Interpolated, InterpolateError> {
    let mut value = String::with_capacity(input.len());
    let mut unset = Vec::new();
    let mut rest = input;
    while let Some(dollar) = rest.find('$') {
        value.push_str(&rest[..dollar]);
        let after = &rest[dollar + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            value.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let close = body.find('}').ok_or(InterpolateError::Unclosed(
                input.len() - rest.len() + dollar,
            ))?;
            let expr = &body[..close];
            rest = &body[close + 1..];
            if expr.contains("${") {
                return Err(InterpolateError::Nested(expr.to_owned()));
            }
            let (name, op) = match expr.find(':') {
                Some(colon) => (&expr[..colon], Some(&expr[colon + 1..])),
                None => (expr, None),
            };
            if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(InterpolateError::BadName(expr.to_owned()));
            }
            let found = lookup(name);
            let present = found.as_deref().filter(|v| !v.is_empty());
            match op {
                None => match found {
                    Some(v) => value.push_str(&v),
                    None => unset.push(name.to_owned()),
                },
                Some(op) if op.starts_with('-') => {
                    value.push_str(present.unwrap_or(&op[1..]));
                }
                Some(op) if op.starts_with('?') => match present {
                    Some(v) => value.push_str(v),
                    None => {
                        return Err(InterpolateError::Required {
                            name: name.to_owned(),
                            message: op[1..].to_owned(),
                        })
                    }
                },
                Some(_) => return Err(InterpolateError::BadName(expr.to_owned())),
            }
        } else {
            value.push('$');
            rest = after;
        }
    }
    value.push_str(rest);
    Ok(Interpolated { value, unset })
}

/// Looks variables up in the process environment.
pub fn from_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "KEY" => Some("sk-test-1".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    fn run(input: &str) -> Result<Interpolated, InterpolateError> {
        interpolate(input, &env)
    }

    #[test]
    fn a_reference_nested_in_a_default_is_an_error_not_literal_text() {
        assert_eq!(
            run("${NOPE:-${KEY}}"),
            Err(InterpolateError::Nested("NOPE:-${KEY".into()))
        );
        assert!(matches!(
            run("${NOPE:?see ${KEY}}"),
            Err(InterpolateError::Nested(_))
        ));
    }

    #[test]
    fn replaces_a_set_variable() {
        assert_eq!(run("Bearer ${KEY}").unwrap().value, "Bearer sk-test-1");
    }

    #[test]
    fn reports_an_unset_variable_as_unresolved() {
        let out = run("${NOPE}").unwrap();
        assert_eq!(out.value, "");
        assert_eq!(out.unset, vec!["NOPE".to_string()]);
    }

    #[test]
    fn uses_the_default_when_unset_or_empty() {
        assert_eq!(run("${NOPE:-x}").unwrap().value, "x");
        assert_eq!(run("${EMPTY:-x}").unwrap().value, "x");
        assert_eq!(run("${KEY:-x}").unwrap().value, "sk-test-1");
        assert_eq!(
            run("${NOPE:-}").unwrap(),
            Interpolated {
                value: String::new(),
                unset: vec![]
            }
        );
    }

    #[test]
    fn fails_a_required_variable_with_its_message() {
        assert_eq!(
            run("${NOPE:?set it to your key}"),
            Err(InterpolateError::Required {
                name: "NOPE".into(),
                message: "set it to your key".into()
            })
        );
    }

    #[test]
    fn keeps_dollars_that_are_not_references() {
        assert_eq!(run("a$b $$ ${KEY}$").unwrap().value, "a$b $ sk-test-1$");
    }

    #[test]
    fn rejects_malformed_references() {
        assert_eq!(run("x${KEY"), Err(InterpolateError::Unclosed(1)));
        assert_eq!(run("${}"), Err(InterpolateError::BadName(String::new())));
        assert_eq!(run("${A B}"), Err(InterpolateError::BadName("A B".into())));
        assert_eq!(run("${A:x}"), Err(InterpolateError::BadName("A:x".into())));
    }

    proptest! {
        #[test]
        fn text_without_dollars_is_unchanged(s in "[^$]*") {
            prop_assert_eq!(run(&s).unwrap().value, s);
        }

        #[test]
        fn never_panics(s in ".*") {
            let _ = run(&s);
        }

        #[test]
        fn escaped_dollars_round_trip(s in "[^$]*") {
            let escaped = s.replace('x', "$$");
            prop_assert_eq!(run(&escaped).unwrap().value, s.replace('x', "$"));
        }
    }
}
