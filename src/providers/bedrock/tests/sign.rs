//! SigV4 against AWS's published test suite (the `aws-signing-test-suite/v4`
//! vectors: AKIDEXAMPLE, 20150830T123600Z, us-east-1, service `service`),
//! and what Bedrock's signing adds.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderName, HeaderValue, Uri};

use super::super::sign::sign_for;
use super::super::{sign, Credentials};
use crate::secret::Secret;

/// 2015-08-30T12:36:00Z.
fn test_time() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_440_938_160)
}

fn example_credentials(token: Option<&str>) -> Credentials {
    Credentials {
        access_key_id: "AKIDEXAMPLE".into(),
        secret_access_key: Secret::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into()),
        session_token: token.map(|t| Secret::new(t.into())),
    }
}

fn value<'a>(headers: &'a [(HeaderName, HeaderValue)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .and_then(|(_, v)| v.to_str().ok())
}

fn suite(
    method: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    token: Option<&str>,
) -> Vec<(HeaderName, HeaderValue)> {
    let uri: Uri = "https://example.amazonaws.com/".parse().unwrap();
    sign_for(
        "service",
        method,
        &uri,
        headers,
        body,
        &example_credentials(token),
        "us-east-1",
        test_time(),
    )
    .expect("signs")
}

#[test]
fn get_vanilla() {
    let headers = suite("GET", &[], b"", None);
    assert_eq!(value(&headers, "x-amz-date"), Some("20150830T123600Z"));
    assert_eq!(
        value(&headers, "authorization"),
        Some("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")
    );
    assert_eq!(headers.len(), 2, "{headers:?}");
}

#[test]
fn post_vanilla_and_post_header_key_case() {
    for host in [None, Some(("Host", "example.amazonaws.com"))] {
        let given: Vec<(&str, &str)> = host.into_iter().collect();
        let headers = suite("POST", &given, b"", None);
        assert_eq!(
            value(&headers, "authorization"),
            Some("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b")
        );
    }
}

#[test]
fn get_vanilla_with_session_token_signs_and_sends_the_token() {
    let token = "6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267";
    let headers = suite("GET", &[], b"", Some(token));
    assert_eq!(
        value(&headers, "authorization"),
        Some("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date;x-amz-security-token, Signature=07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8")
    );
    assert_eq!(value(&headers, "x-amz-security-token"), Some(token));
    for (name, value) in &headers {
        let secret = name == "authorization" || name == "x-amz-security-token";
        assert_eq!(value.is_sensitive(), secret, "{name}");
    }
}

#[test]
fn a_content_type_is_signed_and_the_body_changes_the_signature() {
    let uri: Uri =
        "https://bedrock-runtime.us-east-1.amazonaws.com/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse"
            .parse()
            .unwrap();
    let credentials = example_credentials(None);
    let signed = |body: &[u8]| {
        let headers = sign(
            "POST",
            &uri,
            &[("Content-Type", "application/json")],
            body,
            &credentials,
            "us-east-1",
            test_time(),
        )
        .expect("signs");
        value(&headers, "authorization").unwrap().to_owned()
    };
    let a = signed(br#"{"messages":[]}"#);
    let b = signed(br#"{"messages":[{}]}"#);
    assert!(a.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/bedrock/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature="), "{a}");
    assert_ne!(a, b);
    assert_eq!(a, signed(br#"{"messages":[]}"#), "deterministic");
}

#[test]
fn an_unusable_uri_or_header_is_an_error_not_a_panic() {
    let credentials = example_credentials(None);
    let relative: Uri = "/model/x/converse".parse().unwrap();
    assert!(sign(
        "POST",
        &relative,
        &[],
        b"",
        &credentials,
        "us-east-1",
        test_time()
    )
    .is_err());
    let uri: Uri = "https://example.amazonaws.com/".parse().unwrap();
    for bad in [("bad header", "x"), ("x-ok", "bad\nvalue")] {
        assert!(sign(
            "POST",
            &uri,
            &[bad],
            b"",
            &credentials,
            "us-east-1",
            test_time()
        )
        .is_err());
    }
}

#[test]
fn no_secret_appears_in_debug_output() {
    let credentials = example_credentials(Some("SESSIONTOKENSECRET"));
    let printed = format!("{credentials:?}");
    assert!(printed.contains("AKIDEXAMPLE"));
    assert!(!printed.contains("wJalrXUtnFEMI"), "{printed}");
    assert!(!printed.contains("SESSIONTOKENSECRET"), "{printed}");
    let uri: Uri = "https://example.amazonaws.com/".parse().unwrap();
    let headers = sign(
        "POST",
        &uri,
        &[],
        b"",
        &credentials,
        "us-east-1",
        test_time(),
    )
    .unwrap();
    let printed = format!("{headers:?}");
    assert!(!printed.contains("Signature="), "{printed}");
    assert!(!printed.contains("SESSIONTOKENSECRET"), "{printed}");
}

#[test]
fn credentials_come_from_the_aws_variables() {
    let env = |vars: &'static [(&'static str, &'static str)]| {
        move |name: &str| {
            vars.iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.to_string())
        }
    };
    let full = Credentials::from_lookup(env(&[
        ("AWS_ACCESS_KEY_ID", "AKIA1"),
        ("AWS_SECRET_ACCESS_KEY", "s3cr3t"),
        ("AWS_SESSION_TOKEN", "tok"),
    ]))
    .unwrap();
    assert_eq!(full.access_key_id, "AKIA1");
    assert_eq!(full.secret_access_key.expose(), "s3cr3t");
    assert_eq!(full.session_token.as_ref().map(Secret::expose), Some("tok"));
    let keys = Credentials::from_lookup(env(&[
        ("AWS_ACCESS_KEY_ID", "AKIA1"),
        ("AWS_SECRET_ACCESS_KEY", "s3cr3t"),
        ("AWS_SESSION_TOKEN", ""),
    ]))
    .unwrap();
    assert!(keys.session_token.is_none());
    assert!(Credentials::from_lookup(env(&[("AWS_ACCESS_KEY_ID", "AKIA1")])).is_none());
    assert!(Credentials::from_lookup(env(&[
        ("AWS_ACCESS_KEY_ID", ""),
        ("AWS_SECRET_ACCESS_KEY", "s3cr3t"),
    ]))
    .is_none());
}
