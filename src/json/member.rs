//! Where a top-level member's value starts, by a structural scan.

/// Where the value of member `key` starts, when `json` starts with an
/// object that has that key (spelled without escapes) at its top level.
pub fn member(json: &[u8], key: &[u8]) -> Option<usize> {
    if json.first() != Some(&b'{') {
        return None;
    }
    let mut depth = 0usize;
    let mut i = 0;
    while let Some(&b) = json.get(i) {
        match b {
            b'"' => {
                let start = i + 1;
                let end = string_end(json, start)?;
                i = end + 1;
                if depth == 1 {
                    let rest = skip_ws(&json[i..]);
                    if let Some(after) = rest.strip_prefix(b":") {
                        if &json[start..end] == key {
                            return Some(json.len() - skip_ws(after).len());
                        }
                    }
                }
                continue;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return None;
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// The index of the quote that closes the string whose content starts at `i`.
fn string_end(json: &[u8], mut i: usize) -> Option<usize> {
    loop {
        let at = i + memchr::memchr2(b'"', b'\\', json.get(i..)?)?;
        if json[at] == b'"' {
            return Some(at);
        }
        i = at + 2;
    }
}

/// `bytes` without its leading JSON whitespace (space, tab, LF, CR).
pub fn skip_ws(bytes: &[u8]) -> &[u8] {
    let n = bytes
        .iter()
        .take_while(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        .count();
    &bytes[n..]
}
