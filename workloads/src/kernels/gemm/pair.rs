//! Cores that share an operand tile in pairs, where the hardware multicasts
//! (`core.dma.multicast = 2`), as Hopper's TMA multicast shares one L2 read
//! between the two SMs of a cluster: each core of a pair loads half of every
//! shared tile and sends it into the same buffer of its partner, and its
//! matrix multiply waits for the partner's half. Semaphores keep a half from
//! overwriting a buffer its partner still reads.

use super::load;
use crate::kernels::{CoreTarget, Step};
use isa::{BufId, Instr, MemRef, Program};

/// A core's partner in sharing tiles, and which half it loads.
#[derive(Clone, Copy, Debug)]
pub(super) struct Pair {
    pub partner: u16,
    /// The core of the pair with the higher index: it loads the second half.
    pub second: bool,
}

impl Pair {
    /// `core`'s pair, if it has a partner.
    pub fn of(core: usize, partner: Option<u16>) -> Option<Pair> {
        partner.map(|partner| Pair { partner, second: (partner as usize) < core })
    }
}

/// Rows from which a GEMM's cores pair up. Below them tiles are small and
/// spread over the columns, and tuned libraries do not multicast: DeepGEMM
/// does from M = 1,024 in its first release (the one its published figures
/// came from) and from 512 later (`get_best_configs`).
const MULTICAST_MIN_ROWS: u64 = 512;

/// Whether a GEMM of `m` rows on `t` pairs its cores.
pub(super) fn multicasts(t: &CoreTarget, m: u64) -> bool {
    t.multicast >= 2 && m >= MULTICAST_MIN_ROWS
}

/// Semaphores of a pair's exchange: the partner's half has arrived; the
/// partner is done with a tile buffer, so the next half may be sent into it.
const HALF_ARRIVED: u8 = 1;
const BUFFER_FREE: u8 = 2;

/// The shared tiles of one core's run of steps, and the exchange with its
/// partner that they need ([`Exchange::schedule`]).
#[derive(Default)]
pub(super) struct Exchange {
    /// Per shared tile: the step that loads it, the last step that uses it,
    /// and the send of this core's half.
    tiles: Vec<(usize, usize, Instr)>,
}

impl Exchange {
    /// Load a `bytes` tile into `buf` from `src(offset)` within step `at`
    /// of `step`: whole when unpaired, else this core's half, with a wait
    /// for the partner's before the step computes.
    #[allow(clippy::too_many_arguments)]
    pub fn load(
        &mut self,
        p: &Program,
        step: &mut Step,
        at: usize,
        buf: BufId,
        src: impl Fn(u64) -> MemRef,
        bytes: u64,
        pair: Option<Pair>,
    ) {
        let Some(Pair { partner, second }) = pair else {
            step.loads.push(load(buf, src(0), bytes));
            return;
        };
        let half = bytes / 2;
        let (mine, theirs) = if second { (bytes - half, half) } else { (half, bytes - half) };
        step.loads.push(load(buf, src(if second { theirs } else { 0 }), mine));
        step.compute.push(Instr::Wait { sem: HALF_ARRIVED, count: 1 });
        let offset = p.buffers[buf.0 as usize].offset + if second { 0 } else { theirs };
        self.tiles.push((at, at, Instr::Send { src: buf, core: partner, offset, bytes: mine }));
    }

    /// Step `at` also uses the last tile loaded.
    pub fn used_in(&mut self, at: usize) {
        if let Some(last) = self.tiles.last_mut() {
            last.1 = at;
        }
    }

    /// Put the exchange into `steps`, whose tiles cycle through `stages`
    /// buffers. Each half goes while the tile before computes, so the
    /// in-order DMA queue never waits on it ahead of later loads, and only
    /// once the partner is done with the tile `stages` loads before, which
    /// used the same buffer.
    pub fn schedule(self, steps: &mut [Step], pair: Option<Pair>, stages: usize) {
        let Some(Pair { partner, .. }) = pair else { return };
        let count = self.tiles.len();
        for (j, (loaded_in, last_use, send)) in self.tiles.into_iter().enumerate() {
            let mut exchange = Vec::new();
            if j >= stages {
                exchange.push(Instr::Wait { sem: BUFFER_FREE, count: 1 });
            }
            exchange.push(send);
            exchange.push(Instr::Signal { sem: HALF_ARRIVED, core: Some(partner) });
            match loaded_in.checked_sub(1) {
                Some(before) => steps[before].compute.extend(exchange),
                None => steps[0].loads.extend(exchange),
            }
            if j + stages < count {
                steps[last_use].compute.push(Instr::Signal { sem: BUFFER_FREE, core: Some(partner) });
            }
        }
    }
}
