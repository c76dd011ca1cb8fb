//! The command list a chiplet's sequencer runs for one step: launches of core
//! programs, transfers to and from other endpoints, with dependencies.

use super::PreparedProgram;
use crate::fabric::Endpoint;
use std::sync::Arc;

/// Commands with dependencies; a command starts when all its dependencies are done.
#[derive(Clone, Debug, Default)]
pub struct CommandList {
    pub commands: Vec<Command>,
}

#[derive(Clone, Debug)]
pub struct Command {
    /// Indices of earlier commands that must finish first.
    pub deps: Vec<u32>,
    pub kind: CommandKind,
}

#[derive(Clone, Debug)]
pub enum CommandKind {
    /// Run one program on each listed core (by index within the chiplet); done
    /// when all retire. Commands with the same `memo` key do the same work:
    /// with replay on, it is simulated once and replayed (see [`super::memo`]).
    Compute { programs: Vec<(u32, Arc<PreparedProgram>)>, memo: Option<u64> },
    /// Send `bytes` to another endpoint under `tag`; done once handed to the fabric.
    Send { to: Endpoint, bytes: u64, tag: u64 },
    /// Wait until `bytes` tagged `tag` have arrived.
    Recv { bytes: u64, tag: u64 },
}

impl CommandList {
    pub fn push(&mut self, deps: Vec<u32>, kind: CommandKind) -> u32 {
        debug_assert!(deps.iter().all(|&d| (d as usize) < self.commands.len()), "a dependency on a later command");
        self.commands.push(Command { deps, kind });
        (self.commands.len() - 1) as u32
    }
}
