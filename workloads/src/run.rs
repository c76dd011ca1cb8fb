//! A whole run: check that the workload fits the hardware, assemble the
//! machine with the serving runtime on its host, run the event engine, and
//! collect what happened.

use crate::arrivals::arrivals;
use crate::build::RequestStep;
use crate::graph::StepGraph;
use crate::kernels::CoreTarget;
use crate::lower::Lowerer;
use crate::model::{Attention, ModelConfig};
use crate::placement::{Placement, replica_of};
use crate::routing::Router;
use crate::runtime::{HostRuntime, HostWork, PassiveHost, RuntimeConfig, StepPlanner, StepRecord, StepSource};
use crate::sampling::SampleWork;
use crate::scheduler::{Arrival, Policy, RequestRecord, Scheduler};
use crate::step_memo::{Lanes, Pause, StepMemo};
use crate::workload::{HostOp, Workload, WorkloadSpec};

use isa::Dtype;
use models::energy::EnergyBreakdown;
use models::msg::Msg;
use models::spec::{CardSpec, SystemSpec};
use models::units::Bytes;
use sim_core::{ComponentStats, RunOutcome, SystemBuilder, Time};
use std::fmt;

/// Everything a run produced.
#[derive(Debug, Clone)]
pub struct RunResult {
    pub hardware: SystemSpec,
    pub workload: WorkloadSpec,
    /// The model config, when known (a trace from elsewhere may not carry one).
    pub model: Option<ModelConfig>,
    pub seed: u64,
    pub devices: u32,
    pub placement: Placement,
    pub memory: MemoryUse,
    /// Simulated time at the end of the run.
    pub simulated: Time,
    /// Events the engine handled.
    pub events: u64,
    pub requests: Vec<RequestRecord>,
    pub steps: Vec<StepRecord>,
    /// Steps whose device part was replayed from an earlier step of the same shape (`simulation.replay_steps`).
    pub replayed_steps: u64,
    pub stats: Vec<ComponentStats>,
    pub energy: EnergyBreakdown,
}

/// Why a workload cannot run on a system: always a problem with the inputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunError(pub String);

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RunError {}

/// Device memory one chiplet needs, against what it has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryUse {
    pub weights: u64,
    pub kv_cache: u64,
    pub capacity: u64,
}

/// Bytes of weights and KV cache the busiest device holds under `placement`,
/// when its replica's requests hold `kv_tokens` tokens of context in all.
/// Each pipeline stage holds its layers (the first also the embedding, the
/// last the LM head and any multi-token-prediction layer); the busiest stage counts.
pub fn memory_use(model: &ModelConfig, w: &WorkloadSpec, p: &Placement, kv_tokens: u64, capacity: u64) -> MemoryUse {
    let s = &w.scenario;
    let params = model.parameters();
    let (h, tp) = (model.hidden as u64, p.tp as u64);
    let f = &model.ffn;
    let replicated_attention = match model.attention {
        Attention::Mla { q_lora_rank, kv_lora_rank, qk_rope_dim, .. } => {
            h * (q_lora_rank + kv_lora_rank + qk_rope_dim) as u64
        }
        Attention::Gqa { .. } => 0,
    };
    let attention = replicated_attention + (params.attention_per_layer - replicated_attention).div_ceil(tp);
    let experts_here = if f.routed_experts == 0 { 0 } else { p.experts_per_device() };
    let per_moe = (experts_here + f.shared_experts as u64) * params.expert;
    let (wb, ab) = (s.weight_dtype.bytes(), s.activation_dtype.bytes());
    // Weight bytes of layer `l` on one device (the router kept in the activation dtype).
    let layer_bytes = |l: u32| {
        let mlp = if model.is_dense_layer(l) { params.dense_mlp.div_ceil(tp) } else { per_moe };
        let router = if model.is_dense_layer(l) { 0 } else { params.router * ab };
        (attention + params.norms_per_layer + mlp) * wb + router
    };
    let kv_split = match model.attention {
        Attention::Mla { .. } => 1,
        Attention::Gqa { .. } => tp,
    };
    let kv_per_layer = if p.host_ops.contains(&HostOp::DecodeAttention) {
        0 // held in host DRAM
    } else {
        kv_tokens * model.kv_bytes_per_token(s.kv_dtype) / kv_split / model.layers.max(1) as u64
    };
    (0..p.stages)
        .map(|stage| {
            let layers = p.stage_layers(stage, model.layers);
            let mut weights: u64 = layers.clone().map(layer_bytes).sum();
            let mut kv_cache = layers.len() as u64 * kv_per_layer;
            if stage == 0 {
                weights += params.embedding * wb;
            }
            if stage + 1 == p.stages {
                weights += params.lm_head.div_ceil(p.stage_devices() as u64) * wb;
                if s.mtp.is_some() {
                    // The MTP layer: one more layer (with its own KV cache) and its 2·hidden → hidden join.
                    weights += layer_bytes(model.layers) + 2 * h * h * wb;
                    kv_cache += kv_per_layer;
                }
            }
            MemoryUse { weights, kv_cache, capacity }
        })
        .max_by_key(|m| m.weights + m.kv_cache)
        .unwrap_or(MemoryUse { weights: 0, kv_cache: 0, capacity })
}

