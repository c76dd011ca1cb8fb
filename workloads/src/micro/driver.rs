//! The host side of a microbenchmark: posts command lists to sequencers and
//! notes when the last one is done.

use models::msg::Msg;
use models::npu::CommandList;
use sim_core::{Component, ComponentId, Ctx, Time};
use std::sync::Arc;

#[derive(Debug)]
pub(crate) struct Driver {
    lists: Vec<(ComponentId, Arc<CommandList>)>,
    outstanding: usize,
    /// When every list was done.
    pub(crate) done: Option<Time>,
}

impl Driver {
    /// Posts each `(sequencer, list)` when woken.
    pub(crate) fn new(lists: Vec<(ComponentId, Arc<CommandList>)>) -> Driver {
        Driver { outstanding: lists.len(), lists, done: None }
    }
}

impl Component<Msg> for Driver {
    fn kind(&self) -> &'static str {
        "host.driver"
    }
    fn handle(&mut self, msg: Msg, ctx: &mut Ctx<'_, Msg>) {
        match msg {
            Msg::Wake { .. } => {
                for (token, (sequencer, list)) in self.lists.drain(..).enumerate() {
                    let reply_to = ctx.me();
                    ctx.send(sequencer, Time::ZERO, Msg::RunCommands { list, reply_to, token: token as u64 });
                }
            }
            Msg::Done { .. } => {
                self.outstanding -= 1;
                if self.outstanding == 0 {
                    self.done = Some(ctx.now());
                }
            }
            _ => {}
        }
    }
}
