//! The upstream's side of demand: what it may still send.

/// Demand granted by a downstream and not yet used, in records (`request(n)`).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Demand {
    outstanding: u64,
}

impl Demand {
    /// Adds a grant (`Demand(n)` from downstream).
    pub(crate) fn grant(&mut self, records: u64) {
        self.outstanding = self.outstanding.saturating_add(records);
    }

    /// Takes demand for `records` if that much is outstanding; false (and nothing taken) if not.
    pub(crate) fn try_take(&mut self, records: u64) -> bool {
        if records <= self.outstanding {
            self.outstanding -= records;
            true
        } else {
            false
        }
    }

    /// Records that may still be sent.
    pub(crate) fn outstanding(&self) -> u64 {
        self.outstanding
    }

    /// Forgets all demand (the downstream it came from is gone).
    pub(crate) fn reset(&mut self) {
        self.outstanding = 0;
    }
}
