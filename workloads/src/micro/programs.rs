//! Hand-written (or lowered) programs run on one chiplet's cores through the
//! whole machine (sequencer, cores, memory), with the figures an architect checks.

use super::driver::Driver;
use crate::graph::MAX_TILES;
use crate::kernels::CoreTarget;
use isa::Program;
use models::machine::{self, Options};
use models::msg::Msg;
use models::npu::{CommandKind, CommandList, Core, PreparedProgram};
use models::spec::SystemSpec;
use serde::Serialize;
use sim_core::{ComponentStats, SystemBuilder, Time};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Refuse a kernel whose smallest tiling would have more than
/// [`MAX_TILES`] tiles (`what` names its sizes), before lowering it.
pub(super) fn within_tiles(kernel: &crate::graph::Kernel, what: &str) -> Result<(), String> {
    let tiles = kernel.smallest_tiles();
    if tiles > MAX_TILES {
        return Err(format!(
            "{what}: {tiles} tiles at the smallest tiling, more than the {MAX_TILES} a microbenchmark simulates; \
             use smaller sizes"
        ));
    }
    Ok(())
}

/// Chiplet figures needed to lower kernels for it.
pub fn core_target(spec: &SystemSpec, cores: Option<u32>) -> Result<CoreTarget, String> {
    let card = spec
        .node
        .card
        .as_ref()
        .filter(|_| spec.device_count() > 0)
        .ok_or_else(|| format!("hardware `{}` has no accelerator chiplet", spec.name))?;
    let c = &card.chiplet;
    let cores = cores.unwrap_or(c.cores);
    if cores == 0 || cores > c.cores {
        return Err(format!("--cores {cores}: a chiplet of `{}` has 1 to {} cores", spec.name, c.cores));
    }
    Ok(CoreTarget::for_chiplet(c, Some(cores)))
}

/// Per-engine figures summed over the cores that ran.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct EngineFigures {
    /// Fraction of the run each engine class was busy, averaged over the cores used.
    pub busy_fraction: BTreeMap<String, f64>,
    /// Stall time in core cycles, summed over cores, by `engine.cause`.
    pub stall_cycles: BTreeMap<String, u64>,
    pub instructions_retired: BTreeMap<String, u64>,
}

/// What running programs on a chiplet did.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ProgramRun {
    pub hardware: String,
    pub cores: u32,
    pub compute_only: bool,
    /// Core clock cycles from launch to the last core's completion.
    pub cycles: u64,
    pub seconds: f64,
    pub engines: EngineFigures,
    pub memory_read_bytes: u64,
    pub memory_write_bytes: u64,
    /// Bytes the cores loaded from and stored to the chiplet's shared SRAM.
    pub shared_read_bytes: u64,
    pub shared_write_bytes: u64,
    /// Bytes the cores' scratchpad ports moved (engine operands, DMA data, peer accesses).
    pub scratchpad_bytes: u64,
    /// Device-memory bytes moved per second over the run.
    pub memory_bandwidth_bytes_per_s: f64,
    pub memory_peak_bytes_per_s: f64,
    /// The share of peak the memory model can deliver at best (refresh excluded).
    pub memory_model_efficiency: f64,
    /// Per core: when each doorbell rang (seconds) and its value.
    pub doorbells: BTreeMap<u32, Vec<(f64, u32)>>,
    pub events: u64,
}

/// Why programs could not run, or did not finish.
#[derive(Clone, Debug, PartialEq)]
pub struct ProgramError {
    pub message: String,
    /// Programs that never finished: (core, the instruction it was held at).
    pub held: Vec<(u32, usize)>,
}

impl std::fmt::Display for ProgramError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)?;
        for (core, instr) in &self.held {
            write!(f, "; core {core} is held at instruction {instr}")?;
        }
        Ok(())
    }
}

impl From<String> for ProgramError {
    fn from(message: String) -> Self {
        ProgramError { message, held: Vec::new() }
    }
}

impl From<&str> for ProgramError {
    fn from(message: &str) -> Self {
        message.to_string().into()
    }
}

impl From<ProgramError> for String {
    fn from(e: ProgramError) -> Self {
        e.to_string()
    }
}