fn gb(bytes: u64) -> String {
    format!("{:.1} GB", bytes as f64 / 1e9)
}

/// Simulate `workload` on `hardware` with the given seed.
pub fn run(hardware: &SystemSpec, workload: &Workload, seed: u64) -> Result<RunResult, RunError> {
    let (w, model) = (&workload.spec, &workload.model);
    let (placement, memory, source, scheduler) = built_steps(hardware, workload, seed)?;
    let sample = SampleWork::of(model.vocab, &w.scenario, placement.devices);
    let run = Execution { workload: w, model: Some(model), seed, placement, memory, source, sample };
    execute(hardware, run, scheduler)
}

/// Every check `run` makes before it simulates: the plan divides the
/// system, the model and the KV cache fit, each request fits the cache, the
/// latency window holds a request.
pub fn check(hardware: &SystemSpec, workload: &Workload, seed: u64) -> Result<(), RunError> {
    built_steps(hardware, workload, seed).map(|_| ())
}

/// Where `workload`'s model goes on `hardware`, the memory it takes, the
/// source that builds its steps with the seeded router, and the scheduler
/// with the requests and their seeded lengths: what a run and a recorded
/// step share.
fn built_steps(
    hardware: &SystemSpec,
    workload: &Workload,
    seed: u64,
) -> Result<(Placement, MemoryUse, StepSource, Scheduler), RunError> {
    let (w, model) = (&workload.spec, &workload.model);
    if w.scenario.mtp.is_some() && model.mtp_layers == 0 {
        return Err(RunError(format!(
            "scenario.mtp asks for multi-token prediction, but model `{}` has no multi-token-prediction layer",
            model.name
        )));
    }
    let router = router(w, model, seed)?;
    // A dense model's router has one stand-in expert, which no layer uses.
    let load = if model.ffn.routed_experts > 0 { router.expected_load() } else { Vec::new() };
    let placement = placement(hardware, w, &load)?;
    let arrivals = arrivals(w, seed).map_err(RunError)?;
    if let Some(last) = arrivals.last() {
        let window = w.serving.latency_window(last.at);
        if !arrivals.iter().any(|a| window.as_ref().is_some_and(|w| w.contains(&a.at))) {
            let given = [("warmup", w.serving.warmup), ("cooldown", w.serving.cooldown)];
            let named: Vec<String> =
                given.iter().filter_map(|(k, d)| d.map(|d| format!("serving.{k} = {d}"))).collect();
            return Err(RunError(format!(
                "{}: no request arrives between the warm-up and the cool-down (the arrivals span {} to {}), \
                 so no latency would count",
                named.join(", "),
                arrivals[0].at,
                last.at
            )));
        }
    }
    let memory = fits(hardware, model, w, &placement, &arrivals)?;
    let kv_blocks = kv_blocks(hardware, model, w, &placement, &memory);
    let policy = Policy {
        max_batch: w.scenario.batch,
        token_budget: w.serving.token_budget,
        block_tokens: w.serving.kv_block_tokens,
        kv_blocks,
        replicas: placement.replicas(),
        independent: placement.independent_replicas(),
    };
    if let Some(blocks) = kv_blocks.map(|b| b / placement.replicas().max(1) as u64) {
        let block = w.serving.kv_block_tokens as u64;
        if let Some(a) = arrivals.iter().find(|a| (a.prompt as u64 + a.output as u64).div_ceil(block) > blocks) {
            return Err(RunError(format!(
                "a request of {} + {} tokens needs more than the KV cache's {} tokens ({} blocks of {block}); \
                 give serving.kv_memory more, or use more chiplets",
                a.prompt,
                a.output,
                blocks * block,
                blocks
            )));
        }
    }
    let scheduler = Scheduler::new(&arrivals, w.scenario.phase, policy, w.scenario.mtp, seed);
    let source = StepSource::Build {
        model: Box::new(model.clone()),
        scenario: Box::new(w.scenario.clone()),
        placement: placement.clone(),
        router,
    };
    Ok((placement, memory, source, scheduler))
}

