//! Attempt plans: every target a request may try, in order.
//!
//! The order is the model's own targets as its strategy orders them, then
//! each fallback model's targets as *its* strategy orders them. Then the
//! circuit breakers have their say: targets whose circuit is open move to
//! the end, soonest-to-reopen first — still tried as a last resort, so a
//! request is never refused without trying when everything looks down.
//! Targets at their own `rpm`/`tpm` go after those (the attempt loop
//! skips them without sending, so traffic spills to the next target).
//! Upstreams with an unset `${VAR}` are left out (they cannot work); if
//! nothing else is left they stay, so the answer can name the variable.
//! The context-window fallbacks form a second, separate list.

use super::strategy;
use super::table::{Model, Target};
use crate::upstream::Circuit;

/// Targets in the order they will be tried.
pub struct Plan<'t> {
    /// The ordered targets; never empty for a compiled model.
    pub targets: Vec<&'t Target>,
    /// Targets for a prompt over the context window, in order.
    pub context_window: Vec<&'t Target>,
}

/// Orders `model`'s targets, then its fallbacks' targets.
pub fn plan(model: &Model) -> Plan<'_> {
    let mut targets = ordered(
        std::iter::once(model).chain(model.fallbacks.iter().map(|m| &**m)),
        true,
    );
    if targets.is_empty() {
        // Every target is disabled: keep them so the error can name the cause.
        targets.extend(model.targets.iter());
    }
    let context_window = ordered(model.context_window_fallbacks.iter().map(|m| &**m), false);
    Plan {
        targets,
        context_window,
    }
}

/// Targets of `models` in order; `first_advances` moves the first model's
/// weighted cursor (the model asked for), never a fallback's.
fn ordered<'t>(models: impl Iterator<Item = &'t Model>, first_advances: bool) -> Vec<&'t Target> {
    let mut targets: Vec<&Target> = Vec::new();
    for (i, model) in models.enumerate() {
        targets.extend(
            strategy::order(
                &model.strategy,
                &model.targets,
                &model.cycle,
                &model.cursor,
                first_advances && i == 0,
            )
            .into_iter()
            .filter(|t| t.upstream.unresolved.is_none()),
        );
    }
    // Stable: targets whose upstream failed its last health probe go
    // behind the others, targets whose circuit is open go last (soonest to
    // reopen first); the strategy's order is kept otherwise.
    targets.sort_by_key(|t| match t.state.circuit() {
        // At its own rpm/tpm: skipped when reached (forward), so last.
        _ if t.rates.any() && !t.state.rate.has_room(t.rates) => (3, 0),
        Circuit::Open => (2, t.state.reopens_in_ms()),
        Circuit::Closed | Circuit::HalfOpen if t.upstream.state.is_down() => (1, 0),
        Circuit::Closed | Circuit::HalfOpen => (0, 0),
    });
    targets
}

/// Where `target` sits in `model`: `(0, i)` for the model's own target `i`,
/// `(k, i)` for target `i` of fallback `k - 1`. `None` for a target that
/// belongs to neither (a context-window fallback's).
pub fn locate(model: &Model, target: &Target) -> Option<(usize, usize)> {
    std::iter::once(model)
        .chain(model.fallbacks.iter().map(|m| &**m))
        .enumerate()
        .find_map(|(k, m)| {
            m.targets
                .iter()
                .position(|t| std::ptr::eq(t, target))
                .map(|i| (k, i))
        })
}

/// The target at a place [`locate`] gave.
pub fn target_at(model: &Model, (k, i): (usize, usize)) -> Option<&Target> {
    let owner = match k {
        0 => model,
        k => model.fallbacks.get(k - 1)?,
    };
    owner.targets.get(i)
}
