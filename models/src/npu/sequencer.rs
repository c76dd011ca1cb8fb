//! A chiplet's sequencer (the hardware sync manager): runs a command list,
//! launching core programs and fabric transfers as their dependencies finish.

use super::commands::{CommandKind, CommandList};
use super::memo::{ComputeMemo, Recorded};
use crate::fabric::{Endpoint, Routes};
use crate::msg::{Chunk, Msg};
use sim_core::{BusyTime, Component, ComponentId, Ctx, Dataflow, Recording, Stats, Time, Unit};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;

/// A record and how often it was replayed.
type Replays = (Arc<Recording>, u64);

#[derive(Clone, Debug)]
pub struct SequencerConfig {
    /// This chiplet's index in the system.
    pub device: u32,
    /// The chiplet's cores, by index within the chiplet.
    pub cores: Vec<ComponentId>,
    pub routes: Arc<Routes>,
    /// Transfers leave in chunks of this many bytes.
    pub chunk: u64,
    /// The chiplet's memory, shared SRAM and network, which replays report to.
    pub memory: ComponentId,
    pub shared: ComponentId,
    pub network: ComponentId,
    /// Records of compute commands to replay, if commands are replayed.
    pub memo: Option<Arc<ComputeMemo>>,
}

#[derive(Debug)]
struct ListRun {
    list: Arc<CommandList>,
    reply_to: ComponentId,
    token: u64,
    flow: Dataflow,
    cores_left: Vec<u32>,
    /// Per command, cores that reached a barrier in their programs.
    at_barrier: HashMap<u32, u32>,
    waiting_recv: HashMap<u64, u32>,
    started: Time,
}

#[derive(Debug)]
pub struct Sequencer {
    cfg: SequencerConfig,
    waiting: VecDeque<(Arc<CommandList>, ComponentId, u64)>,
    run: Option<ListRun>,
    /// Bytes arrived per tag, not yet claimed by a receive.
    received: HashMap<u64, u64>,
    busy: BusyTime,
    lists: u64,
    commands: u64,
    sent_bytes: u64,
    faults: u64,
    /// When the replayed commands running now are done.
    replay_free: Time,
    /// Commands replayed in the list running now, and how often each: the
    /// components get what they counted once, when the list is done.
    replays: Vec<(Arc<Recorded>, u64)>,
    replay_index: HashMap<usize, usize>,
}

impl Sequencer {
    pub fn new(cfg: SequencerConfig) -> Sequencer {
        Sequencer {
            cfg,
            waiting: VecDeque::new(),
            run: None,
            received: HashMap::new(),
            busy: BusyTime::default(),
            lists: 0,
            commands: 0,
            sent_bytes: 0,
            faults: 0,
            replay_free: Time::ZERO,
            replays: Vec::new(),
            replay_index: HashMap::new(),
        }
    }

    fn start(&mut self, list: Arc<CommandList>, reply_to: ComponentId, token: u64, ctx: &mut Ctx<'_, Msg>) {
        let n = list.commands.len();
        let flow = Dataflow::new(list.commands.iter().map(|c| c.deps.as_slice()));
        self.run = Some(ListRun {
            list,
            reply_to,
            token,
            flow,
            cores_left: vec![0; n],
            at_barrier: HashMap::new(),
            waiting_recv: HashMap::new(),
            started: ctx.now(),
        });
        if n == 0 {
            self.finish(ctx);
            return;
        }
        let ready = self.run.as_ref().map_or_else(Vec::new, |r| r.flow.ready());
        for i in ready {
            self.launch(i, ctx);
        }
    }