/// One recorded step: the graph and what the host needs to serve it.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordedStep {
    /// The workload the step came from (its plan places the graph).
    pub workload: WorkloadSpec,
    pub model: Option<ModelConfig>,
    pub seed: u64,
    /// Which step of the run it is (0 = the first).
    pub step: u64,
    /// The requests in the step.
    pub requests: Vec<RequestStep>,
    pub sample: SampleWork,
    pub graph: StepGraph,
}

/// Step `step` of `workload` on `hardware`'s chiplets, as the run would
/// build it: the scheduler walked through the earlier steps and the router
/// drawn for each, without simulating them. Steps take no time in this walk,
/// so with an arrival process it sees the arrivals in order but not the
/// queueing of a simulated run.
pub fn record_step(hardware: &SystemSpec, workload: &Workload, seed: u64, step: u64) -> Result<RecordedStep, RunError> {
    let (w, model) = (&workload.spec, &workload.model);
    let (placement, _, mut source, mut scheduler) = built_steps(hardware, workload, seed)?;
    let mut index = 0;
    let mut now = Time::ZERO;
    loop {
        let next = scheduler.arrive(now);
        let plan = scheduler.plan(now);
        if plan.is_empty() {
            if let Some(at) = next {
                now = at;
                continue;
            }
            return Err(RunError(format!(
                "workload `{}` has no step {step}: it has steps 0 to {}",
                w.name,
                index.max(1) - 1
            )));
        }
        let requests: Vec<RequestStep> = plan.iter().map(|(_, r)| *r).collect();
        let graph = source.graph(&requests).ok_or_else(|| RunError("internal error: no graph built".into()))?;
        if index == step {
            return Ok(RecordedStep {
                workload: w.clone(),
                model: Some(model.clone()),
                seed,
                step,
                requests,
                sample: SampleWork::of(model.vocab, &w.scenario, placement.devices),
                graph,
            });
        }
        scheduler.tokens_out(&plan, now);
        index += 1;
    }
}

