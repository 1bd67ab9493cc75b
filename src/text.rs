//! Cutting text to a byte budget without splitting a character.
//!
//! Slicing a `str` at a byte index that is not a character boundary panics,
//! and the release profile aborts on panic: every cut of text that came
//! from a client or an upstream goes through here.

use std::borrow::Cow;

/// The longest prefix of `text` that is at most `max` bytes long and ends
/// on a character boundary.
pub fn prefix_within(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    // A UTF-8 character is at most 4 bytes: a boundary is within 3 of `max`.
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// At most `max` bytes of `bytes` as text: invalid UTF-8 becomes U+FFFD, and
/// a character cut by the budget is left out rather than mangled.
pub fn lossy_prefix(bytes: &[u8], max: usize) -> Cow<'_, str> {
    let mut end = bytes.len().min(max);
    // A continuation byte right after the cut means the cut splits a
    // character: back up to its first byte (a character has at most 4).
    let floor = end.saturating_sub(3);
    while end > floor && end < bytes.len() && bytes[end] & 0xC0 == 0x80 {
        end -= 1;
    }
    let cut = &bytes[..end];
    String::from_utf8_lossy(cut)
}

/// `text` with its first character in upper case (for a message that
/// starts a sentence).
pub fn capitalize(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prefix_never_splits_a_character() {
        let text = "a中😀b";
        for max in 0..=text.len() + 2 {
            let prefix = prefix_within(text, max);
            assert!(prefix.len() <= max && text.starts_with(prefix), "max {max}");
        }
        assert_eq!(prefix_within(text, 3), "a");
        assert_eq!(prefix_within(text, 4), "a中");
        assert_eq!(prefix_within(text, 7), "a中");
        assert_eq!(prefix_within(text, 8), "a中😀");
    }

    #[test]
    fn a_lossy_prefix_drops_a_cut_character_and_keeps_invalid_bytes_visible() {
        let text = "a中😀b".as_bytes();
        for max in 0..=text.len() + 2 {
            let prefix = lossy_prefix(text, max);
            assert!(prefix.len() <= max.min(text.len()), "max {max}");
            assert!(!prefix.contains('\u{FFFD}'), "max {max}: {prefix:?}");
        }
        assert_eq!(lossy_prefix(text, 6), "a中");
        assert_eq!(lossy_prefix(b"\xffok", 2), "\u{FFFD}o");
    }

    proptest::proptest! {
        #[test]
        fn prefixes_of_any_text_are_prefixes(text in ".*", max in 0usize..64) {
            let prefix = prefix_within(&text, max);
            proptest::prop_assert!(prefix.len() <= max && text.starts_with(prefix));
            proptest::prop_assert!(prefix.len() + 3 >= max.min(text.len()));
            let lossy = lossy_prefix(text.as_bytes(), max);
            proptest::prop_assert!(text.starts_with(&*lossy));
        }
    }
}
