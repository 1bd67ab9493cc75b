//! The compiled, immutable model table — models, targets, attempt and status
//! policies, timeouts, strategies — and the attempt plans drawn from it.
//!
//! A request loads one [`Table`] snapshot at its start and uses it to the end;
//! a reload builds a whole new table and swaps it in (see `config`).
//! Next: `forward` walks the plan.

mod plan;
mod policy;
mod random;
mod request_policy;
mod resume;
pub mod strategy;
mod table;
mod timeouts;

pub use plan::{locate, plan, target_at, Plan};
pub use policy::{AttemptPolicy, StatusPolicy};
pub use policy::{HedgeDelay, Strategy};
pub(crate) use random::random_unit;
pub use request_policy::{Clamp, RequestPolicy, SystemPrompt, SystemPromptMode};
pub use resume::{Prefill, ResumePolicy, DEFAULT_MAX_RESUMES, DEFAULT_MAX_RESUME_TEXT};
pub use table::{Cors, Model, RequestLimits, Signing, Table, Target, Translation, Upstream};
pub use timeouts::{
    Timeouts, DEFAULT_CONNECT_TIMEOUT, DEFAULT_FIRST_BYTE_TIMEOUT, DEFAULT_FIRST_TOKEN_TIMEOUT,
    DEFAULT_IDLE_TIMEOUT, DEFAULT_TOTAL_TIMEOUT,
};
