//! The compiled, immutable model table and the attempt plans drawn from it.
//!
//! A request loads one [`Table`] snapshot at its start and uses it to the end;
//! a reload builds a whole new table and swaps it in (see `config`).
//! Next: `forward` walks the plan.

mod plan;
pub mod strategy;
mod table;

pub(crate) use plan::random_unit;
pub use plan::{plan, Plan};
pub use strategy::{HedgeDelay, Strategy};
pub use table::{AttemptPolicy, Cors, Model, RequestLimits, Table, Target, Upstream};
