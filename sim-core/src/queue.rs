//! The event queue: a binary min-heap keyed by (time, priority, insertion sequence).
//!
//! The three keys are packed into one `u128` so that ordering is a single
//! integer comparison: time in the top 64 bits, priority in the next 8, the
//! insertion sequence in the low 56. Two events never share a key, so the pop
//! order is a total order fixed by the inputs alone. The heap holds only keys
//! and slot numbers; messages wait in a slab, so sifting moves 32 bytes per
//! level whatever the message size.

use crate::engine::ComponentId;
use crate::time::Time;
use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// Tie-break between events at the same time: lower runs first.
pub type Priority = u8;

/// Priority of ordinary events.
pub const DEFAULT_PRIORITY: Priority = 128;

const SEQ_BITS: u32 = 56;
const SEQ_MASK: u64 = (1 << SEQ_BITS) - 1;

#[derive(Clone, Copy, PartialEq, Eq)]
struct Entry {
    key: u128,
    slot: u32,
}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    // Reversed: `BinaryHeap` is a max-heap and we want the earliest key first.
    fn cmp(&self, other: &Self) -> Ordering {
        other.key.cmp(&self.key)
    }
}

pub(crate) struct EventQueue<M> {
    heap: BinaryHeap<Entry>,
    slots: Vec<Option<(ComponentId, M)>>,
    free: Vec<u32>,
    next_seq: u64,
}

impl<M> EventQueue<M> {
    pub(crate) fn new() -> Self {
        EventQueue { heap: BinaryHeap::new(), slots: Vec::new(), free: Vec::new(), next_seq: 0 }
    }

    pub(crate) fn push(&mut self, at: Time, priority: Priority, target: ComponentId, msg: M) {
        assert!(self.next_seq <= SEQ_MASK, "more than 2^56 events scheduled in one run");
        let key = ((at.as_ps() as u128) << 64) | ((priority as u128) << SEQ_BITS) | self.next_seq as u128;
        self.next_seq += 1;
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize] = Some((target, msg));
                slot
            }
            None => {
                self.slots.push(Some((target, msg)));
                u32::try_from(self.slots.len() - 1).expect("more than 2^32 events pending")
            }
        };
        self.heap.push(Entry { key, slot });
    }

    /// The earliest event if it is due at or before `limit`.
    pub(crate) fn pop_due(&mut self, limit: Time) -> Option<(Time, ComponentId, M)> {
        let head = self.heap.peek()?;
        let at = Time::from_ps((head.key >> 64) as u64);
        if at > limit {
            return None;
        }
        let entry = self.heap.pop()?;
        let (target, msg) = self.slots[entry.slot as usize].take()?;
        self.free.push(entry.slot);
        Some((at, target, msg))
    }

    pub(crate) fn next_time(&self) -> Option<Time> {
        self.heap.peek().map(|e| Time::from_ps((e.key >> 64) as u64))
    }

    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_by_time_then_priority_then_insertion() {
        let mut q = EventQueue::new();
        let c = ComponentId::from_index(0);
        q.push(Time::from_ps(20), DEFAULT_PRIORITY, c, "late");
        q.push(Time::from_ps(10), DEFAULT_PRIORITY, c, "first-inserted");
        q.push(Time::from_ps(10), DEFAULT_PRIORITY, c, "second-inserted");
        q.push(Time::from_ps(10), 0, c, "urgent");
        let order: Vec<_> = std::iter::from_fn(|| q.pop_due(Time::MAX)).map(|(_, _, m)| m).collect();
        assert_eq!(order, ["urgent", "first-inserted", "second-inserted", "late"]);
    }

    #[test]
    fn pop_due_respects_the_limit() {
        let mut q = EventQueue::new();
        let c = ComponentId::from_index(0);
        q.push(Time::from_ps(5), DEFAULT_PRIORITY, c, ());
        assert!(q.pop_due(Time::from_ps(4)).is_none());
        assert_eq!(q.next_time(), Some(Time::from_ps(5)));
        assert!(q.pop_due(Time::from_ps(5)).is_some());
        assert_eq!(q.len(), 0);
    }
}
