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
use models::npu::{CommandKind, CommandList, PreparedProgram};
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
/// matrices and the ones with no rows change nothing.
#[derive(Debug)]
pub struct Lowerer {
    kernels: KernelCompiler,
    cache: HashMap<(Kernel, Tensors), SharedPrograms>,
    /// With replay: the key and programs of each distinct work.
    replayed: Option<HashMap<Kernel, (u64, SharedPrograms)>>,
}

/// The kernel whose replay stands for `kernel`'s. A grouped GEMM with few
/// rows per weight matrix (decode's experts) streams its weights: its time is
/// set by how many matrices it reads and barely by their rows, so it is
/// keyed by the number of matrices with rows and the most rows of any. An
/// attention is keyed by its context rounded up to 1/64 of its power of two,
/// so that decode steps, whose contexts grow by a token each, replay the
/// first attention of the bucket (at most 1.6 % more or less cache read)
/// instead of simulating a new one each step. Every other kernel stands for
/// itself.
fn work_of(kernel: &Kernel, target: &CoreTarget) -> Kernel {
    match kernel {
        &Kernel::Attention { context, queries, .. } if context >= 128 => {
            let step = 1u32 << (31 - context.leading_zeros() - 6);
            let rounded = context.div_ceil(step) * step;
            let mut k = kernel.clone();
            if let Kernel::Attention { context, .. } = &mut k {
                // Keep every query within the cache: a prompt chunk's context is at least its queries.
                *context = rounded.max(queries);
            }
            k
        }
        Kernel::Gemm { rows, n, k, weight_dtype, dtype } if rows.len() > 1 => {
            let active = rows.iter().filter(|&&m| m > 0).count();
            let most = rows.iter().copied().max().unwrap_or(0);
            let rows = if u64::from(most) <= 2 * target.rows() {
                vec![most; active]
            } else {
                let mut exact: Vec<u32> = rows.iter().copied().filter(|&m| m > 0).collect();
                exact.sort_unstable();
                exact
            };
            Kernel::Gemm { rows, n: *n, k: *k, weight_dtype: *weight_dtype, dtype: *dtype }
        }
        other => other.clone(),
    }
}

/// Tag of the transfers of op `op` in step `step`.
pub fn tag(step: u64, op: u32) -> u64 {
    (step << 24) | op as u64
}

impl Lowerer {
    /// A lowerer for chiplets like `target`; `replay` marks recurring work with keys.
    pub fn new(target: CoreTarget, replay: bool) -> Lowerer {
        Lowerer { kernels: KernelCompiler::new(target), cache: HashMap::new(), replayed: replay.then(HashMap::new) }
    }

    /// The programs of `kernel` in op `op`, and the key of its work when replaying.
    fn command(&mut self, kernel: &Kernel, op: u32) -> Result<(SharedPrograms, Option<u64>), KernelError> {
        let Some(replayed) = self.replayed.as_ref() else { return Ok((self.programs(kernel, op)?, None)) };
        let work = work_of(kernel, self.kernels.target());
        if let Some((key, programs)) = replayed.get(&work) {
            return Ok((Arc::clone(programs), Some(*key)));
        }
        let programs = self.compile(kernel, op)?;
        let replayed = self.replayed.get_or_insert_with(HashMap::new);
        let key = replayed.len() as u64;
        replayed.insert(work, (key, Arc::clone(&programs)));
        Ok((programs, Some(key)))
    }

    fn compile(&mut self, kernel: &Kernel, op: u32) -> Result<SharedPrograms, KernelError> {
        // Each op's tensors get their own region; the layout is the same on every device.
        let at = Tensors { weights: (op as u64) << 34, activations: (1 << 60) | ((op as u64) << 40) };
        let built = self.kernels.lower(kernel, at)?;
        Ok(Arc::new(built.into_iter().map(|(c, p)| (c, Arc::new(PreparedProgram::new(p)))).collect()))
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
        let built = self.compile(kernel, op)?;
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
                        let (programs, memo) = self
                            .command(&shard.kernel, i)
                            .map_err(|problem| LowerError { op: op.name.clone(), problem })?;
                        if programs.is_empty() {
                            continue;
                        }
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
