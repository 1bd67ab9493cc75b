//! Key paths as users write them: `models."gpt-4o".targets[1].upstream`.
//!
//! Leaf checks never build paths themselves; the walker in `walk` extends
//! the path as it descends, so every message names its key the same way.

use std::fmt;

/// One step into the YAML document.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Key(String),
    Index(usize),
}

/// Where a value sits in `router.yaml`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeyPath(Vec<Segment>);

impl KeyPath {
    /// The document root.
    pub fn root() -> KeyPath {
        KeyPath(Vec::new())
    }

    /// This path extended by a mapping key.
    pub fn key(&self, key: &str) -> KeyPath {
        let mut segments = self.0.clone();
        segments.push(Segment::Key(key.to_owned()));
        KeyPath(segments)
    }

    /// This path extended by a sequence index.
    pub fn index(&self, index: usize) -> KeyPath {
        let mut segments = self.0.clone();
        segments.push(Segment::Index(index));
        KeyPath(segments)
    }
}

/// Keys made only of these characters are printed bare; others are quoted,
/// so `models."qwen2.5:0.5b"` cannot be misread as three nested keys.
fn is_bare(key: &str) -> bool {
    !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(top level)");
        }
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Key(key) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    if is_bare(key) {
                        f.write_str(key)?;
                    } else {
                        write!(f, "{key:?}")?;
                    }
                }
                Segment::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_keys_that_are_not_identifiers() {
        let path = KeyPath::root()
            .key("models")
            .key("gpt-4o")
            .key("targets")
            .index(1)
            .key("upstream");
        assert_eq!(path.to_string(), r#"models."gpt-4o".targets[1].upstream"#);
    }

    #[test]
    fn names_the_top_level() {
        assert_eq!(KeyPath::root().to_string(), "(top level)");
    }
}
