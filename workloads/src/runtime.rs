//! The serving runtime on the host: it forms each step's batch, lowers the
//! step, launches it on the chiplets over PCIe, waits for the logits, samples
//! the next tokens, and records when each request got each token. Its own
//! work runs as tasks on the CPU cluster model, so host time is on the
//! critical path as it is in real serving.

use crate::build::{RequestStep, build_step};
use crate::graph::StepGraph;
use crate::lower::{HostCommand, HostCommandKind, Lowered, Lowerer};
use crate::model::ModelConfig;
use crate::placement::Placement;
use crate::routing::Router;
use crate::sampling::SampleWork;
pub use crate::scheduler::RequestRecord;
use crate::scheduler::Scheduler;
use crate::step_memo::{Pause, StepShape};
use crate::workload::Scenario;
use models::cpu::HostTask;
use models::fabric::{Endpoint, Routes};
use models::msg::{Chunk, Msg};
use models::npu::CommandList;
use sim_core::{Component, ComponentId, Ctx, Dataflow, Stats, Time, Unit};
use std::collections::{HashMap, VecDeque};
use std::ops::Range;
use std::sync::Arc;

/// The host work of serving, per step, in the CPU model's terms. These are
/// estimates of a lean C++/Rust serving loop, not measurements.
#[derive(Clone, Debug, PartialEq)]
pub struct HostWork {
    /// Forming the batch: fixed plus per request.
    pub schedule_instructions: u64,
    pub schedule_per_request: u64,
    /// Driver work per device launched (descriptors, doorbell).
    pub launch_per_device: u64,
    /// Detokenising and streaming a token, besides choosing it (see
    /// [`crate::sampling`]): scalar instructions per request.
    pub sample_per_request: u64,
    /// Tokenising a newly scheduled prompt: instructions per prompt token.
    pub tokenize_per_token: u64,
}

impl Default for HostWork {
    fn default() -> Self {
        HostWork {
            schedule_instructions: 50_000,
            schedule_per_request: 2_000,
            launch_per_device: 10_000,
            sample_per_request: 20_000,
            tokenize_per_token: 1_000,
        }
    }
}

/// One step: its kind and when it started and ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepRecord {
    pub prefill: bool,
    pub start: Time,
    /// When the devices were launched (after host scheduling and launch work).
    pub launched: Time,
    /// When the last logits reached the host.
    pub logits: Time,
    pub end: Time,
    pub tokens: u32,
}

/// Where each step's op graph comes from.
#[derive(Debug)]
pub enum StepSource {
    /// Built from the model and scenario, with expert choices drawn by the router.
    Build { model: Box<ModelConfig>, scenario: Box<Scenario>, placement: Placement, router: Router },
    /// Recorded graphs (a step trace), one per step, in order.
    Recorded(VecDeque<StepGraph>),
}

/// Gives each step's op graph and lowers it.
#[derive(Debug)]
pub struct StepPlanner {
    pub source: StepSource,
    pub lowerer: Lowerer,
}

impl StepSource {
    /// The graph of the next step, whose requests are `requests`.
    pub fn graph(&mut self, requests: &[RequestStep]) -> Option<StepGraph> {
        match self {
            StepSource::Build { model, scenario, placement, router } => {
                Some(build_step(model, scenario, placement, requests, router))
            }
            StepSource::Recorded(graphs) => graphs.pop_front(),
        }
    }
}

impl StepPlanner {
    pub fn plan(&mut self, step: u64, requests: &[RequestStep], host_cores: u32) -> Result<Lowered, String> {
        let graph = self.source.graph(requests).ok_or_else(|| format!("the trace has no graph for step {step}"))?;
        self.lowerer.lower(&graph, step, host_cores).map_err(|e| e.to_string())
    }
}

#[derive(Debug)]
pub struct RuntimeConfig {
    pub node: u32,
    pub cpu: ComponentId,
    pub cpu_cores: u32,
    pub sequencers: Vec<ComponentId>,
    /// Independent data-parallel replicas: each one's devices, stepping on
    /// its own. Empty: the devices step together, as one.
    pub replicas: Vec<Range<u32>>,
    pub routes: Arc<Routes>,
    pub chunk: u64,
    pub work: HostWork,
    pub sample: SampleWork,
    /// Pause at each step for a driver that replays step shapes (`simulation.replay_steps`).
    pub replay_steps: bool,
}

