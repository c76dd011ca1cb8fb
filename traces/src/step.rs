//! Step traces: the op graph of one inference step as JSON Lines, the form
//! `npusim trace gen` writes and `npusim trace replay` reads (documented in
//! traces/README.md).
//!
//! Line 1 is the header: the format name and version, the workload (model
//! name, scenario, plan, routing), the model config when known, the seed,
//! the step index, the number of devices, the step's requests and the
//! host's sampling work. Every further line is one op, in an order where
//! each op's dependencies come before it: `id` (its line number less two),
//! `name`, `kind`, `deps`, `flops` and `bytes` (informational: recomputed,
//! not read), and either `compute` (one kernel per device) or `transfers`
//! (point-to-point, between `{"device": N}` and `{"host": N}`).

use models::input::{InputError, Problem, load_json};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, Write};
use workloads::RecordedStep;
use workloads::build::RequestStep;
use workloads::graph::{Kernel, MAX_TILES, MAX_TRANSFER_BYTES, Op, OpBody, OpClass, Shard, StepGraph, Transfer};
use workloads::model::ModelConfig;
use workloads::sampling::SampleWork;
use workloads::workload::WorkloadSpec;

/// The `format` every step trace's header names.
pub const FORMAT: &str = "npusim-step-trace";
/// The version this npusim writes and reads.
pub const VERSION: u32 = 1;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    format: String,
    version: u32,
    /// What wrote the trace, for people; not read.
    #[serde(default)]
    producer: String,
    workload: WorkloadSpec,
    #[serde(default)]
    model: Option<ModelConfig>,
    seed: u64,
    step: u64,
    devices: u32,
    requests: Vec<RequestStep>,
    sampling: SampleWork,
    /// Op lines that follow, so a cut-off file is noticed.
    ops: u64,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct OpLine {
    id: u64,
    name: String,
    kind: OpClass,
    deps: Vec<u32>,
    #[serde(default)]
    flops: u64,
    #[serde(default)]
    bytes: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    compute: Option<Vec<Shard>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    transfers: Option<Vec<Transfer>>,
    /// A kernel on the leading host's CPU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    host: Option<Kernel>,
}