/// Simulate one recorded step on `hardware`, served as the run serves it.
pub fn replay(hardware: &SystemSpec, recorded: &RecordedStep) -> Result<RunResult, RunError> {
    let w = &recorded.workload;
    let experts = recorded.model.as_ref().map_or(1, |m| m.ffn.routed_experts.max(1));
    let placement = placement(hardware, w, &vec![1.0 / experts as f64; experts as usize])?;
    // A trace from elsewhere (no model) may use the first chiplets only; npusim's own name the system's.
    let fits_devices = match recorded.model {
        Some(_) => recorded.graph.devices == placement.devices,
        None => recorded.graph.devices <= placement.devices,
    };
    if !fits_devices {
        return Err(RunError(format!(
            "the trace is placed on {} chiplets but `{}` has {}",
            recorded.graph.devices, hardware.name, placement.devices
        )));
    }
    for op in &recorded.graph.ops {
        if let crate::graph::OpBody::Transfer(transfers) = &op.body {
            let host = transfers.iter().flat_map(|t| [t.from, t.to]).find_map(|e| match e {
                models::fabric::Endpoint::Host(n) if n >= hardware.nodes => Some(n),
                _ => None,
            });
            if let Some(n) = host {
                return Err(RunError(format!(
                    "op `{}` of the trace sends to or from host {n}, but `{}` has {} nodes",
                    op.name, hardware.name, hardware.nodes
                )));
            }
        }
    }
    let scheduler = Scheduler::replaying(&recorded.requests, w.scenario.mtp, recorded.seed);
    let arrivals: Vec<Arrival> =
        scheduler.requests().iter().map(|r| Arrival { at: Time::ZERO, prompt: r.prompt, output: r.target }).collect();
    let memory = match &recorded.model {
        Some(model) => fits(hardware, model, w, &placement, &arrivals)?,
        None => MemoryUse { weights: 0, kv_cache: 0, capacity: card(hardware)?.chiplet.memory.capacity().get() },
    };
    let source = StepSource::Recorded(std::iter::once(recorded.graph.clone()).collect());
    let run = Execution {
        workload: w,
        model: recorded.model.as_ref(),
        seed: recorded.seed,
        placement,
        memory,
        source,
        sample: recorded.sample,
    };
    execute(hardware, run, scheduler)
}

/// The system's accelerator card; npusim runs model steps on NPUs.
fn card(hardware: &SystemSpec) -> Result<&CardSpec, RunError> {
    hardware.node.card.as_ref().filter(|_| hardware.device_count() > 0).ok_or_else(|| {
        RunError(format!("hardware `{}` has no accelerator chiplets; npusim runs model steps on NPUs", hardware.name))
    })
}

/// The router of `w`'s routing model; a histogram must have been read.
fn router(w: &WorkloadSpec, model: &ModelConfig, seed: u64) -> Result<Router, RunError> {
    if let crate::workload::Routing::Histogram { file, counts } = &w.routing
        && counts.is_empty()
    {
        return Err(RunError(format!("routing.file `{file}` was not read: load the workload from its file")));
    }
    Ok(Router::new(&w.routing, model.ffn.routed_experts.max(1), model.ffn.experts_per_token, seed))
}

/// The placement `w`'s plan asks for on `hardware`'s chiplets, given each expert's expected load.
fn placement(hardware: &SystemSpec, w: &WorkloadSpec, load: &[f64]) -> Result<Placement, RunError> {
    card(hardware)?;
    Placement::for_plan(hardware.device_count(), &w.plan, load)
        .map_err(|e| RunError(format!("{e} of `{}`", hardware.name)))
}

