//! The serving runtime on the host: it forms each step's batch, lowers the
//! step, launches it on the chiplets over PCIe, waits for the logits, samples
//! the next tokens, and records when each request got each token. Its own
//! work runs as tasks on the CPU cluster model, so host time is on the
//! critical path as it is in real serving.

use crate::build::{Placement, RequestStep, build_step};
use crate::lower::{Lowered, Lowerer};
use crate::model::ModelConfig;
use crate::routing::Router;
use crate::workload::{Phase, Sampling, Scenario};
use models::cpu::HostTask;
use models::fabric::{Endpoint, Routes};
use models::msg::{Chunk, Msg};
use models::npu::CommandList;
use sim_core::{Component, ComponentId, Ctx, Stats, Time, Unit};
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
    /// Sampling: vector FLOPs per logit (convert, max, exp, sum, select).
    pub sample_flops_per_logit: u64,
    /// Sampling and detokenising: scalar instructions per request.
    pub sample_per_request: u64,
}

impl Default for HostWork {
    fn default() -> Self {
        HostWork {
            schedule_instructions: 50_000,
            schedule_per_request: 2_000,
            launch_per_device: 10_000,
            sample_flops_per_logit: 6,
            sample_per_request: 20_000,
        }
    }
}

/// When a request got its tokens.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestRecord {
    pub arrival: Time,
    pub first_token: Option<Time>,
    pub last_token: Option<Time>,
    pub tokens: u32,
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

/// Builds and lowers each step.
#[derive(Debug)]
pub struct StepPlanner {
    pub model: ModelConfig,
    pub scenario: Scenario,
    pub placement: Placement,
    pub router: Router,
    pub lowerer: Lowerer,
}

impl StepPlanner {
    pub fn plan(&mut self, step: u64, requests: &[RequestStep]) -> Result<Lowered, crate::lower::LowerError> {
        let graph = build_step(&self.model, &self.scenario, &self.placement, requests, &mut self.router);
        self.lowerer.lower(&graph, step)
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
}

const SCHEDULE: u64 = 1;
const LAUNCH: u64 = 2;
const SAMPLE: u64 = 3;
const START: u64 = 4;
const SEQUENCER: u64 = 1 << 32;

#[derive(Debug)]
struct Request {
    context: u32,
    generated: u32,
    target: u32,
    prefilled: bool,
    record: RequestRecord,
}

/// The serving runtime of the leading host.
#[derive(Debug)]
pub struct HostRuntime {
    cfg: RuntimeConfig,
    planner: StepPlanner,
    requests: Vec<Request>,
    step: u64,
    active: Vec<usize>,
    lowered: Option<Lowered>,
    waiting_lists: usize,
    waiting_bytes: u64,
    current: Option<StepRecord>,
    pub steps: Vec<StepRecord>,
    pub error: Option<String>,
}

impl HostRuntime {
    pub fn new(cfg: RuntimeConfig, planner: StepPlanner) -> HostRuntime {
        let s = &planner.scenario;
        let requests = (0..s.batch)
            .map(|_| Request {
                context: s.context_tokens,
                generated: 0,
                target: s.output_tokens,
                prefilled: s.phase == Phase::Decode,
                record: RequestRecord::default(),
            })
            .collect();
        HostRuntime {
            cfg,
            planner,
            requests,
            step: 0,
            active: Vec::new(),
            lowered: None,
            waiting_lists: 0,
            waiting_bytes: 0,
            current: None,
            steps: Vec::new(),
            error: None,
        }
    }

    /// The message that starts serving.
    pub fn start_message() -> Msg {
        Msg::Wake { token: START }
    }

    pub fn records(&self) -> Vec<RequestRecord> {
        self.requests.iter().map(|r| r.record.clone()).collect()
    }

    fn task(&self, ctx: &mut Ctx<'_, Msg>, token: u64, task: HostTask) {
        ctx.send(self.cfg.cpu, Time::ZERO, Msg::HostTask { task: Arc::new(task), reply_to: ctx.me(), token });
    }

