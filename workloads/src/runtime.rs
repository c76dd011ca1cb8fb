//! The serving runtime on the host: it forms each step's batch, lowers the
//! step, launches it on the chiplets over PCIe, waits for the logits, samples
//! the next tokens, and records when each request got each token. Its own
//! work runs as tasks on the CPU cluster model, so host time is on the
//! critical path as it is in real serving.

use crate::build::{Placement, RequestStep, build_step};
use crate::graph::StepGraph;
use crate::lower::{HostCommand, HostCommandKind, Lowered, Lowerer};
use crate::model::ModelConfig;
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
    pub routes: Arc<Routes>,
    pub chunk: u64,
    pub work: HostWork,
    pub sample: SampleWork,
    /// Pause at each step for a driver that replays step shapes (`simulation.replay_steps`).
    pub replay_steps: bool,
}

const SCHEDULE: u64 = 1;
const LAUNCH: u64 = 2;
const SAMPLE: u64 = 3;
const START: u64 = 4;
const DECIDED: u64 = 5;
const REPLAYED: u64 = 6;
const SEQUENCER: u64 = 1 << 32;
const HOST_COMMAND: u64 = 1 << 48;

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

/// The serving runtime of the leading host.
#[derive(Debug)]
pub struct HostRuntime {
    cfg: RuntimeConfig,
    planner: StepPlanner,
    scheduler: Scheduler,
    step: u64,
    /// The step in flight: its requests and what each computes.
    plan: Vec<(usize, RequestStep)>,
    /// Positions the current step computes logits for (the host samples each).
    logit_rows: u64,
    lowered: Option<Lowered>,
    waiting_lists: usize,
    host_run: HostRun,
    current: Option<StepRecord>,
    pub steps: Vec<StepRecord>,
    pub error: Option<String>,
    /// Why the runtime paused the engine, for the driver.
    pause: Option<Pause>,
    /// The device time of the step being replayed.
    replaying: Option<Time>,
    /// Whether the step in flight is being recorded for replay.
    recording: bool,
}

impl HostRuntime {
    pub fn new(cfg: RuntimeConfig, planner: StepPlanner, scheduler: Scheduler) -> HostRuntime {
        HostRuntime {
            cfg,
            planner,
            scheduler,
            step: 0,
            plan: Vec::new(),
            logit_rows: 0,
            lowered: None,
            waiting_lists: 0,
            host_run: HostRun::default(),
            current: None,
            steps: Vec::new(),
            error: None,
            pause: None,
            replaying: None,
            recording: false,
        }
    }

    /// The message that starts serving.
    pub fn start_message() -> Msg {
        Msg::Wake { token: START }
    }

    pub fn records(&self) -> Vec<RequestRecord> {
        self.scheduler.records()
    }

    pub fn scheduler(&self) -> &Scheduler {
        &self.scheduler
    }

    /// Why the runtime paused the engine, if it did.
    pub fn take_pause(&mut self) -> Option<Pause> {
        self.pause.take()
    }

    /// The driver's answer to [`Pause::Planned`]: replay the step's devices
    /// for this long, or (`None`) simulate and record it. Resume the run
    /// with [`HostRuntime::decided_message`].
    pub fn decide(&mut self, replay: Option<Time>) {
        self.replaying = replay;
        self.recording = replay.is_none();
    }

    pub fn decided_message() -> Msg {
        Msg::Wake { token: DECIDED }
    }

    fn task(&self, ctx: &mut Ctx<'_, Msg>, token: u64, task: HostTask) {
        ctx.send(self.cfg.cpu, Time::ZERO, Msg::HostTask { task: Arc::new(task), reply_to: ctx.me(), token });
    }