/// Run `programs` (core index, program) on chiplet 0 of `spec`.
pub fn run_programs(
    spec: &SystemSpec,
    programs: &[(u32, Program)],
    compute_only: bool,
) -> Result<ProgramRun, ProgramError> {
    let target = core_target(spec, None)?;
    for (core, program) in programs {
        if *core >= target.cores {
            return Err(format!(
                "a program is for core {core}, but a chiplet of `{}` has cores 0 to {}",
                spec.name,
                target.cores - 1
            )
            .into());
        }
        program.check(target.local_bytes()).map_err(|e| format!("core {core}: {e}"))?;
    }
    let mut list = CommandList::default();
    let prepared = programs.iter().map(|(c, p)| (*c, Arc::new(PreparedProgram::new(p.clone())))).collect();
    list.push(vec![], CommandKind::Compute { programs: prepared, memo: None });
    let mut builder: SystemBuilder<Msg> = SystemBuilder::new();
    let m =
        machine::build_with(spec, &mut builder, Options { compute_only, memory_model: spec.simulation.memory_model });
    let device = &m.devices[0];
    let driver = m.hosts[0].runtime;
    builder.place(driver, Driver::new(vec![(device.sequencer, Arc::new(list))])).map_err(|e| e.to_string())?;
    for host in &m.hosts[1..] {
        builder.place(host.runtime, Driver::new(vec![])).map_err(|e| e.to_string())?;
    }
    builder.post(Time::ZERO, driver, Msg::Wake { token: 0 });
    let mut system = builder.build().map_err(|e| e.to_string())?;
    system.run_to_end();
    let Some(done) = system.get::<Driver>(driver).and_then(|d| d.done) else {
        let held = programs
            .iter()
            .filter_map(|&(core, _)| {
                let held = system.get::<Core>(device.cores[core as usize]).and_then(Core::held_at)?;
                Some((core, held))
            })
            .collect();
        let message = "the programs did not finish: a wait or barrier was never satisfied".to_string();
        return Err(ProgramError { message, held });
    };
    let card = spec.node.card.as_ref().ok_or("no card")?;
    let clock = card.chiplet.clock.clock();
    let stats = system.stats();
    let used: Vec<u32> = programs.iter().map(|(c, _)| *c).collect();
    let core_stats: Vec<&ComponentStats> = device
        .cores
        .iter()
        .enumerate()
        .filter(|(i, _)| used.contains(&(*i as u32)))
        .map(|(_, id)| &stats[id.index()])
        .collect();
    let mut engines = EngineFigures::default();
    for c in &core_stats {
        for s in c.stats.iter() {
            let sim_core::StatValue::Scalar(v) = s.value else { continue };
            if let Some(engine) = s.name.strip_prefix("busy.npu.") {
                *engines.busy_fraction.entry(engine.to_string()).or_insert(0.0) +=
                    v as f64 / done.as_ps().max(1) as f64 / core_stats.len() as f64;
            } else if let Some(what) = s.name.strip_prefix("stall.") {
                *engines.stall_cycles.entry(what.to_string()).or_insert(0) += clock.cycles_covering(Time::from_ps(v)).0;
            } else if let Some(engine) = s.name.strip_suffix(".retired") {
                *engines.instructions_retired.entry(engine.to_string()).or_insert(0) += v;
            }
        }
    }
    let memory = &stats[device.memory.index()].stats;
    let read = memory.scalar_value("read_bytes").unwrap_or(0);
    let written = memory.scalar_value("write_bytes").unwrap_or(0);
    let shared = &stats[device.shared.index()].stats;
    let scratchpad_bits: u64 = core_stats.iter().filter_map(|c| c.stats.scalar_value("actions.sram_bits")).sum();
    let mem = &card.chiplet.memory;
    let doorbells = device
        .cores
        .iter()
        .enumerate()
        .filter_map(|(i, id)| {
            system
                .get::<Core>(*id)
                .map(|c| (i as u32, c.doorbells().iter().map(|(t, v)| (t.as_secs_f64(), *v)).collect::<Vec<_>>()))
        })
        .filter(|(_, d)| !d.is_empty())
        .collect();
    Ok(ProgramRun {
        hardware: spec.name.clone(),
        cores: programs.len() as u32,
        compute_only,
        cycles: clock.cycles_covering(done).0,
        seconds: done.as_secs_f64(),
        engines,
        memory_read_bytes: read,
        memory_write_bytes: written,
        shared_read_bytes: shared.scalar_value("read_bytes").unwrap_or(0),
        shared_write_bytes: shared.scalar_value("write_bytes").unwrap_or(0),
        scratchpad_bytes: scratchpad_bits / 8,
        memory_bandwidth_bytes_per_s: if done > Time::ZERO {
            (read + written) as f64 / done.as_secs_f64()
        } else {
            0.0
        },
        memory_peak_bytes_per_s: mem.peak_bandwidth().bytes_per_s(),
        memory_model_efficiency: mem
            .timing
            .resolve()
            .map_or(1.0, |t| 1.0 - t.t_rfc.as_ps() as f64 / t.t_refi.as_ps() as f64),
        doorbells,
        events: system.events(),
    })
}
