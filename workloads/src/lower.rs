//! Lowering of a step's op graph to what the machine runs: a command list
//! per chiplet, and one for the leading host.
//!
//! Compute shards become `Compute` commands with per-core programs; each
//! transfer becomes a `Send` on its source and, on each receiver, one `Recv`
//! of all the op's bytes bound for it; a host kernel becomes a task for the
//! CPU model. A command depends on the commands that the op's dependencies
//! produced on the same device (or host); where a dependency produced none
//! there, on what that one depended on.

use crate::graph::{Kernel, OpBody, StepGraph, visible_pairs};
use crate::kernels::{CoreTarget, KernelCompiler, KernelError, Tensors};
use models::cpu::HostTask;
use models::fabric::Endpoint;
use models::npu::{CommandKind, CommandList, ComputeMemo, PreparedProgram};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

/// A step as the machine runs it.
#[derive(Clone, Debug, Default)]
pub struct Lowered {
    /// One command list per device.
    pub lists: Vec<CommandList>,
    /// What the leading host does: sends, receives and CPU tasks.
    pub host: Vec<HostCommand>,
}

/// One thing the host does in a step, once the host commands it depends on are done.
#[derive(Clone, Debug, PartialEq)]
pub struct HostCommand {
    /// Indices of earlier host commands.
    pub deps: Vec<u32>,
    pub kind: HostCommandKind,
}

#[derive(Clone, Debug, PartialEq)]
pub enum HostCommandKind {
    Send {
        to: Endpoint,
        bytes: u64,
        tag: u64,
    },
    /// Wait until `bytes` with this tag have arrived.
    Recv {
        bytes: u64,
        tag: u64,
    },
    /// A kernel on the CPU model.
    Compute(Arc<HostTask>),
}

/// The CPU work of `kernel`: its FLOPs as FP32 vector work spread over the
/// cores, the bytes it reads (weights, KV cache) and writes streamed from
/// DRAM, and loop overhead per row. A first-order model of a tuned CPU kernel.
pub fn host_task(kernel: &Kernel, cores: u32) -> HostTask {
    let (name, rows, elementwise): (&'static str, u64, u64) = match *kernel {
        Kernel::Gemm { ref rows, .. } => ("host.gemm", rows.iter().map(|&m| m as u64).sum(), 0),
        Kernel::Attention { requests, queries, heads, context, .. } => {
            // Softmax over every score: exp, max, sum, scale.
            (
                "host.attention",
                (requests * queries * heads) as u64,
                4 * (requests * heads) as u64 * visible_pairs(queries, context),
            )
        }
        Kernel::TopK { rows, cols, k, .. } => ("host.topk", rows as u64, rows as u64 * cols as u64 * (2 + k as u64)),
        Kernel::Sample { rows, cols, .. } | Kernel::Softmax { rows, cols, .. } => {
            ("host.softmax", rows as u64, 5 * rows as u64 * cols as u64)
        }
        Kernel::RmsNorm { rows, cols, .. }
        | Kernel::Rotary { rows, cols, .. }
        | Kernel::SwiGlu { rows, cols, .. }
        | Kernel::Embedding { rows, cols, .. } => ("host.elementwise", rows as u64, 4 * rows as u64 * cols as u64),
        Kernel::Add { elems, inputs, .. } => ("host.elementwise", 1, elems * inputs as u64),
    };
    HostTask {
        name,
        instructions: 2_000 + 50 * rows,
        ilp: 2.0,
        vector_flops: 2 * kernel.macs() + elementwise,
        bytes: kernel.memory_bytes(),
        working_set: 0,
        threads: (rows.min(cores as u64) as u32).max(1),
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LowerError {
    pub op: String,
    pub problem: KernelError,
}

impl fmt::Display for LowerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.problem {
            KernelError::UnsupportedDtype(d) => {
                write!(
                    f,
                    "op `{}` needs {d} matrix multiplies, which the chiplet's matrix engine does not support",
                    self.op
                )
            }
        }
    }
}

impl std::error::Error for LowerError {}

/// The programs of one kernel, by core, shared wherever the kernel recurs.
type SharedPrograms = Arc<Vec<(u32, Arc<PreparedProgram>)>>;

/// Lowers steps for one chiplet design, remembering programs it has built.
///
/// When kernels are replayed (`simulation.replay_kernels`), every compute
/// command carries a key naming its work: kernels that do the same work get
/// the same key, and the programs of its first appearance. A grouped GEMM's
/// work is its multiset of per-weight row counts: the order of its weight
/// matrices and the ones with no rows change nothing. Once the machine's
/// memo has recorded a work, its commands go without programs and the
/// lowerer lets them go, so a long run keeps no program it will not run.
#[derive(Debug)]
pub struct Lowerer {
    kernels: KernelCompiler,
    cache: HashMap<(Kernel, Tensors), SharedPrograms>,
    /// With replay: the memo, and the key and programs of each distinct work.
    replay: Option<(Arc<ComputeMemo>, HashMap<Kernel, Work>)>,
}