// Tokens of the runtime's own messages: a kind in the low byte, the lane above it.
const SCHEDULE: u64 = 1;
const LAUNCH: u64 = 2;
const SAMPLE: u64 = 3;
const START: u64 = 4;
const DECIDED: u64 = 5;
const REPLAYED: u64 = 6;
const SEQUENCER: u64 = 1 << 32;
/// Host command `i` of lane `l`: `HOST_COMMAND + (l << 32) + i`.
const HOST_COMMAND: u64 = 1 << 48;

fn token(kind: u64, lane: usize) -> u64 {
    kind | (lane as u64) << 8
}

/// The host's commands of the step in flight, run as their dependencies finish.
#[derive(Debug, Default)]
struct HostRun {
    commands: Vec<HostCommand>,
    flow: Dataflow,
    /// Receives waiting for their bytes, by tag.
    waiting: HashMap<u64, u32>,
    /// Bytes arrived per tag, not yet claimed by a receive.
    received: HashMap<u64, u64>,
}

impl HostRun {
    fn new(commands: Vec<HostCommand>) -> HostRun {
        let flow = Dataflow::new(commands.iter().map(|c| c.deps.as_slice()));
        HostRun { commands, flow, ..HostRun::default() }
    }
}

/// What steps on its own: every device together, or one independent
/// replica; each has at most one step in flight.
#[derive(Debug, Default)]
struct Lane {
    /// The replica it serves; `None`: all of them, together.
    replica: Option<u32>,
    /// Its devices.
    devices: Range<u32>,
    /// The number of the step in flight (it names the step's transfers).
    step: u64,
    /// The step in flight: its requests and what each computes.
    plan: Vec<(usize, RequestStep)>,
    /// Positions the current step computes logits for (the host samples each).
    logit_rows: u64,
    lowered: Option<Lowered>,
    waiting_lists: usize,
    host_run: HostRun,
    current: Option<StepRecord>,
    /// The device time of the step being replayed.
    replaying: Option<Time>,
    /// Whether the step in flight is being recorded for replay.
    recording: bool,
}

/// The serving runtime of the leading host.
#[derive(Debug)]
pub struct HostRuntime {
    cfg: RuntimeConfig,
    planner: StepPlanner,
    scheduler: Scheduler,
    /// Steps planned so far, every lane's.
    step: u64,
    lanes: Vec<Lane>,
    /// Per device, the lane that drives it.
    lane_of_device: Vec<usize>,
    pub steps: Vec<StepRecord>,
    pub error: Option<String>,
    /// Why the runtime paused the engine, and for which lane, for the driver.
    pauses: VecDeque<(usize, Pause)>,
}

impl HostRuntime {
    pub fn new(cfg: RuntimeConfig, planner: StepPlanner, scheduler: Scheduler) -> HostRuntime {
        let all = 0..cfg.sequencers.len() as u32;
        let lanes: Vec<Lane> = if cfg.replicas.len() > 1 {
            let lane = |(r, devices): (usize, &Range<u32>)| Lane {
                replica: Some(r as u32),
                devices: devices.clone(),
                ..Lane::default()
            };
            cfg.replicas.iter().enumerate().map(lane).collect()
        } else {
            vec![Lane { devices: all.clone(), ..Lane::default() }]
        };
        let mut lane_of_device = vec![0; all.len()];
        for (l, lane) in lanes.iter().enumerate() {
            for d in lane.devices.clone() {
                lane_of_device[d as usize] = l;
            }
        }
        HostRuntime {
            cfg,
            planner,
            scheduler,
            step: 0,
            lanes,
            lane_of_device,
            steps: Vec::new(),
            error: None,
            pauses: VecDeque::new(),
        }
    }

    /// The messages that start serving, one per lane.
    pub fn start_messages(&self) -> Vec<Msg> {
        (0..self.lanes.len()).map(|l| Msg::Wake { token: token(START, l) }).collect()
    }

    pub fn records(&self) -> Vec<RequestRecord> {
        self.scheduler.records()
    }

    pub fn scheduler(&self) -> &Scheduler {
        &self.scheduler
    }

    /// Per lane, its devices.
    pub fn lane_devices(&self) -> Vec<Range<u32>> {
        self.lanes.iter().map(|l| l.devices.clone()).collect()
    }

    /// Why the runtime paused the engine, and for which lane, if it did.
    pub fn take_pause(&mut self) -> Option<(usize, Pause)> {
        self.pauses.pop_front()
    }

