//! What lowering makes of a workload's step, for `npusim lower`.

use crate::graph::{OpBody, OpClass};
use crate::kernels::{self, KernelCompiler, Tensors};
use crate::micro::core_target;
use crate::workload::Workload;
use isa::Program;
use models::spec::SystemSpec;

/// One op of the first step as lowered for one chiplet.
#[derive(Debug, Clone)]
pub struct LoweredOp {
    pub name: String,
    pub class: OpClass,
    /// The kernel and its tiling, in words; or the transfers.
    pub description: String,
    pub programs: Vec<(u32, Program)>,
}

/// Lower the first step of `workload` on `hardware` and return the ops on
/// `device` whose names contain `filter`.
pub fn first_step(
    hardware: &SystemSpec,
    workload: &Workload,
    device: u32,
    filter: &str,
) -> Result<Vec<LoweredOp>, String> {
    let target = core_target(hardware, None)?;
    let devices = hardware.device_count();
    if device >= devices {
        return Err(format!("--device {device}: `{}` has chiplets 0 to {}", hardware.name, devices.saturating_sub(1)));
    }
    // The step as a run with seed 1 builds it.
    let graph = crate::run::record_step(hardware, workload, 1, 0).map_err(|e| e.to_string())?.graph;
    let mut compiler = KernelCompiler::new(target.clone());
    let mut out = Vec::new();
    for (i, op) in graph.ops.iter().enumerate() {
        if !op.name.contains(filter) {
            continue;
        }
        match &op.body {
            OpBody::Compute(shards) => {
                for shard in shards.iter().filter(|s| s.device == device) {
                    let at = Tensors { weights: (i as u64) << 34, activations: (1 << 60) | ((i as u64) << 40) };
                    let programs = compiler.lower(&shard.kernel, at).map_err(|e| format!("{}: {e:?}", op.name))?;
                    out.push(LoweredOp {
                        name: op.name.clone(),
                        class: op.class,
                        description: kernels::describe(&shard.kernel, &target),
                        programs,
                    });
                }
            }
            OpBody::Host(_) => {}
            OpBody::Transfer(transfers) => {
                let mine: Vec<_> = transfers
                    .iter()
                    .filter(|t| {
                        t.from == models::fabric::Endpoint::Device(device)
                            || t.to == models::fabric::Endpoint::Device(device)
                    })
                    .collect();
                if !mine.is_empty() {
                    let bytes: u64 = mine.iter().map(|t| t.bytes).sum();
                    out.push(LoweredOp {
                        name: op.name.clone(),
                        class: op.class,
                        description: format!("{} transfers to or from this chiplet, {bytes} bytes", mine.len()),
                        programs: Vec::new(),
                    });
                }
            }
        }
    }
    Ok(out)
}
