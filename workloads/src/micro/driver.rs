//! The host side of a microbenchmark: posts work (command lists to
//! sequencers, tasks to a CPU) and notes when the last of it is done.

use models::cpu::HostTask;
use models::msg::Msg;
use models::npu::CommandList;
use sim_core::{Component, ComponentId, Ctx, Time};
use std::sync::Arc;

/// Work the driver posts to a component when woken.
#[derive(Debug)]
pub(crate) enum Work {
    Commands(Arc<CommandList>),
    Task(Arc<HostTask>),
}

#[derive(Debug)]
pub(crate) struct Driver {
    work: Vec<(ComponentId, Work)>,
    outstanding: usize,
    /// When all the work was done.
    pub(crate) done: Option<Time>,
}

impl Driver {
    /// Posts each `(sequencer, list)` when woken.
    pub(crate) fn new(lists: Vec<(ComponentId, Arc<CommandList>)>) -> Driver {
        Driver::posting(lists.into_iter().map(|(to, list)| (to, Work::Commands(list))).collect())
    }

    /// Posts each `(component, work)` when woken.
    pub(crate) fn posting(work: Vec<(ComponentId, Work)>) -> Driver {
        Driver { outstanding: work.len(), work, done: None }
    }
}

impl Component<Msg> for Driver {
    fn kind(&self) -> &'static str {
        "host.driver"
    }
    fn handle(&mut self, msg: Msg, ctx: &mut Ctx<'_, Msg>) {
        match msg {
            Msg::Wake { .. } => {
                for (token, (to, work)) in self.work.drain(..).enumerate() {
                    let (reply_to, token) = (ctx.me(), token as u64);
                    let msg = match work {
                        Work::Commands(list) => Msg::RunCommands { list, reply_to, token },
                        Work::Task(task) => Msg::HostTask { task, reply_to, token },
                    };
                    ctx.send(to, Time::ZERO, msg);
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
