//! The translation's tests, one file per concern, plus the properties.

mod error;
mod ids;
mod properties;
mod request;
mod response;
mod stream;
