//! The translation's tests, one file per concern, plus the properties.

mod error;
mod eventstream;
mod properties;
mod request;
mod response;
mod sign;
mod stream;
