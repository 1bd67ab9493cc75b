//! The translation's tests, one file per direction, plus the properties.

mod error;
mod properties;
mod request;
mod response;
mod stream;
mod structured;
