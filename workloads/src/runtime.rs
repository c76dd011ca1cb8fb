//! The serving runtime on the host: it forms each step's batch, lowers the
//! step, launches it on the chiplets over PCIe, waits for the logits, samples
//! the next tokens, and records when each request got each token. Its own
//! work runs as tasks on the CPU cluster model, so host time is on the
//! critical path as it is in real serving.

use crate::batch::Batch;
pub use crate::batch::RequestRecord;
use crate::build::{Placement, RequestStep, build_step};
use crate::graph::StepGraph;
use crate::lower::{Lowered, Lowerer};
use crate::model::ModelConfig;
use crate::routing::Router;
use crate::workload::{Sampling, Scenario};
use models::cpu::HostTask;
use models::fabric::{Endpoint, Routes};
use models::msg::{Chunk, Msg};
use models::npu::CommandList;
use serde::{Deserialize, Serialize};
use sim_core::{Component, ComponentId, Ctx, Stats, Time, Unit};
use std::collections::VecDeque;
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
    Build { model: Box<ModelConfig>, scenario: Scenario, placement: Placement, router: Router },
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
    pub fn plan(&mut self, step: u64, requests: &[RequestStep]) -> Result<Lowered, String> {
        let graph = self.source.graph(requests).ok_or_else(|| format!("the trace has no graph for step {step}"))?;
        self.lowerer.lower(&graph, step).map_err(|e| e.to_string())
    }
}

/// What the host samples among when logits arrive.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SampleWork {
    /// Values the host chooses among, per request.
    pub candidates_per_request: u64,
    pub bytes_per_candidate: u64,
}

impl SampleWork {
    /// Host sampling over the whole vocabulary, or over the top-k each device sends.
    pub fn of(model: &ModelConfig, s: &Scenario, devices: u32) -> SampleWork {
        match s.sampling {
            Sampling::Host => SampleWork {
                candidates_per_request: model.vocab as u64,
                bytes_per_candidate: s.activation_dtype.bytes(),
            },
            Sampling::Device => {
                SampleWork { candidates_per_request: s.top_k as u64 * devices as u64, bytes_per_candidate: 8 }
            }
        }
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
}

const SCHEDULE: u64 = 1;
const LAUNCH: u64 = 2;
const SAMPLE: u64 = 3;
const START: u64 = 4;
const SEQUENCER: u64 = 1 << 32;

/// The serving runtime of the leading host.
#[derive(Debug)]
pub struct HostRuntime {
    cfg: RuntimeConfig,
    planner: StepPlanner,
    batch: Batch,
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
    pub fn new(cfg: RuntimeConfig, planner: StepPlanner, batch: Batch) -> HostRuntime {
        HostRuntime {
            cfg,
            planner,
            batch,
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
        self.batch.records()
    }

    fn task(&self, ctx: &mut Ctx<'_, Msg>, token: u64, task: HostTask) {
        ctx.send(self.cfg.cpu, Time::ZERO, Msg::HostTask { task: Arc::new(task), reply_to: ctx.me(), token });
    }

    fn begin_step(&mut self, ctx: &mut Ctx<'_, Msg>) {
        self.active = self.batch.active();
        if self.active.is_empty() {
            return;
        }
        let prefill = self.batch.prefills(&self.active);
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
        let steps = self.batch.step(&self.active);
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
                self.error = Some(e);
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
        let SampleWork { candidates_per_request: candidates, bytes_per_candidate: bytes_each } = self.cfg.sample;
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
        self.batch.tokens_out(&self.active, now);
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