    fn begin_step(&mut self, ctx: &mut Ctx<'_, Msg>) {
        let now = ctx.now();
        let next_arrival = self.scheduler.arrive(now);
        self.plan = self.scheduler.plan(now);
        if self.plan.is_empty() {
            if let Some(r) = self.scheduler.stuck() {
                self.error = Some(format!(
                    "a request of {} prompt tokens needs more KV cache than the whole cache holds; \
                     give serving.kv_memory more, or shorten the requests",
                    r.prompt
                ));
                ctx.stop();
            } else if let Some(at) = next_arrival {
                ctx.send(ctx.me(), at - now, Msg::Wake { token: START });
            }
            return;
        }
        let prefill = self.plan.iter().any(|(_, r)| r.new_tokens > r.logits);
        // Prompts entering their first step are tokenised first.
        let records = self.scheduler.requests();
        let new_prompt_tokens: u64 = self
            .plan
            .iter()
            .filter(|(id, r)| r.cached == 0 && records[*id].record.first_scheduled == Some(now))
            .map(|(id, _)| records[*id].prompt as u64)
            .sum();
        self.current = Some(StepRecord {
            prefill,
            start: ctx.now(),
            launched: ctx.now(),
            logits: ctx.now(),
            end: ctx.now(),
            tokens: 0,
        });
        let w = &self.cfg.work;
        let n = self.plan.len() as u64;
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
        self.task(ctx, SCHEDULE, task);
    }

    fn plan(&mut self, ctx: &mut Ctx<'_, Msg>) {
        let steps: Vec<RequestStep> = self.plan.iter().map(|(_, r)| *r).collect();
        self.logit_rows = steps.iter().map(|r| r.logits as u64).sum();
        if self.cfg.replay_steps {
            self.pause = Some(Pause::Planned(StepShape::of(&steps)));
            ctx.stop();
            return;
        }
        self.lower(ctx);
    }

    /// After the driver's decision: the launch work, then replay or the real launch.
    fn decided(&mut self, ctx: &mut Ctx<'_, Msg>) {
        if self.replaying.is_none() {
            return self.lower(ctx);
        }
        let devices = self.cfg.sequencers.len() as u64;
        self.task(ctx, LAUNCH, self.launch_task(devices));
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

    fn lower(&mut self, ctx: &mut Ctx<'_, Msg>) {
        let steps: Vec<RequestStep> = self.plan.iter().map(|(_, r)| *r).collect();
        match self.planner.plan(self.step, &steps, self.cfg.cpu_cores) {
            Ok(lowered) => {
                let devices = lowered.lists.iter().filter(|l| !l.commands.is_empty()).count() as u64;
                self.lowered = Some(lowered);
                self.task(ctx, LAUNCH, self.launch_task(devices));
            }
            Err(e) => {
                self.error = Some(e);
                ctx.stop();
            }
        }
    }

    fn launch(&mut self, ctx: &mut Ctx<'_, Msg>) {
        if let Some(device_time) = self.replaying.take() {
            if let Some(step) = self.current.as_mut() {
                step.launched = ctx.now();
            }
            self.step += 1;
            ctx.send(ctx.me(), device_time, Msg::Wake { token: REPLAYED });
            return;
        }
        let Some(lowered) = self.lowered.take() else { return };
        let host = Endpoint::Host(self.cfg.node);
        self.waiting_lists = 0;
        for (d, list) in lowered.lists.into_iter().enumerate() {
            if list.commands.is_empty() {
                continue;
            }
            // The doorbell: a register write that crosses the same PCIe path.
            let latency = self.cfg.routes.get(host, Endpoint::Device(d as u32)).map_or(Time::ZERO, |r| r.latency);
            let list: Arc<CommandList> = Arc::new(list);
            ctx.send(
                self.cfg.sequencers[d],
                latency,
                Msg::RunCommands { list, reply_to: ctx.me(), token: SEQUENCER + d as u64 },
            );
            self.waiting_lists += 1;
        }
        self.host_run = HostRun::new(lowered.host);
        for i in self.host_run.flow.ready() {
            self.launch_host(i, ctx);
        }
        if let Some(step) = self.current.as_mut() {
            step.launched = ctx.now();
        }
        self.step += 1;
        if self.recording {
            self.pause = Some(Pause::Launched);
            ctx.stop();
        }
        self.check_outputs(ctx);
    }

    /// Start host command `i` of the step.
    fn launch_host(&mut self, i: u32, ctx: &mut Ctx<'_, Msg>) {
        match self.host_run.commands[i as usize].kind.clone() {
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
                self.complete_host(i, ctx);
            }
            HostCommandKind::Recv { tag, .. } => {
                self.host_run.waiting.insert(tag, i);
                self.arrived(tag, 0, ctx);
            }
            HostCommandKind::Compute(task) => {
                let msg = Msg::HostTask { task, reply_to: ctx.me(), token: HOST_COMMAND + i as u64 };
                ctx.send(self.cfg.cpu, Time::ZERO, msg);
            }
        }
    }