    fn launch(&mut self, index: u32, ctx: &mut Ctx<'_, Msg>) {
        let Some(run) = self.run.as_mut() else { return };
        self.commands += 1;
        let list = Arc::clone(&run.list);
        match &list.commands[index as usize].kind {
            CommandKind::Compute { programs, memo } => {
                // A command of recorded work may come without its programs.
                let recorded = match (memo, self.cfg.memo.as_ref()) {
                    (Some(key), Some(m)) if programs.is_empty() => m.get(*key),
                    (Some(key), Some(m)) => Some(m.record(*key, programs)),
                    _ => None,
                };
                if let Some(recorded) = recorded {
                    run.cores_left[index as usize] = 1;
                    return self.replay(index, &recorded, ctx);
                }
                if programs.is_empty() {
                    return self.complete(index, ctx);
                }
                run.cores_left[index as usize] = programs.len() as u32;
                for (core, program) in programs {
                    let Some(&target) = self.cfg.cores.get(*core as usize) else {
                        self.faults += 1;
                        continue;
                    };
                    let msg = Msg::RunProgram { program: Arc::clone(program), reply_to: ctx.me(), token: index as u64 };
                    ctx.send(target, Time::ZERO, msg);
                }
            }
            &CommandKind::Send { to, bytes, tag } => {
                self.send(to, bytes, tag, ctx);
                self.complete(index, ctx);
            }
            &CommandKind::Recv { bytes, tag } => {
                let have = self.received.get(&tag).copied().unwrap_or(0);
                if have >= bytes {
                    self.received.remove(&tag);
                    self.complete(index, ctx);
                } else {
                    run.waiting_recv.insert(tag, index);
                }
            }
        }
    }

    fn send(&mut self, to: Endpoint, bytes: u64, tag: u64, ctx: &mut Ctx<'_, Msg>) {
        let Some(route) = self.cfg.routes.get(Endpoint::Device(self.cfg.device), to) else {
            self.faults += 1;
            return;
        };
        self.sent_bytes += bytes;
        let mut left = bytes;
        while left > 0 {
            let size = left.min(self.cfg.chunk);
            left -= size;
            let chunk = Chunk { route: Arc::clone(route), hop: 0, bytes: size, tag };
            match route.links.first() {
                Some(&first) => ctx.send(first, Time::ZERO, Msg::Chunk(chunk)),
                None => ctx.send(route.dest, Time::ZERO, Msg::Arrived { tag, bytes: size }),
            }
        }
    }

    /// Run a recorded command: the chiplet's replayed commands follow each
    /// other, each taking its recorded time; what its components counted is
    /// handed to them when the list is done.
    fn replay(&mut self, index: u32, recorded: &Arc<Recorded>, ctx: &mut Ctx<'_, Msg>) {
        let start = ctx.now().max(self.replay_free);
        self.replay_free = start + recorded.duration;
        let at = Arc::as_ptr(recorded) as usize;
        match self.replay_index.get(&at) {
            Some(&i) => self.replays[i].1 += 1,
            None => {
                self.replay_index.insert(at, self.replays.len());
                self.replays.push((Arc::clone(recorded), 1));
            }
        }
        ctx.send_at(ctx.me(), self.replay_free, Msg::Done { token: index as u64 });
    }

    /// Hand each component what the replayed commands of the list counted.
    fn report_replays(&mut self, ctx: &mut Ctx<'_, Msg>) {
        if self.replays.is_empty() {
            return;
        }
        // By component, in component order, so that runs are the same every time.
        let mut to: BTreeMap<usize, (ComponentId, Vec<Replays>)> = BTreeMap::new();
        let mut book = |target: ComponentId, stats: &Arc<Recording>, times: u64| {
            to.entry(target.index()).or_insert_with(|| (target, Vec::new())).1.push((Arc::clone(stats), times));
        };
        for (recorded, times) in self.replays.drain(..) {
            for (core, stats) in &recorded.cores {
                if let Some(&target) = self.cfg.cores.get(*core as usize) {
                    book(target, stats, times);
                }
            }
            for (target, stats) in [
                (self.cfg.memory, &recorded.memory),
                (self.cfg.shared, &recorded.shared),
                (self.cfg.network, &recorded.network),
            ] {
                book(target, stats, times);
            }
        }
        self.replay_index.clear();
        for (target, records) in to.into_values() {
            ctx.send(target, Time::ZERO, Msg::Replay { records });
        }
    }

