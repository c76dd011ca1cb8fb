//! A pseudo-channel's queue for one direction: a bounded scheduling window
//! (the controller's queue entries), kept per bank so the scheduler looks at
//! each bank's candidates rather than at every entry, and the accesses
//! waiting to enter it, in arrival order.

use std::collections::VecDeque;

/// A run of bursts to one row of one bank.
#[derive(Clone, Copy, Debug)]
pub(super) struct Access {
    pub request: u32,
    pub bank: u32,
    pub group: u32,
    pub row: u64,
    pub bursts: u32,
    pub write: bool,
    /// A row command was issued for it (so it did not find its row open).
    pub activated: bool,
    /// Arrival order within the queue; lower is older.
    pub seq: u64,
}

#[derive(Debug, Default)]
pub(super) struct Queue {
    capacity: usize,
    /// Admitted accesses, per bank, oldest first.
    pub banks: Vec<VecDeque<Access>>,
    admitted: usize,
    waiting: VecDeque<Access>,
    next_seq: u64,
}

impl Queue {
    pub fn new(capacity: usize, banks: usize) -> Queue {
        Queue { capacity: capacity.max(1), banks: vec![VecDeque::new(); banks], ..Queue::default() }
    }

    pub fn len(&self) -> usize {
        self.admitted + self.waiting.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn push(&mut self, mut access: Access) {
        access.seq = self.next_seq;
        self.next_seq += 1;
        if self.admitted < self.capacity {
            self.banks[access.bank as usize].push_back(access);
            self.admitted += 1;
        } else {
            self.waiting.push_back(access);
        }
    }

    /// The access last pushed, to extend it with the bursts that follow it.
    pub fn last_mut(&mut self, bank: u32) -> Option<&mut Access> {
        let last = self.next_seq.checked_sub(1)?;
        match self.waiting.back_mut() {
            Some(a) if a.seq == last => Some(a),
            Some(_) => None,
            None => self.banks[bank as usize].back_mut().filter(|a| a.seq == last),
        }
    }

    /// Take the access at `pos` of `bank`'s list, and admit the next waiting one.
    pub fn take(&mut self, bank: usize, pos: usize) -> Access {
        let access = self.banks[bank].remove(pos).expect("the position is in the bank's list");
        self.admitted -= 1;
        if let Some(next) = self.waiting.pop_front() {
            self.banks[next.bank as usize].push_back(next);
            self.admitted += 1;
        }
        access
    }
}