/// One distinct work, with replay.
#[derive(Debug)]
struct Work {
    key: u64,
    /// Until the memo has recorded the work.
    programs: Option<SharedPrograms>,
    /// Whether it runs on any core at all.
    runs: bool,
}

/// The kernel whose replay stands for `kernel`'s. A grouped GEMM with few
/// rows per weight matrix (decode's experts) streams its weights: its time is
/// set by how many matrices it reads and barely by their rows, so it is
/// keyed by the number of matrices with rows and the most rows of any.
/// Larger row counts (prompts), whose time grows with them, are keyed
/// rounded up: a GEMM's rows to 1/16 of their power of two, so a prompt
/// GEMM replays the first one of its bucket (within 6 % of its rows); a
/// grouped one's by its matrices, its most rows and its rows in all, the
/// two to 1/8 of their power of two. An attention is
/// keyed by its context rounded up to 1/64 of its power of two, so that
/// decode steps, whose contexts grow by a token each, replay the first
/// attention of the bucket (at most 1.6 % more or less cache read) instead
/// of simulating a new one each step. Every other kernel stands for itself.
fn work_of(kernel: &Kernel, target: &CoreTarget) -> Kernel {
    match kernel {
        &Kernel::Attention { context, queries, .. } if context >= 128 => {
            let mut k = kernel.clone();
            if let Kernel::Attention { context: c, .. } = &mut k {
                // Keep every query within the cache: a prompt chunk's context is at least its queries.
                *c = round_up(context, 6).max(queries);
            }
            k
        }
        Kernel::Gemm { rows, n, k, weight_dtype, dtype } => {
            let streamed = 2 * target.rows();
            let active = rows.iter().filter(|&&m| m > 0).count();
            let most = rows.iter().copied().max().unwrap_or(0);
            let rows = if rows.len() == 1 {
                vec![if u64::from(most) <= streamed { most } else { round_up(most, 4) }]
            } else if u64::from(most) <= streamed {
                vec![most; active]
            } else {
                // The most rows and the rows in all, rounded, the rest spread evenly.
                let most = round_up(most, 3);
                let total = round_up(rows.iter().sum::<u32>(), 3).max(most);
                let rest = (active as u32).saturating_sub(1).max(1);
                let mut keyed = vec![(total - most).div_ceil(rest); active - 1];
                keyed.push(most);
                keyed
            };
            Kernel::Gemm { rows, n: *n, k: *k, weight_dtype: *weight_dtype, dtype: *dtype }
        }
        other => other.clone(),
    }
}

/// `x` rounded up to a multiple of 1/2^`bits` of its power of two.
fn round_up(x: u32, bits: u32) -> u32 {
    if x < 1 << bits {
        return x;
    }
    let step = 1u32 << (31 - x.leading_zeros() - bits);
    x.div_ceil(step) * step
}

/// The programs of `kernel` in op `op`. Each op's tensors get their own
/// region; the layout is the same on every device.
fn compile(kernels: &mut KernelCompiler, kernel: &Kernel, op: u32) -> Result<SharedPrograms, KernelError> {
    let at = Tensors { weights: (op as u64) << 34, activations: (1 << 60) | ((op as u64) << 40) };
    let built = kernels.lower(kernel, at)?;
    Ok(Arc::new(built.into_iter().map(|(c, p)| (c, Arc::new(PreparedProgram::new(p)))).collect()))
}

/// Tag of the transfers of op `op` in step `step`.
pub fn tag(step: u64, op: u32) -> u64 {
    (step << 24) | op as u64
}

impl Lowerer {
    /// A lowerer for chiplets like `target`; with the machine's kernel memo,
    /// it marks recurring work with keys.
    pub fn new(target: CoreTarget, memo: Option<Arc<ComputeMemo>>) -> Lowerer {
        Lowerer {
            kernels: KernelCompiler::new(target),
            cache: HashMap::new(),
            replay: memo.map(|m| (m, HashMap::new())),
        }
    }

    /// The programs of `kernel` in op `op`, and the key of its work when
    /// replaying; `None` when it runs on no core. Programs are left out once
    /// the memo has recorded the work.
    fn command(&mut self, kernel: &Kernel, op: u32) -> Result<Option<(SharedPrograms, Option<u64>)>, KernelError> {
        let Some((memo, works)) = self.replay.as_mut() else {
            let programs = self.programs(kernel, op)?;
            return Ok((!programs.is_empty()).then_some((programs, None)));
        };
        let work = work_of(kernel, self.kernels.target());
        if let Some(w) = works.get_mut(&work) {
            if w.programs.is_some() && memo.get(w.key).is_some() {
                w.programs = None;
            }
            let programs = w.programs.clone().unwrap_or_default();
            return Ok(w.runs.then_some((programs, Some(w.key))));
        }
        let key = works.len() as u64;
        let programs = compile(&mut self.kernels, kernel, op)?;
        let runs = !programs.is_empty();
        works.insert(work, Work { key, programs: Some(Arc::clone(&programs)), runs });
        Ok(runs.then_some((programs, Some(key))))
    }