    fn complete(&mut self, index: u32, ctx: &mut Ctx<'_, Msg>) {
        let Some(run) = self.run.as_mut() else { return };
        let ready = run.flow.complete(index);
        if run.flow.finished() {
            self.finish(ctx);
            return;
        }
        for d in ready {
            self.launch(d, ctx);
        }
    }

    fn finish(&mut self, ctx: &mut Ctx<'_, Msg>) {
        // Before the list's Done, so that whoever it tells sees the counts.
        self.report_replays(ctx);
        if let Some(run) = self.run.take() {
            self.busy.record(run.started, ctx.now());
            self.lists += 1;
            ctx.send(run.reply_to, Time::ZERO, Msg::Done { token: run.token });
        }
        if let Some((list, reply_to, token)) = self.waiting.pop_front() {
            self.start(list, reply_to, token, ctx);
        }
    }

    /// A core running command `index` reached a barrier; when all its cores
    /// have, release them.
    fn barrier(&mut self, index: u32, ctx: &mut Ctx<'_, Msg>) {
        let Some(run) = self.run.as_mut() else { return };
        let CommandKind::Compute { programs, .. } = &run.list.commands[index as usize].kind else { return };
        let arrived = run.at_barrier.entry(index).or_insert(0);
        *arrived += 1;
        if *arrived as usize == programs.len() {
            run.at_barrier.remove(&index);
            for (core, _) in programs {
                if let Some(&target) = self.cfg.cores.get(*core as usize) {
                    ctx.send(target, Time::ZERO, Msg::BarrierRelease);
                }
            }
        }
    }

    fn arrived(&mut self, tag: u64, bytes: u64, ctx: &mut Ctx<'_, Msg>) {
        let have = self.received.entry(tag).or_insert(0);
        *have += bytes;
        let have = *have;
        let Some(run) = self.run.as_mut() else { return };
        let Some(&index) = run.waiting_recv.get(&tag) else { return };
        let CommandKind::Recv { bytes: want, .. } = run.list.commands[index as usize].kind else { return };
        if have >= want {
            run.waiting_recv.remove(&tag);
            self.received.remove(&tag);
            self.complete(index, ctx);
        }
    }
}

impl Component<Msg> for Sequencer {
    fn kind(&self) -> &'static str {
        "npu.sequencer"
    }

    fn handle(&mut self, msg: Msg, ctx: &mut Ctx<'_, Msg>) {
        match msg {
            Msg::RunCommands { list, reply_to, token } => {
                if self.run.is_some() {
                    self.waiting.push_back((list, reply_to, token));
                } else {
                    self.start(list, reply_to, token, ctx);
                }
            }
            Msg::Done { token } => {
                let index = token as u32;
                let Some(run) = self.run.as_mut() else { return };
                run.cores_left[index as usize] -= 1;
                if run.cores_left[index as usize] == 0 {
                    self.complete(index, ctx);
                }
            }
            Msg::Arrived { tag, bytes } => self.arrived(tag, bytes, ctx),
            Msg::BarrierArrive { token } => self.barrier(token as u32, ctx),
            other => debug_assert!(false, "sequencer received {other:?}"),
        }
    }

    fn stats(&self, now: Time) -> Stats {
        Stats::new()
            .scalar("busy", Unit::Picoseconds, "time a command list was running", self.busy.total_until(now).as_ps())
            .count("lists", "command lists completed", self.lists)
            .count("commands", "commands launched", self.commands)
            .bytes("sent_bytes", "bytes sent to other endpoints", self.sent_bytes)
            .count("faults", "commands that named a missing core or route", self.faults)
    }
}
