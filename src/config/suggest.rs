//! "Did you mean …?" for misspelt keys and names.

/// The closest candidate to `input`, if it is close enough to be a likely typo.
///
/// "Close enough" is an edit distance of at most a third of the input's length
/// (at least 1): `azure-eats` finds `azure-east`, but `foo` does not find `bar`.
pub fn closest<'a, I>(input: &str, candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    let limit = (input.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|candidate| (distance(input, candidate), candidate))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, candidate)| candidate)
}

/// `; did you mean "x"?` or nothing.
pub fn hint<'a, I>(input: &str, candidates: I) -> String
where
    I: IntoIterator<Item = &'a str>,
{
    match closest(input, candidates) {
        Some(candidate) => format!("; did you mean {candidate:?}?"),
        None => String::new(),
    }
}

/// Optimal string alignment distance (Levenshtein plus adjacent swaps), over
/// characters, so a transposition such as `eats`/`east` counts as one edit.
fn distance(a: &str, b: &str) -> usize {
    strsim::osa_distance(a, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_a_transposed_name() {
        assert_eq!(
            closest("azure-eats", ["openai", "azure-east"]),
            Some("azure-east")
        );
    }

    #[test]
    fn finds_a_misspelt_key() {
        assert_eq!(
            closest("base_ulr", ["base_url", "api_key"]),
            Some("base_url")
        );
        assert_eq!(
            closest("tagrets", ["targets", "fallbacks"]),
            Some("targets")
        );
    }

    #[test]
    fn ignores_unrelated_words() {
        assert_eq!(closest("foo", ["bar", "base_url"]), None);
        assert_eq!(hint("zzz", ["models"]), "");
    }
}
