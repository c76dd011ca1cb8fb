//! The messages components of a machine send each other.

use crate::cpu::HostTask;
use crate::fabric::Route;
use crate::npu::{CommandList, PreparedProgram};
use sim_core::{ComponentId, Time};
use std::sync::Arc;

/// Every message in a machine. Each component handles the variants addressed
/// to its kind; `Done`, `Wake` and `Arrived` are shared replies.
#[derive(Clone, Debug)]
pub enum Msg {
    /// The work the receiver asked for under `token` is finished.
    Done { token: u64 },
    /// A timer the receiver set for itself.
    Wake { token: u64 },
    /// A read or write for a memory controller.
    Mem(MemRequest),
    /// Run a program on an NPU core; the core replies `Done { token }` when every instruction retired.
    RunProgram { program: Arc<PreparedProgram>, reply_to: ComponentId, token: u64 },
    /// Instruction `index` of a core's current program reached `stage` of its completion.
    InstrDone { index: u32, stage: Stage },
    /// Another core reads (`write` false) or writes this core's scratchpad; it
    /// replies `Done { token }` to `reply_to`, `reply_delay` after its ports are through.
    SpadAccess { bytes: u64, write: bool, reply_to: ComponentId, token: u64, reply_delay: Time },
    /// Increment semaphore `sem` of the receiving core.
    Signal { sem: u8 },
    /// A core reached the barrier of the launch `token` (sent to the launch's sequencer).
    BarrierArrive { token: u64 },
    /// Every core of the launch reached the barrier.
    BarrierRelease,
    /// Run a command list on a chiplet's sequencer; it replies `Done { token }`.
    RunCommands { list: Arc<CommandList>, reply_to: ComponentId, token: u64 },
    /// A chunk of a transfer crossing one link of its route.
    Chunk(Chunk),
    /// A chunk of the transfer `tag` reached its destination.
    Arrived { tag: u64, bytes: u64 },
    /// A message for `to` that crosses a chiplet's network from `from` (see
    /// [`crate::noc::TransactionNetwork`]).
    Noc { from: ComponentId, to: ComponentId, msg: Box<Msg> },
    /// Account for work recorded in a simulation of the same work elsewhere
    /// (see [`crate::npu::ComputeMemo`]): add these statistics to your own.
    Replay { records: Vec<(Arc<sim_core::Recording>, u64)> },
    /// Run host work on the CPU cluster; it replies `Done { token }`.
    HostTask { task: Arc<HostTask>, reply_to: ComponentId, token: u64 },
}

/// How far an instruction has completed: it has finished reading its
/// operands, its results are visible, or both at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    Reads,
    Result,
    Both,
}

/// A memory transaction. The controller replies `Done { token }` to
/// `reply_to`, `reply_delay` after the data is through (the return path's latency).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemRequest {
    pub addr: u64,
    pub bytes: u64,
    pub write: bool,
    pub reply_to: ComponentId,
    pub token: u64,
    pub reply_delay: Time,
}

/// Part of a transfer on its way along a route.
#[derive(Clone, Debug)]
pub struct Chunk {
    pub route: Arc<Route>,
    /// Index of the link the chunk is about to cross.
    pub hop: u16,
    pub bytes: u64,
    pub tag: u64,
}