    /// The driver's answer to [`Pause::Planned`] of `lane`: replay the
    /// step's devices for this long, or (`None`) simulate and record it.
    /// Resume the run with [`HostRuntime::decided_message`].
    pub fn decide(&mut self, lane: usize, replay: Option<Time>) {
        self.lanes[lane].replaying = replay;
        self.lanes[lane].recording = replay.is_none();
    }

    pub fn decided_message(lane: usize) -> Msg {
        Msg::Wake { token: token(DECIDED, lane) }
    }

    fn pause(&mut self, lane: usize, pause: Pause, ctx: &mut Ctx<'_, Msg>) {
        self.pauses.push_back((lane, pause));
        ctx.stop();
    }

    fn task(&self, ctx: &mut Ctx<'_, Msg>, token: u64, task: HostTask) {
        ctx.send(self.cfg.cpu, Time::ZERO, Msg::HostTask { task: Arc::new(task), reply_to: ctx.me(), token });
    }

    fn begin_step(&mut self, l: usize, ctx: &mut Ctx<'_, Msg>) {
        let now = ctx.now();
        let next_arrival = self.scheduler.arrive(now);
        let plan = match self.lanes[l].replica {
            Some(r) => self.scheduler.plan_replica(now, r),
            None => self.scheduler.plan(now),
        };
        if plan.is_empty() {
            if let Some(r) = self.scheduler.stuck() {
                self.error = Some(format!(
                    "a request of {} prompt tokens needs more KV cache than the whole cache holds; \
                     give serving.kv_memory more, or shorten the requests",
                    r.prompt
                ));
                ctx.stop();
            } else if let Some(at) = next_arrival {
                ctx.send(ctx.me(), at - now, Msg::Wake { token: token(START, l) });
            }
            return;
        }
        let prefill = plan.iter().any(|(_, r)| r.new_tokens > r.logits);
        // Prompts entering their first step are tokenised first.
        let records = self.scheduler.requests();
        let new_prompt_tokens: u64 = plan
            .iter()
            .filter(|(id, r)| r.cached == 0 && records[*id].record.first_scheduled == Some(now))
            .map(|(id, _)| records[*id].prompt as u64)
            .sum();
        let w = &self.cfg.work;
        let n = plan.len() as u64;
        let task = HostTask {
            name: "schedule",
            instructions: w.schedule_instructions
                + w.schedule_per_request * n
                + w.tokenize_per_token * new_prompt_tokens,
            ilp: 2.0,
            vector_flops: 0,
            bytes: 0,
            working_set: 0,
            threads: 1,
        };
        let lane = &mut self.lanes[l];
        lane.plan = plan;
        lane.current = Some(StepRecord { prefill, start: now, launched: now, logits: now, end: now, tokens: 0 });
        self.task(ctx, token(SCHEDULE, l), task);
    }

    fn requests(&self, l: usize) -> Vec<RequestStep> {
        self.lanes[l].plan.iter().map(|(_, r)| *r).collect()
    }

    fn plan(&mut self, l: usize, ctx: &mut Ctx<'_, Msg>) {
        let steps = self.requests(l);
        self.lanes[l].logit_rows = steps.iter().map(|r| r.logits as u64).sum();
        if self.cfg.replay_steps {
            return self.pause(l, Pause::Planned(StepShape::of(&steps)), ctx);
        }
        self.lower(l, ctx);
    }

    /// After the driver's decision: the launch work, then replay or the real launch.
    fn decided(&mut self, l: usize, ctx: &mut Ctx<'_, Msg>) {
        if self.lanes[l].replaying.is_none() {
            return self.lower(l, ctx);
        }
        let devices = self.lanes[l].devices.len() as u64;
        self.task(ctx, token(LAUNCH, l), self.launch_task(devices));
    }

    fn launch_task(&self, devices: u64) -> HostTask {
        HostTask {
            name: "launch",
            instructions: self.cfg.work.launch_per_device * devices,
            ilp: 2.0,
            vector_flops: 0,
            bytes: 0,
            working_set: 0,
            threads: 1,
        }
    }

