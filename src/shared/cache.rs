//! Response-cache entries in Redis, with their TTL.

use std::time::Duration;

use bytes::Bytes;

use super::{Redis, Unavailable};
use crate::cache::{Entry, Key};

const MAGIC: &[u8; 4] = b"SYC1";

/// An entry as stored: `SYC1`, flags (1 JSON, 2 stream, 4 stream with
/// usage), the JSON's length (u32, big-endian), the JSON, the stream.
pub fn encode_entry(entry: &Entry) -> Vec<u8> {
    let json = entry.json.as_deref().unwrap_or_default();
    let (sse, with_usage) = entry
        .sse
        .as_ref()
        .map_or((&[][..], false), |(b, u)| (&b[..], *u));
    let flags = u8::from(entry.json.is_some())
        | (u8::from(entry.sse.is_some()) << 1)
        | (u8::from(with_usage) << 2);
    let mut out = Vec::with_capacity(9 + json.len() + sse.len());
    out.extend_from_slice(MAGIC);
    out.push(flags);
    out.extend_from_slice(&(json.len() as u32).to_be_bytes());
    out.extend_from_slice(json);
    out.extend_from_slice(sse);
    out
}

/// The entry [`encode_entry`] wrote; `None` for anything else.
pub fn decode_entry(bytes: &[u8]) -> Option<Entry> {
    let rest = bytes.strip_prefix(MAGIC)?;
    let (&flags, rest) = rest.split_first()?;
    let len = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
    let rest = &rest[4..];
    let json = rest.get(..len)?;
    let sse = &rest[len..];
    Some(Entry {
        json: (flags & 1 != 0).then(|| Bytes::copy_from_slice(json)),
        sse: (flags & 2 != 0).then(|| (Bytes::copy_from_slice(sse), flags & 4 != 0)),
    })
}

fn hex(key: &Key) -> String {
    key.iter().map(|b| format!("{b:02x}")).collect()
}

impl Redis {
    /// The entry kept for `key`, if any.
    ///
    /// # Errors
    /// [`Unavailable`] when Redis can't be used (the caller treats it as a miss).
    pub async fn cache_get(&self, key: &Key) -> Result<Option<Entry>, Unavailable> {
        let name = self.key(&format!("c:{}", hex(key)));
        let found: Option<Vec<u8>> = self
            .run("cache_get", |mut conn| async move {
                redis::cmd("GET").arg(&name).query_async(&mut conn).await
            })
            .await?;
        Ok(found.as_deref().and_then(decode_entry))
    }

    /// Keeps `entry` for `key` for `ttl`.
    ///
    /// # Errors
    /// [`Unavailable`] when Redis can't be used (the entry is only local).
    pub async fn cache_put(
        &self,
        key: &Key,
        entry: &Entry,
        ttl: Duration,
    ) -> Result<(), Unavailable> {
        let name = self.key(&format!("c:{}", hex(key)));
        let value = encode_entry(entry);
        let ms = ttl.as_millis().max(1) as u64;
        self.run("cache_put", |mut conn| async move {
            redis::cmd("SET")
                .arg(&name)
                .arg(value)
                .arg("PX")
                .arg(ms)
                .query_async::<()>(&mut conn)
                .await
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip() {
        for entry in [
            Entry {
                json: Some(Bytes::from_static(b"{}")),
                sse: None,
            },
            Entry {
                json: None,
                sse: Some((Bytes::from_static(b"data: [DONE]\n\n"), true)),
            },
            Entry {
                json: Some(Bytes::from_static(b"{\"a\":1}")),
                sse: Some((Bytes::from_static(b"data: x\n\n"), false)),
            },
        ] {
            let back = decode_entry(&encode_entry(&entry)).expect("decodes");
            assert_eq!(back.json, entry.json);
            assert_eq!(back.sse, entry.sse);
        }
        assert!(decode_entry(b"nope").is_none());
        assert!(
            decode_entry(b"SYC1\x01\x00\x00\x00\x09{}").is_none(),
            "a length past the end"
        );
    }
}
