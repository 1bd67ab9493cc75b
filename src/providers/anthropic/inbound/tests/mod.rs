//! The inbound translation's tests, one file per concern, plus the
//! properties.

mod count;
mod error;
mod properties;
mod request;
mod response;
mod stream;
