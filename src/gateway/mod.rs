//! The router's front door: path dispatch, body inspection, authentication,
//! the small JSON endpoints, CORS and every error answer.
//!
//! Never talks to an upstream itself; model requests go on to `forward`.

pub mod auth;
pub mod cors;
pub mod dispatch;
pub mod error;
mod models;
mod proxy;
mod state;
mod stats;
mod status;

pub use state::{AppState, ReloadStatus};

pub use dispatch::handle;