    fn lower(&mut self, l: usize, ctx: &mut Ctx<'_, Msg>) {
        let steps = self.requests(l);
        // Numbered when lowered, so that lanes' steps in flight together name their transfers apart.
        self.lanes[l].step = self.step;
        self.step += 1;
        match self.planner.plan(self.lanes[l].step, &steps, self.cfg.cpu_cores) {
            Ok(lowered) => {
                let devices = lowered.lists.iter().filter(|l| !l.commands.is_empty()).count() as u64;
                self.lanes[l].lowered = Some(lowered);
                self.task(ctx, token(LAUNCH, l), self.launch_task(devices));
            }
            Err(e) => {
                self.error = Some(e);
                ctx.stop();
            }
        }
    }

    fn launch(&mut self, l: usize, ctx: &mut Ctx<'_, Msg>) {
        let now = ctx.now();
        let lane = &mut self.lanes[l];
        if let Some(device_time) = lane.replaying.take() {
            if let Some(step) = lane.current.as_mut() {
                step.launched = now;
            }
            ctx.send(ctx.me(), device_time, Msg::Wake { token: token(REPLAYED, l) });
            return;
        }
        let Some(lowered) = lane.lowered.take() else { return };
        let host = Endpoint::Host(self.cfg.node);
        lane.waiting_lists = 0;
        for (d, list) in lowered.lists.into_iter().enumerate() {
            if list.commands.is_empty() {
                continue;
            }
            debug_assert_eq!(self.lane_of_device[d], l, "a step ran on a device outside its lane");
            // The doorbell: a register write that crosses the same PCIe path.
            let latency = self.cfg.routes.get(host, Endpoint::Device(d as u32)).map_or(Time::ZERO, |r| r.latency);
            let list: Arc<CommandList> = Arc::new(list);
            ctx.send(
                self.cfg.sequencers[d],
                latency,
                Msg::RunCommands { list, reply_to: ctx.me(), token: SEQUENCER + d as u64 },
            );
            lane.waiting_lists += 1;
        }
        lane.host_run = HostRun::new(lowered.host);
        if let Some(step) = lane.current.as_mut() {
            step.launched = now;
        }
        let recording = lane.recording;
        for i in self.lanes[l].host_run.flow.ready() {
            self.launch_host(l, i, ctx);
        }
        if recording {
            self.pause(l, Pause::Launched, ctx);
        }
        self.check_outputs(l, ctx);
    }

    /// Start host command `i` of lane `l`'s step.
    fn launch_host(&mut self, l: usize, i: u32, ctx: &mut Ctx<'_, Msg>) {
        match self.lanes[l].host_run.commands[i as usize].kind.clone() {
            HostCommandKind::Send { to, bytes, tag } => {
                if let Some(route) = self.cfg.routes.get(Endpoint::Host(self.cfg.node), to) {
                    let mut left = bytes;
                    while left > 0 {
                        let size = left.min(self.cfg.chunk);
                        left -= size;
                        let chunk = Chunk { route: Arc::clone(route), hop: 0, bytes: size, tag };
                        ctx.send(route.links[0], Time::ZERO, Msg::Chunk(chunk));
                    }
                }
                self.complete_host(l, i, ctx);
            }
            HostCommandKind::Recv { tag, .. } => {
                self.lanes[l].host_run.waiting.insert(tag, i);
                self.arrived(tag, 0, ctx);
            }
            HostCommandKind::Compute(task) => {
                let token = HOST_COMMAND + ((l as u64) << 32) + i as u64;
                ctx.send(self.cfg.cpu, Time::ZERO, Msg::HostTask { task, reply_to: ctx.me(), token });
            }
        }
    }

    /// `bytes` more of transfer `tag` reached the host.
    fn arrived(&mut self, tag: u64, bytes: u64, ctx: &mut Ctx<'_, Msg>) {
        let step = tag >> 24;
        let Some(l) = self.lanes.iter().position(|lane| lane.step == step && lane.current.is_some()) else {
            debug_assert!(false, "bytes of step {step}, which no lane has in flight");
            return;
        };
        let run = &mut self.lanes[l].host_run;
        let have = run.received.entry(tag).or_default();
        *have += bytes;
        let have = *have;
        let Some(&i) = run.waiting.get(&tag) else { return };
        if let HostCommandKind::Recv { bytes: want, .. } = run.commands[i as usize].kind
            && have >= want
        {
            run.waiting.remove(&tag);
            run.received.remove(&tag);
            self.complete_host(l, i, ctx);
        }
    }

    fn complete_host(&mut self, l: usize, i: u32, ctx: &mut Ctx<'_, Msg>) {
        for next in self.lanes[l].host_run.flow.complete(i) {
            self.launch_host(l, next, ctx);
        }
        self.check_outputs(l, ctx);
    }