    /// `bytes` more of transfer `tag` reached the host.
    fn arrived(&mut self, tag: u64, bytes: u64, ctx: &mut Ctx<'_, Msg>) {
        let have = self.host_run.received.entry(tag).or_default();
        *have += bytes;
        let have = *have;
        let Some(&i) = self.host_run.waiting.get(&tag) else { return };
        if let HostCommandKind::Recv { bytes: want, .. } = self.host_run.commands[i as usize].kind
            && have >= want
        {
            self.host_run.waiting.remove(&tag);
            self.host_run.received.remove(&tag);
            self.complete_host(i, ctx);
        }
    }

    fn complete_host(&mut self, i: u32, ctx: &mut Ctx<'_, Msg>) {
        for next in self.host_run.flow.complete(i) {
            self.launch_host(next, ctx);
        }
        self.check_outputs(ctx);
    }

    fn check_outputs(&mut self, ctx: &mut Ctx<'_, Msg>) {
        if self.waiting_lists > 0 || !self.host_run.flow.finished() {
            return;
        }
        if self.recording {
            self.recording = false;
            let launched = self.current.as_ref().map_or(ctx.now(), |s| s.launched);
            self.pause = Some(Pause::LogitsIn { device_time: ctx.now() - launched });
            ctx.stop();
        }
        self.logits_in(ctx);
    }

    /// Every device is done and the logits are at the host: sample.
    fn logits_in(&mut self, ctx: &mut Ctx<'_, Msg>) {
        if let Some(step) = self.current.as_mut() {
            step.logits = ctx.now();
        }
        let task = self.cfg.sample.task(self.logit_rows, self.cfg.work.sample_per_request, self.cfg.cpu_cores);
        self.task(ctx, SAMPLE, task);
    }

    fn tokens_out(&mut self, ctx: &mut Ctx<'_, Msg>) {
        let now = ctx.now();
        let made = self.scheduler.tokens_out(&self.plan, now);
        if let Some(mut step) = self.current.take() {
            step.end = now;
            step.tokens = made;
            self.steps.push(step);
        }
        self.begin_step(ctx);
    }
}

impl Component<Msg> for HostRuntime {
    fn kind(&self) -> &'static str {
        "host.runtime"
    }

    fn handle(&mut self, msg: Msg, ctx: &mut Ctx<'_, Msg>) {
        match msg {
            Msg::Wake { token: START } => self.begin_step(ctx),
            Msg::Done { token: SCHEDULE } => self.plan(ctx),
            Msg::Done { token: LAUNCH } => self.launch(ctx),
            Msg::Done { token: SAMPLE } => self.tokens_out(ctx),
            Msg::Wake { token: DECIDED } => self.decided(ctx),
            Msg::Wake { token: REPLAYED } => self.logits_in(ctx),
            Msg::Done { token } if (SEQUENCER..HOST_COMMAND).contains(&token) => {
                self.waiting_lists -= 1;
                self.check_outputs(ctx);
            }
            Msg::Done { token } if token >= HOST_COMMAND => self.complete_host((token - HOST_COMMAND) as u32, ctx),
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