/// Check the dtypes and the memory of one chiplet against what `w` needs.
/// Check the dtypes and the memory of one chiplet against what `w` needs:
/// the weights, and the KV cache of all `arrivals` at once when they come
/// as one batch, or what `serving.kv_memory` sets aside.
fn fits(
    hardware: &SystemSpec,
    model: &ModelConfig,
    w: &WorkloadSpec,
    p: &Placement,
    arrivals: &[Arrival],
) -> Result<MemoryUse, RunError> {
    let chiplet = &card(hardware)?.chiplet;
    let s = &w.scenario;
    for (what, dtype) in [
        ("scenario.weight_dtype", s.weight_dtype),
        ("scenario.activation_dtype", s.activation_dtype),
        ("scenario.op_dtypes.gemm", s.gemm_dtype()),
        ("scenario.op_dtypes.attention", s.attention_dtype()),
    ] {
        if !chiplet.core.matrix.macs_per_pe.contains_key(&dtype) {
            let supported: Vec<String> = chiplet.core.matrix.macs_per_pe.keys().map(Dtype::to_string).collect();
            return Err(RunError(format!(
                "{what} = {dtype}, but the matrix engine of `{}` supports only {}",
                hardware.name,
                supported.join(", ")
            )));
        }
    }
    let busiest = |replicas: u32| -> u64 {
        let mut held = vec![0u64; replicas.max(1) as usize];
        for (i, a) in arrivals.iter().enumerate() {
            held[replica_of(i, arrivals.len(), replicas)] += (a.prompt + a.output) as u64;
        }
        held.into_iter().max().unwrap_or(0)
    };
    let whole_batch = w.requests.is_none() && w.serving.kv_memory.is_none();
    if p.host_ops.contains(&HostOp::DecodeAttention) && whole_batch {
        let need = busiest(1) * model.kv_bytes_per_token(w.scenario.kv_dtype);
        let have = hardware.node.cpu.dram.capacity.get();
        if need > have {
            return Err(RunError(format!(
                "plan.host_ops holds the KV cache in host DRAM: it needs {} but `{}`'s host has {}: {} too much",
                gb(need),
                hardware.name,
                Bytes(have),
                gb(need - have)
            )));
        }
    }
    let capacity = chiplet.memory.capacity().get();
    let mut memory = memory_use(model, w, p, if whole_batch { busiest(p.replicas()) } else { 0 }, capacity);
    if let Some(kv) = w.serving.kv_memory {
        memory.kv_cache = kv.get();
    }
    let need = memory.weights + memory.kv_cache;
    if need > memory.capacity {
        return Err(RunError(format!(
            "`{}` on `{}` needs {} per chiplet ({} of weights + {} of KV cache) but a chiplet has {}: {} too much. \
             Use more chiplets, a smaller weight dtype, a smaller batch or context, or a larger plan.expert_parallel.",
            model.name,
            hardware.name,
            gb(need),
            gb(memory.weights),
            gb(memory.kv_cache),
            Bytes(memory.capacity),
            gb(need - memory.capacity)
        )));
    }
    Ok(memory)
}

/// Blocks of KV cache the scheduler may hand out: `None` when the whole
/// batch was checked to fit. Otherwise what `serving.kv_memory` (or, with an
/// arrival process, all that the weights leave of a chiplet) holds on every
/// replica, or the host's DRAM when decode attention runs there.
fn kv_blocks(
    hardware: &SystemSpec,
    model: &ModelConfig,
    w: &WorkloadSpec,
    p: &Placement,
    m: &MemoryUse,
) -> Option<u64> {
    if w.requests.is_none() && w.serving.kv_memory.is_none() {
        return None;
    }
    let block = w.serving.kv_block_tokens.max(1) as u64;
    let tokens = if p.host_ops.contains(&HostOp::DecodeAttention) {
        let per_token = model.kv_bytes_per_token(w.scenario.kv_dtype).max(1);
        w.serving.kv_memory.map_or(hardware.node.cpu.dram.capacity.get(), |b| b.get()) / per_token
    } else {
        // Bytes one token takes on a device of the busiest stage, measured over many tokens to keep the fraction.
        const MANY: u64 = 1 << 20;
        let per_token = memory_use(model, w, p, MANY, m.capacity).kv_cache as f64 / MANY as f64;
        let room = w.serving.kv_memory.map_or(m.capacity.saturating_sub(m.weights), |b| b.get());
        (room as f64 / per_token.max(1e-9)) as u64 * p.replicas() as u64
    };
    Some(tokens / block)
}

/// The devices of each data-parallel replica, where the replicas step on
/// their own; empty where every device steps together.
fn lanes(placement: &Placement) -> Vec<std::ops::Range<u32>> {
    if !placement.independent_replicas() {
        return Vec::new();
    }
    (0..placement.replicas()).map(|r| placement.replica_devices(0, r)).collect()
}

/// What one simulation serves, however its steps are made.
struct Execution<'a> {
    workload: &'a WorkloadSpec,
    model: Option<&'a ModelConfig>,
    seed: u64,
    placement: Placement,
    memory: MemoryUse,
    source: StepSource,
    sample: SampleWork,
}

