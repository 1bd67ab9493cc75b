//! The router's front door: path dispatch, reading and inspecting the body
//! (with `json`), authentication, the small JSON endpoints, CORS, the state
//! every request reaches ([`AppState`]) and every error answer.
//!
//! Never talks to an upstream itself; model requests go on to `forward`,
//! whose `Exhausted` comes back here to be answered. Below: `forward`,
//! `routing`, `telemetry` and the leaves. Above: `server`, which serves
//! [`handle`] on each connection.

pub mod auth;
mod cache;
pub mod cors;
pub mod dispatch;
pub mod error;
pub mod limits;
mod messages;
mod models;
mod policy;
mod proxy;
mod state;
mod stats;
mod status;

pub use state::{AppState, ReloadStatus};

pub use dispatch::handle;