    fn check_outputs(&mut self, l: usize, ctx: &mut Ctx<'_, Msg>) {
        let lane = &mut self.lanes[l];
        if lane.waiting_lists > 0 || !lane.host_run.flow.finished() {
            return;
        }
        if lane.recording {
            lane.recording = false;
            let launched = lane.current.as_ref().map_or(ctx.now(), |s| s.launched);
            self.pause(l, Pause::LogitsIn { device_time: ctx.now() - launched }, ctx);
        }
        self.logits_in(l, ctx);
    }

    /// Every device of the lane is done and the logits are at the host: sample.
    fn logits_in(&mut self, l: usize, ctx: &mut Ctx<'_, Msg>) {
        let lane = &mut self.lanes[l];
        if let Some(step) = lane.current.as_mut() {
            step.logits = ctx.now();
        }
        let task = self.cfg.sample.task(lane.logit_rows, self.cfg.work.sample_per_request, self.cfg.cpu_cores);
        self.task(ctx, token(SAMPLE, l), task);
    }

    fn tokens_out(&mut self, l: usize, ctx: &mut Ctx<'_, Msg>) {
        let now = ctx.now();
        let plan = std::mem::take(&mut self.lanes[l].plan);
        let made = self.scheduler.tokens_out(&plan, now);
        if let Some(mut step) = self.lanes[l].current.take() {
            step.end = now;
            step.tokens = made;
            self.steps.push(step);
        }
        self.begin_step(l, ctx);
    }
}

impl Component<Msg> for HostRuntime {
    fn kind(&self) -> &'static str {
        "host.runtime"
    }

    fn handle(&mut self, msg: Msg, ctx: &mut Ctx<'_, Msg>) {
        match msg {
            Msg::Done { token } if token >= HOST_COMMAND => {
                let (l, i) = ((token - HOST_COMMAND) >> 32, (token - HOST_COMMAND) & 0xffff_ffff);
                self.complete_host(l as usize, i as u32, ctx)
            }
            Msg::Done { token } if token >= SEQUENCER => {
                let l = self.lane_of_device[(token - SEQUENCER) as usize];
                self.lanes[l].waiting_lists -= 1;
                self.check_outputs(l, ctx);
            }
            Msg::Wake { token } | Msg::Done { token } => {
                let l = (token >> 8) as usize;
                match token & 0xff {
                    START => self.begin_step(l, ctx),
                    SCHEDULE => self.plan(l, ctx),
                    LAUNCH => self.launch(l, ctx),
                    SAMPLE => self.tokens_out(l, ctx),
                    DECIDED => self.decided(l, ctx),
                    REPLAYED => self.logits_in(l, ctx),
                    other => debug_assert!(false, "runtime woken with token {other}"),
                }
            }
            Msg::Arrived { tag, bytes } => self.arrived(tag, bytes, ctx),
            other => debug_assert!(false, "runtime received {other:?}"),
        }
    }

    fn stats(&self, _now: Time) -> Stats {
        let sum = |f: fn(&StepRecord) -> Time| self.steps.iter().map(f).sum::<Time>().as_ps();
        Stats::new()
            .count("steps", "steps completed", self.steps.len() as u64)
            .scalar(
                "host_before_launch",
                Unit::Picoseconds,
                "step time before the devices were launched (scheduling, lowering, launch work)",
                sum(|s| s.launched - s.start),
            )
            .scalar(
                "devices",
                Unit::Picoseconds,
                "step time from launch to the last logits at the host",
                sum(|s| s.logits - s.launched),
            )
            .scalar(
                "host_after_logits",
                Unit::Picoseconds,
                "step time from the logits to the tokens (sampling)",
                sum(|s| s.end - s.logits),
            )
    }
}

/// A host that serves no requests itself: it only accepts transfers addressed to it.
#[derive(Debug, Default)]
pub struct PassiveHost {
    received: u64,
}

impl Component<Msg> for PassiveHost {
    fn kind(&self) -> &'static str {
        "host.passive"
    }
    fn handle(&mut self, msg: Msg, _ctx: &mut Ctx<'_, Msg>) {
        if let Msg::Arrived { bytes, .. } = msg {
            self.received += bytes;
        }
    }
    fn stats(&self, _now: Time) -> Stats {
        Stats::new().bytes("received", "bytes received", self.received)
    }
}