fn execute(hardware: &SystemSpec, run: Execution<'_>, scheduler: Scheduler) -> Result<RunResult, RunError> {
    let target = CoreTarget::for_chiplet(&card(hardware)?.chiplet, None);
    let mut builder: SystemBuilder<Msg> = SystemBuilder::new();
    let machine = models::machine::build(hardware, &mut builder);
    // Recorded steps come in one order, so they run as one lane.
    let lanes = match run.source {
        StepSource::Build { .. } => lanes(&run.placement),
        StepSource::Recorded(_) => Vec::new(),
    };
    let planner = StepPlanner { source: run.source, lowerer: Lowerer::new(target, machine.memo.clone()) };
    let leader = &machine.hosts[0];
    let cfg = RuntimeConfig {
        node: 0,
        cpu: leader.cpu,
        cpu_cores: hardware.node.cpu.cores,
        sequencers: machine.devices.iter().map(|d| d.sequencer).collect(),
        replicas: lanes,
        routes: machine.routes.clone(),
        chunk: hardware.simulation.fabric_chunk.get(),
        work: HostWork::default(),
        sample: run.sample,
        replay_steps: hardware.simulation.replay_steps,
    };
    let runtime = leader.runtime;
    let place = |r: Result<(), sim_core::BuildError>| {
        r.map_err(|e| RunError(format!("internal error assembling the machine: {e}")))
    };
    let chiplets = |devices: std::ops::Range<u32>| -> Vec<String> {
        let path = |d: &models::machine::DeviceIds| format!("node{}.card{}.chiplet{}", d.node, d.card, d.chiplet);
        devices.map(|d| path(&machine.devices[d as usize])).collect()
    };
    let host = HostRuntime::new(cfg, planner, scheduler);
    let lanes = Lanes { chiplets: host.lane_devices().into_iter().map(chiplets).collect() };
    for start in host.start_messages() {
        builder.post(Time::ZERO, runtime, start);
    }
    place(builder.place(runtime, host))?;
    for host in &machine.hosts[1..] {
        place(builder.place(host.runtime, PassiveHost::default()))?;
    }
    let mut system = builder.build().map_err(|e| RunError(format!("internal error assembling the machine: {e}")))?;
    // The runtime pauses the run only to ask about replaying steps.
    let mut memo = StepMemo::new(lanes);
    while system.run_to_end() == RunOutcome::Stopped {
        let mut paused = false;
        while let Some((lane, pause)) = system.get_mut::<HostRuntime>(runtime).and_then(HostRuntime::take_pause) {
            paused = true;
            match pause {
                Pause::Planned(shape) => {
                    let replay = memo.replay(lane, shape);
                    if let Some(host) = system.get_mut::<HostRuntime>(runtime) {
                        host.decide(lane, replay);
                    }
                    system.post(system.now(), runtime, HostRuntime::decided_message(lane));
                }
                Pause::Launched => memo.launched(lane, system.stats()),
                Pause::LogitsIn { device_time } => memo.logits_in(lane, device_time, system.stats()),
            }
        }
        if !paused {
            break;
        }
    }

    let host =
        system.get::<HostRuntime>(runtime).ok_or_else(|| RunError("internal error: the runtime is missing".into()))?;
    if let Some(e) = &host.error {
        return Err(RunError(e.clone()));
    }
    if let Some(r) = host.scheduler().unfinished() {
        return Err(RunError(format!(
            "internal error: the run ended with a request at {} of {} tokens",
            r.generated, r.target
        )));
    }
    let requests = host.records();
    let steps = host.steps.clone();
    let stats = memo.add_replayed(system.stats());
    let energy = machine.energy.account(&stats, system.now());
    Ok(RunResult {
        hardware: hardware.clone(),
        workload: run.workload.clone(),
        model: run.model.cloned(),
        seed: run.seed,
        devices: run.placement.devices,
        placement: run.placement,
        memory: run.memory,
        simulated: system.now(),
        events: system.events(),
        requests,
        steps,
        replayed_steps: memo.hits,
        stats,
        energy,
    })
}
