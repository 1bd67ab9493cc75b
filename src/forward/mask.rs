//! Masks the upstream's own key in an error answer passed to the client.
//!
//! Some servers quote the credential they were sent in a 401 or 403
//! (`"invalid key sk-…"`); relayed untouched, the router's key would reach
//! its callers. A [`Masker`] replaces every occurrence as the body streams,
//! holding back only the few bytes that could be the start of a match cut
//! by a chunk boundary.

use bytes::{Bytes, BytesMut};

/// What the key becomes.
const MASK: &[u8] = b"[key hidden by switchyard]";

/// Replaces `needle` in a byte stream fed in chunks.
pub struct Masker {
    needle: Bytes,
    finder: memchr::memmem::Finder<'static>,
    /// The end of the previous chunk that may start a match.
    carry: BytesMut,
}

impl Masker {
    /// A masker for `needle` (`None` for one too short to mask sensibly).
    pub fn new(needle: &[u8]) -> Option<Masker> {
        (needle.len() >= 8).then(|| Masker {
            needle: Bytes::copy_from_slice(needle),
            finder: memchr::memmem::Finder::new(needle).into_owned(),
            carry: BytesMut::new(),
        })
    }

    /// The next chunk with the key replaced; the last `needle.len() - 1`
    /// bytes may be held back until the next chunk or [`Masker::finish`].
    pub fn push(&mut self, chunk: Bytes) -> Bytes {
        if self.carry.is_empty() && self.finder.find(&chunk).is_none() {
            // The common case: no key here; hold back only a possible prefix.
            let keep = self.tail_len(&chunk);
            if keep == 0 {
                return chunk;
            }
            let mut chunk = chunk;
            let tail = chunk.split_off(chunk.len() - keep);
            self.carry.extend_from_slice(&tail);
            return chunk;
        }
        self.carry.extend_from_slice(&chunk);
        let text = std::mem::take(&mut self.carry);
        let mut out = BytesMut::with_capacity(text.len());
        let mut rest = &text[..];
        while let Some(at) = self.finder.find(rest) {
            out.extend_from_slice(&rest[..at]);
            out.extend_from_slice(MASK);
            rest = &rest[at + self.needle.len()..];
        }
        let keep = self.tail_len(rest);
        out.extend_from_slice(&rest[..rest.len() - keep]);
        self.carry.extend_from_slice(&rest[rest.len() - keep..]);
        out.freeze()
    }

    /// Nothing is held back.
    pub fn is_empty(&self) -> bool {
        self.carry.is_empty()
    }

    /// Whatever was held back, at the end of the stream.
    pub fn finish(&mut self) -> Bytes {
        std::mem::take(&mut self.carry).freeze()
    }

    /// How many bytes at the end of `text` are a proper prefix of the key.
    fn tail_len(&self, text: &[u8]) -> usize {
        let longest = (self.needle.len() - 1).min(text.len());
        (1..=longest)
            .rev()
            .find(|&n| text[text.len() - n..] == self.needle[..n])
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked(needle: &str, chunks: &[&str]) -> String {
        let mut masker = Masker::new(needle.as_bytes()).unwrap();
        let mut out = Vec::new();
        for chunk in chunks {
            out.extend_from_slice(&masker.push(Bytes::copy_from_slice(chunk.as_bytes())));
        }
        out.extend_from_slice(&masker.finish());
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn the_key_is_hidden_wherever_the_chunks_cut_it() {
        let body = r#"{"error":{"message":"Incorrect API key provided: sk-secret-123. Or sk-secret-123?"}}"#;
        let want = body.replace("sk-secret-123", "[key hidden by switchyard]");
        for cut in 0..=body.len() {
            for cut2 in cut..=body.len() {
                let chunks = [&body[..cut], &body[cut..cut2], &body[cut2..]];
                assert_eq!(masked("sk-secret-123", &chunks), want, "cuts {cut} {cut2}");
            }
        }
    }

    #[test]
    fn a_body_without_the_key_passes_unchanged() {
        let body = "no key here, only sk-secret-12 and sk-";
        assert_eq!(masked("sk-secret-123", &[body]), body);
        assert!(Masker::new(b"short").is_none());
    }
}
