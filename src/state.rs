//! State shared by every connection: the current table (swapped whole on
//! reload) and the runtime state that outlives tables.

use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

use crate::routing::Table;
use crate::upstream::{Probes, Registry};

/// Everything a request can reach. One per server, in an `Arc`.
pub struct AppState {
    /// The current table; each request loads it once (`load_full`) and keeps
    /// that snapshot to its end.
    pub table: ArcSwap<Table>,
    /// Runtime state and clients by upstream identity.
    pub registry: Arc<Registry>,
    /// Health probes of the current table.
    probes: Mutex<Probes>,
}

impl AppState {
    /// State serving `table`.
    pub fn new(table: Table, registry: Arc<Registry>) -> AppState {
        let probes = Probes::start(&table);
        AppState {
            table: ArcSwap::from_pointee(table),
            registry,
            probes: Mutex::new(probes),
        }
    }

    /// Swaps in a new table in one store; requests in flight keep theirs.
    pub fn install(&self, table: Table) {
        let probes = Probes::start(&table);
        self.table.store(Arc::new(table));
        if let Ok(mut current) = self.probes.lock() {
            *current = probes;
        }
    }
}