    pub fn target(&self) -> &CoreTarget {
        self.kernels.target()
    }

    fn programs(&mut self, kernel: &Kernel, op: u32) -> Result<SharedPrograms, KernelError> {
        let at = Tensors { weights: (op as u64) << 34, activations: (1 << 60) | ((op as u64) << 40) };
        let key = (kernel.clone(), at);
        if let Some(p) = self.cache.get(&key) {
            return Ok(Arc::clone(p));
        }
        let built = compile(&mut self.kernels, kernel, op)?;
        self.cache.insert(key, Arc::clone(&built));
        Ok(built)
    }

    /// Forget cached programs (to bound memory over long runs).
    pub fn clear(&mut self) {
        self.cache.clear();
    }

    /// Lower `graph`, step `step` of a run, for a host with `host_cores` cores.
    pub fn lower(&mut self, graph: &StepGraph, step: u64, host_cores: u32) -> Result<Lowered, LowerError> {
        let devices = graph.devices as usize;
        let host = devices;
        let mut out = Lowered { lists: vec![CommandList::default(); devices], host: Vec::new() };
        let host_push = |out: &mut Lowered, deps: Vec<u32>, kind: HostCommandKind| {
            out.host.push(HostCommand { deps, kind });
            out.host.len() as u32 - 1
        };
        // frontier[device][op]: the commands a later op on that device waits for, to depend on `op`
        // (index `devices`: the host).
        let mut frontier: Vec<Vec<Vec<u32>>> = vec![Vec::with_capacity(graph.ops.len()); devices + 1];
        for (i, op) in graph.ops.iter().enumerate() {
            let i = i as u32;
            let tag = tag(step, i);
            let deps_on = |frontier: &Vec<Vec<Vec<u32>>>, d: usize| -> Vec<u32> {
                let mut deps: Vec<u32> =
                    op.deps.iter().flat_map(|&p| frontier[d][p as usize].iter().copied()).collect();
                deps.sort_unstable();
                deps.dedup();
                deps
            };
            let mut made: Vec<Vec<u32>> = vec![Vec::new(); devices + 1];
            match &op.body {
                OpBody::Compute(shards) => {
                    for shard in shards {
                        let d = shard.device as usize;
                        let Some((programs, memo)) = self
                            .command(&shard.kernel, i)
                            .map_err(|problem| LowerError { op: op.name.clone(), problem })?
                        else {
                            continue;
                        };
                        let deps = deps_on(&frontier, d);
                        let programs = programs.iter().map(|(c, p)| (*c, Arc::clone(p))).collect();
                        made[d].push(out.lists[d].push(deps, CommandKind::Compute { programs, memo }));
                    }
                }
                OpBody::Host(kernel) => {
                    let task = Arc::new(host_task(kernel, host_cores));
                    let deps = deps_on(&frontier, host);
                    made[host].push(host_push(&mut out, deps, HostCommandKind::Compute(task)));
                }
                OpBody::Transfer(transfers) => {
                    let mut incoming = vec![0u64; devices + 1];
                    for t in transfers {
                        match t.from {
                            Endpoint::Device(a) => {
                                let deps = deps_on(&frontier, a as usize);
                                made[a as usize].push(
                                    out.lists[a as usize]
                                        .push(deps, CommandKind::Send { to: t.to, bytes: t.bytes, tag }),
                                );
                            }
                            Endpoint::Host(_) => {
                                let send = HostCommandKind::Send { to: t.to, bytes: t.bytes, tag };
                                made[host].push(host_push(&mut out, deps_on(&frontier, host), send));
                            }
                        }
                        match t.to {
                            Endpoint::Device(b) => incoming[b as usize] += t.bytes,
                            Endpoint::Host(_) => incoming[host] += t.bytes,
                        }
                    }
                    for (d, &bytes) in incoming.iter().enumerate() {
                        if bytes == 0 {
                            continue;
                        }
                        let deps = deps_on(&frontier, d);
                        let recv = if d == host {
                            host_push(&mut out, deps, HostCommandKind::Recv { bytes, tag })
                        } else {
                            out.lists[d].push(deps, CommandKind::Recv { bytes, tag })
                        };
                        made[d].push(recv);
                    }
                }
            }
            for (d, cmds) in made.into_iter().enumerate() {
                let next = if cmds.is_empty() { deps_on(&frontier, d) } else { cmds };
                frontier[d].push(next);
            }
        }
        Ok(out)
    }
}