/// Write `step` as a step trace; `producer` says what wrote it.
pub fn write(out: &mut dyn Write, step: &RecordedStep, producer: &str) -> std::io::Result<()> {
    let header = Header {
        format: FORMAT.into(),
        version: VERSION,
        producer: producer.into(),
        workload: step.workload.clone(),
        model: step.model.clone(),
        seed: step.seed,
        step: step.step,
        devices: step.graph.devices,
        requests: step.requests.clone(),
        sampling: step.sample,
        ops: step.graph.ops.len() as u64,
    };
    serde_json::to_writer(&mut *out, &header)?;
    out.write_all(b"\n")?;
    for (id, op) in step.graph.ops.iter().enumerate() {
        let (compute, transfers, host) = match &op.body {
            OpBody::Compute(shards) => (Some(shards.clone()), None, None),
            OpBody::Transfer(t) => (None, Some(t.clone()), None),
            OpBody::Host(kernel) => (None, None, Some(kernel.clone())),
        };
        let line = OpLine {
            id: id as u64,
            name: op.name.clone(),
            kind: op.class,
            deps: op.deps.clone(),
            flops: op.flops(),
            bytes: op.bytes(),
            compute,
            transfers,
            host,
        };
        serde_json::to_writer(&mut *out, &line)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// A step trace as text.
pub fn to_string(step: &RecordedStep, producer: &str) -> String {
    let mut out = Vec::new();
    write(&mut out, step, producer).expect("writing to memory cannot fail");
    String::from_utf8(out).expect("JSON is UTF-8")
}

fn problem(source: &str, line: usize, column: Option<usize>, path: &str, message: impl Into<String>) -> InputError {
    InputError {
        problems: vec![Problem {
            source: source.into(),
            line: Some(line),
            column,
            path: path.into(),
            message: message.into(),
        }],
    }
}

/// Read a step trace; `source` names it in errors.
pub fn read(source: &str, reader: impl BufRead) -> Result<RecordedStep, InputError> {
    let mut lines = reader.lines().enumerate().map(|(i, l)| (i + 1, l));
    let io = |line: usize, e: std::io::Error| problem(source, line, None, "", format!("cannot read: {e}"));
    let Some((_, first)) = lines.next() else {
        return Err(InputError::general(source, "empty file: expected a step-trace header on line 1"));
    };
    let first = first.map_err(|e| io(1, e))?;
    // Format and version first, so a newer file gets that message rather than a field error.
    let probe: serde_json::Value = load_json(source, &first, 1)?;
    match probe.get("format").and_then(|f| f.as_str()) {
        Some(FORMAT) => {}
        other => {
            return Err(problem(
                source,
                1,
                None,
                "format",
                format!("expected \"{FORMAT}\", found {}", other.map_or("nothing".into(), |f| format!("\"{f}\""))),
            ));
        }
    }
    match probe.get("version").and_then(|v| v.as_u64()) {
        Some(v) if v == VERSION as u64 => {}
        Some(v) => {
            return Err(problem(
                source,
                1,
                None,
                "version",
                format!("format version {v} is not one this npusim reads: it reads version {VERSION}"),
            ));
        }
        None => return Err(problem(source, 1, None, "version", "expected a format version number, found nothing")),
    }
    let header: Header = load_json(source, &first, 1)?;
    let mut ops = Vec::new();
    for (line, text) in lines {
        let text = text.map_err(|e| io(line, e))?;
        if text.trim().is_empty() {
            continue;
        }
        let op: OpLine = load_json(source, &text, line)?;
        ops.push(check_op(source, line, op, ops.len() as u64, header.devices)?);
    }
    if ops.len() as u64 != header.ops {
        return Err(problem(
            source,
            1,
            None,
            "ops",
            format!("the header announces {} ops but the file has {}", header.ops, ops.len()),
        ));
    }
    Ok(RecordedStep {
        workload: header.workload,
        model: header.model,
        seed: header.seed,
        step: header.step,
        requests: header.requests,
        sample: header.sampling,
        graph: StepGraph { ops, devices: header.devices },
    })
}

/// The op of line `line`, checked: its id in sequence, its dependencies
/// earlier, its devices in the system and its sizes usable.
fn check_op(source: &str, line: usize, op: OpLine, expected_id: u64, devices: u32) -> Result<Op, InputError> {
    let fail = |path: &str, message: String| problem(source, line, None, path, message);
    if op.id != expected_id {
        return Err(fail("id", format!("expected {expected_id} (ops are numbered in file order), found {}", op.id)));
    }
    if let Some(&d) = op.deps.iter().find(|&&d| d as u64 >= op.id) {
        return Err(fail("deps", format!("expected ids of earlier ops (below {}), found {d}", op.id)));
    }
    let body = match (op.compute, op.transfers, op.host) {
        (None, None, Some(kernel)) => {
            if let Some(size) = kernel.zero_dimension() {
                return Err(fail(&format!("host.{size}"), "expected at least 1, found 0".into()));
            }
            OpBody::Host(kernel)
        }
        (Some(shards), None, None) => {
            for (i, shard) in shards.iter().enumerate() {
                if shard.device >= devices {
                    return Err(fail(
                        &format!("compute[{i}].device"),
                        format!("expected a device below {devices}, found {}", shard.device),
                    ));
                }
                if let Some(size) = shard.kernel.zero_dimension() {
                    return Err(fail(&format!("compute[{i}].kernel.{size}"), "expected at least 1, found 0".into()));
                }
                let tiles = shard.kernel.smallest_tiles();
                if tiles > MAX_TILES {
                    return Err(fail(
                        &format!("compute[{i}].kernel"),
                        format!("expected a kernel of at most {MAX_TILES} tiles at the smallest tiling, found {tiles}"),
                    ));
                }
            }
            OpBody::Compute(shards)
        }
        (None, Some(transfers), None) => {
            for (i, t) in transfers.iter().enumerate() {
                if t.bytes > MAX_TRANSFER_BYTES {
                    return Err(fail(
                        &format!("transfers[{i}].bytes"),
                        format!("expected at most {MAX_TRANSFER_BYTES} bytes (1 TiB), found {}", t.bytes),
                    ));
                }
                for (end, endpoint) in [("from", t.from), ("to", t.to)] {
                    if let models::fabric::Endpoint::Device(d) = endpoint
                        && d >= devices
                    {
                        return Err(fail(
                            &format!("transfers[{i}].{end}"),
                            format!("expected a device below {devices}, found {d}"),
                        ));
                    }
                }
            }
            OpBody::Transfer(transfers)
        }
        _ => return Err(fail("", "expected exactly one of `compute`, `transfers` and `host`".into())),
    };
    Ok(Op { name: op.name, class: op.kind, deps: op.deps, body })
}