    fn begin_step(&mut self, ctx: &mut Ctx<'_, Msg>) {
        self.active =
            (0..self.requests.len()).filter(|&i| self.requests[i].generated < self.requests[i].target).collect();
        if self.active.is_empty() {
            return;
        }
        let prefill = self.active.iter().any(|&i| !self.requests[i].prefilled);
        self.current = Some(StepRecord {
            prefill,
            start: ctx.now(),
            launched: ctx.now(),
            logits: ctx.now(),
            end: ctx.now(),
            tokens: 0,
        });
        let w = &self.cfg.work;
        let n = self.active.len() as u64;
        let task = HostTask {
            name: "schedule",
            instructions: w.schedule_instructions + w.schedule_per_request * n,
            ilp: 2.0,
            vector_flops: 0,
            bytes: 0,
            threads: 1,
        };
        self.task(ctx, SCHEDULE, task);
    }

    fn plan(&mut self, ctx: &mut Ctx<'_, Msg>) {
        let steps: Vec<RequestStep> = self
            .active
            .iter()
            .map(|&i| {
                let r = &self.requests[i];
                if r.prefilled {
                    RequestStep { cached: r.context + r.generated, new_tokens: 1 }
                } else {
                    RequestStep { cached: 0, new_tokens: r.context }
                }
            })
            .collect();
        match self.planner.plan(self.step, &steps) {
            Ok(lowered) => {
                let devices = lowered.lists.iter().filter(|l| !l.commands.is_empty()).count() as u64;
                self.lowered = Some(lowered);
                let task = HostTask {
                    name: "launch",
                    instructions: self.cfg.work.launch_per_device * devices,
                    ilp: 2.0,
                    vector_flops: 0,
                    bytes: 0,
                    threads: 1,
                };
                self.task(ctx, LAUNCH, task);
            }
            Err(e) => {
                self.error = Some(e.to_string());
                ctx.stop();
            }
        }
    }

    fn launch(&mut self, ctx: &mut Ctx<'_, Msg>) {
        let Some(lowered) = self.lowered.take() else { return };
        let host = Endpoint::Host(self.cfg.node);
        for &(to, bytes, tag) in &lowered.host_sends {
            let Some(route) = self.cfg.routes.get(host, to) else { continue };
            let mut left = bytes;
            while left > 0 {
                let size = left.min(self.cfg.chunk);
                left -= size;
                let chunk = Chunk { route: Arc::clone(route), hop: 0, bytes: size, tag };
                ctx.send(route.links[0], Time::ZERO, Msg::Chunk(chunk));
            }
        }
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
        self.waiting_bytes = lowered.host_receives;
        if let Some(step) = self.current.as_mut() {
            step.launched = ctx.now();
        }
        self.step += 1;
        self.check_outputs(ctx);
    }

    fn check_outputs(&mut self, ctx: &mut Ctx<'_, Msg>) {
        if self.waiting_lists > 0 || self.waiting_bytes > 0 {
            return;
        }
        if let Some(step) = self.current.as_mut() {
            step.logits = ctx.now();
        }
        let w = &self.cfg.work;
        let n = self.active.len() as u64;
        let s = &self.planner.scenario;
        // The values the host samples among, per request, and their size.
        let (candidates, bytes_each) = match s.sampling {
            Sampling::Host => (self.planner.model.vocab as u64, s.activation_dtype.bytes()),
            Sampling::Device => (s.top_k as u64 * self.planner.placement.devices as u64, 8),
        };
        let task = HostTask {
            name: "sample",
            instructions: w.sample_per_request * n,
            ilp: 3.0,
            vector_flops: w.sample_flops_per_logit * candidates * n,
            bytes: candidates * n * bytes_each,
            threads: (n as u32).clamp(1, self.cfg.cpu_cores),
        };
        self.task(ctx, SAMPLE, task);
    }

    fn tokens_out(&mut self, ctx: &mut Ctx<'_, Msg>) {
        let now = ctx.now();
        for &i in &self.active {
            let r = &mut self.requests[i];
            r.prefilled = true;
            r.generated += 1;
            r.record.tokens += 1;
            r.record.first_token.get_or_insert(now);
            r.record.last_token = Some(now);
        }
        if let Some(mut step) = self.current.take() {
            step.end = now;
            step.tokens = self.active.len() as u32;
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
            Msg::Done { token } if token >= SEQUENCER => {
                self.waiting_lists -= 1;
                self.check_outputs(ctx);
            }
            Msg::Arrived { bytes, .. } => {
                self.waiting_bytes = self.waiting_bytes.saturating_sub(bytes);
                self.check_outputs(ctx);
            }
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
