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

/// Optimal string alignment distance (Levenshtein plus adjacent swaps), so a
/// transposition such as `eats`/`east` counts as one edit.
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut rows = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in rows[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (rows[i - 1][j] + 1)
                .min(rows[i][j - 1] + 1)
                .min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = best;
        }
    }
    rows[a.len()][b.len()]
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
