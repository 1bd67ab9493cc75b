//! `EventStreamDecoder`: frames written by `aws-smithy-eventstream`'s
//! writer, decoded across every split point; CRC, length and partial-frame
//! failures.

use aws_smithy_eventstream::frame::write_message_to;
use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
use aws_smithy_types::str_bytes::StrBytes;

use super::super::{DecodeError, EventStreamDecoder, StreamMessage, MAX_MESSAGE_BYTES};

/// One frame with string headers and a payload, as AWS writes it.
pub(super) fn frame(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
    let mut message = Message::new(payload.to_vec());
    for (name, value) in headers {
        message = message.add_header(Header::new(
            StrBytes::from(name.to_string()),
            HeaderValue::String(StrBytes::from(value.to_string())),
        ));
    }
    let mut out = Vec::new();
    write_message_to(&message, &mut out).expect("writes");
    out
}

/// An `event` frame as ConverseStream sends it.
pub(super) fn event(event_type: &str, payload: &str) -> Vec<u8> {
    frame(
        &[
            (":event-type", event_type),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ],
        payload.as_bytes(),
    )
}

/// (message type, event type, payload) of every message decoded from `chunks`.
type Owned = (String, String, Vec<u8>);

fn decode(chunks: &[&[u8]]) -> (Result<Vec<Owned>, DecodeError>, bool) {
    let mut decoder = EventStreamDecoder::new();
    let mut got = Vec::new();
    for chunk in chunks {
        let fed = decoder.feed(chunk, |m: StreamMessage<'_>| {
            got.push((
                m.message_type.to_owned(),
                m.event_type.to_owned(),
                m.payload.to_vec(),
            ))
        });
        if let Err(e) = fed {
            return (Err(e), decoder.finish());
        }
    }
    (Ok(got), decoder.finish())
}

