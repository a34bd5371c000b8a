//! The memory budget: linear memories and tables together, enforced by a `ResourceLimiter`.

use wasmtime::ResourceLimiter;

/// What one table element costs, in bytes: wasmtime stores a pointer per element.
const TABLE_ELEMENT_BYTES: u64 = std::mem::size_of::<usize>() as u64;

/// One app's memory budget. A refused growth is remembered, so that the trap or failing exit
/// that usually follows is reported as `MemoryLimit` rather than as its symptom.
#[derive(Debug)]
pub(crate) struct MemoryBudget {
    limit_bytes: u64,
    held_bytes: u64,
    /// The last growth granted, taken back if the growth then fails.
    last_grant: u64,
    denied: Option<u64>,
}

impl MemoryBudget {
    pub(crate) fn new(limit_bytes: u64) -> MemoryBudget {
        MemoryBudget {
            limit_bytes,
            held_bytes: 0,
            last_grant: 0,
            denied: None,
        }
    }

    pub(crate) fn limit_bytes(&self) -> u64 {
        self.limit_bytes
    }

    /// The total the app asked to hold when it was first refused, if it was.
    pub(crate) fn denied(&self) -> Option<u64> {
        self.denied
    }

    fn grow(&mut self, current: u64, desired: u64) -> bool {
        let delta = desired.saturating_sub(current);
        let wanted = self.held_bytes.saturating_add(delta);
        if wanted > self.limit_bytes {
            self.denied.get_or_insert(wanted);
            self.last_grant = 0;
            return false;
        }
        self.held_bytes = wanted;
        self.last_grant = delta;
        true
    }

    fn grow_failed(&mut self) {
        self.held_bytes = self.held_bytes.saturating_sub(self.last_grant);
        self.last_grant = 0;
    }
}

fn to_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

impl ResourceLimiter for MemoryBudget {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(self.grow(to_u64(current), to_u64(desired)))
    }

    fn memory_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        self.grow_failed();
        Ok(())
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(self.grow(
            to_u64(current).saturating_mul(TABLE_ELEMENT_BYTES),
            to_u64(desired).saturating_mul(TABLE_ELEMENT_BYTES),
        ))
    }

    fn table_grow_failed(&mut self, _error: wasmtime::Error) -> wasmtime::Result<()> {
        self.grow_failed();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memories_and_tables_share_one_budget() {
        let mut budget = MemoryBudget::new(100);
        assert!(budget.grow(0, 60));
        assert!(budget.grow(0, 40));
        assert!(!budget.grow(40, 41));
        assert_eq!(budget.denied(), Some(101));
    }

    #[test]
    fn a_failed_growth_is_given_back() {
        let mut budget = MemoryBudget::new(100);
        assert!(budget.grow(0, 80));
        budget.grow_failed();
        assert!(budget.grow(0, 100));
        assert_eq!(budget.denied(), None);
    }

    #[test]
    fn the_first_refusal_is_kept() {
        let mut budget = MemoryBudget::new(10);
        assert!(!budget.grow(0, 20));
        assert!(!budget.grow(0, 30));
        assert_eq!(budget.denied(), Some(20));
    }
}