fn stream() -> (Vec<u8>, Vec<Owned>) {
    let frames = [
        (
            event("messageStart", r#"{"p":"abcd","role":"assistant"}"#),
            "event",
            "messageStart",
            r#"{"p":"abcd","role":"assistant"}"#,
        ),
        (
            event(
                "contentBlockDelta",
                r#"{"contentBlockIndex":0,"delta":{"text":"Hé"},"p":"ab"}"#,
            ),
            "event",
            "contentBlockDelta",
            r#"{"contentBlockIndex":0,"delta":{"text":"Hé"},"p":"ab"}"#,
        ),
        (
            frame(
                &[
                    (":message-type", "exception"),
                    (":exception-type", "throttlingException"),
                    (":content-type", "application/json"),
                ],
                br#"{"message":"slow"}"#,
            ),
            "exception",
            "throttlingException",
            r#"{"message":"slow"}"#,
        ),
        (
            frame(
                &[
                    (":message-type", "error"),
                    (":error-code", "InternalFailure"),
                    (":error-message", "boom"),
                ],
                b"",
            ),
            "error",
            "InternalFailure",
            "boom",
        ),
        (frame(&[], b""), "", "", ""),
    ];
    let mut bytes = Vec::new();
    let mut expected = Vec::new();
    for (frame, kind, name, payload) in frames {
        bytes.extend_from_slice(&frame);
        expected.push((
            kind.to_owned(),
            name.to_owned(),
            payload.as_bytes().to_vec(),
        ));
    }
    (bytes, expected)
}

#[test]
fn whole_and_split_at_every_point_and_byte_by_byte() {
    let (bytes, expected) = stream();
    let (got, finished) = decode(&[&bytes]);
    assert_eq!(got.unwrap(), expected);
    assert!(finished);
    for at in 0..=bytes.len() {
        let (a, b) = bytes.split_at(at);
        let (got, finished) = decode(&[a, b]);
        assert_eq!(got.unwrap(), expected, "split at {at}");
        assert!(finished);
    }
    for (i, j) in [(3, 40), (12, 13), (11, 200), (50, 51)] {
        let (i, j) = (i.min(bytes.len()), j.min(bytes.len()));
        let (got, _) = decode(&[&bytes[..i], &bytes[i..j], &bytes[j..]]);
        assert_eq!(got.unwrap(), expected, "split at {i} and {j}");
    }
    let bytewise: Vec<&[u8]> = bytes.chunks(1).collect();
    let (got, finished) = decode(&bytewise);
    assert_eq!(got.unwrap(), expected);
    assert!(finished);
}

#[test]
fn a_partial_frame_is_left_over() {
    let (bytes, expected) = stream();
    for cut in [1, 11, 12, 13, bytes.len() - 1] {
        let (got, finished) = decode(&[&bytes[..bytes.len() - cut]]);
        assert!(!finished, "cut {cut}");
        let got = got.unwrap();
        assert!(got.len() < expected.len());
        assert_eq!(got[..], expected[..got.len()]);
    }
    let (got, finished) = decode(&[]);
    assert_eq!(got.unwrap(), vec![]);
    assert!(finished);
}

#[test]
fn a_bad_prelude_crc_is_refused_as_soon_as_the_prelude_is_in() {
    let mut bytes = event("messageStart", "{}");
    bytes[9] ^= 1;
    let (got, finished) = decode(&[&bytes[..12]]);
    assert_eq!(got, Err(DecodeError::PreludeChecksum));
    assert!(!finished);
    // A corrupt length fails the prelude's CRC too.
    let mut bytes = event("messageStart", "{}");
    bytes[2] ^= 0x10;
    assert_eq!(decode(&[&bytes]).0, Err(DecodeError::PreludeChecksum));
}

#[test]
fn a_bad_message_crc_is_refused_and_the_decoder_stays_broken() {
    let good = event("messageStart", "{}");
    for at in [12, good.len() - 5, good.len() - 1] {
        let mut bytes = good.clone();
        bytes[at] ^= 0x40;
        let mut both = good.clone();
        both.extend_from_slice(&bytes);
        let mut decoder = EventStreamDecoder::new();
        let mut seen = 0;
        assert_eq!(
            decoder.feed(&both, |_| seen += 1),
            Err(DecodeError::MessageChecksum),
            "flipped byte {at}"
        );
        assert_eq!(seen, 1, "the good frame before it was delivered");
        assert_eq!(
            decoder.feed(&good, |_| seen += 1),
            Err(DecodeError::MessageChecksum)
        );
        assert_eq!(seen, 1);
        assert!(!decoder.finish());
    }
}

/// A prelude declaring `total` bytes and `headers` bytes of headers, CRC right.
fn prelude(total: u32, headers: u32) -> Vec<u8> {
    let mut p = Vec::new();
    p.extend_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&headers.to_be_bytes());
    let crc = crc32fast::hash(&p);
    p.extend_from_slice(&crc.to_be_bytes());
    p
}

#[test]
fn an_oversized_or_impossible_length_is_refused_before_buffering() {
    let too_big = MAX_MESSAGE_BYTES as u32 + 1;
    assert_eq!(
        decode(&[&prelude(too_big, 0)]).0,
        Err(DecodeError::TooLarge(too_big))
    );
    assert_eq!(
        decode(&[&prelude(u32::MAX, 0)]).0,
        Err(DecodeError::TooLarge(u32::MAX))
    );
    assert_eq!(
        decode(&[&prelude(15, 0)]).0,
        Err(DecodeError::BadLength(15))
    );
    assert_eq!(
        decode(&[&prelude(20, 5)]).0,
        Err(DecodeError::BadLength(20))
    );
    // The largest frame accepted goes through.
    let payload = vec![b'x'; MAX_MESSAGE_BYTES - 16];
    let big = frame(&[], &payload);
    assert_eq!(big.len(), MAX_MESSAGE_BYTES);
    let (got, finished) = decode(&[&big[..1000], &big[1000..]]);
    assert_eq!(got.unwrap().len(), 1);
    assert!(finished);
}

#[test]
fn malformed_headers_with_valid_crcs_are_an_error() {
    // Headers length 3: a name length of 200 that runs past the headers.
    let mut body = prelude(16 + 3, 3);
    body.extend_from_slice(&[200, b'a', b'b']);
    let crc = crc32fast::hash(&body);
    body.extend_from_slice(&crc.to_be_bytes());
    assert!(matches!(decode(&[&body]).0, Err(DecodeError::Malformed(_))));
}
