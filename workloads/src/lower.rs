//! Lowering of a step's op graph to what the machine runs: a command list
//! per chiplet, and the transfers the host sends and expects.
//!
//! Compute shards become `Compute` commands with per-core programs; each
//! transfer becomes a `Send` on its source device and, on each receiving
//! device, one `Recv` of all the op's bytes bound for it. A command depends
//! on the commands that the op's dependencies produced on the same device;
//! where a dependency produced none there, on what that one depended on.

use crate::graph::{Kernel, OpBody, StepGraph};
use crate::kernels::{CoreTarget, KernelCompiler, KernelError, Tensors};
use models::fabric::Endpoint;
use models::npu::{CommandKind, CommandList, PreparedProgram};
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

/// What the host sends at the start of a step and receives by its end.
#[derive(Clone, Debug, Default)]
pub struct Lowered {
    /// One command list per device.
    pub lists: Vec<CommandList>,
    /// Transfers the host starts: destination, bytes, tag.
    pub host_sends: Vec<(Endpoint, u64, u64)>,
    /// Bytes the leading host receives.
    pub host_receives: u64,
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
/// keyed by the number of matrices with rows and the most rows of any.
/// Every other kernel stands for itself.
fn work_of(kernel: &Kernel, target: &CoreTarget) -> Kernel {
    match kernel {
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

    pub fn lower(&mut self, graph: &StepGraph, step: u64) -> Result<Lowered, LowerError> {
        let devices = graph.devices as usize;
        let mut out = Lowered { lists: vec![CommandList::default(); devices], ..Lowered::default() };
        // frontier[device][op]: the commands a later op on that device waits for, to depend on `op`.
        let mut frontier: Vec<Vec<Vec<u32>>> = vec![Vec::with_capacity(graph.ops.len()); devices];
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
            let mut made: Vec<Vec<u32>> = vec![Vec::new(); devices];
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
                OpBody::Transfer(transfers) => {
                    let mut incoming = vec![0u64; devices];
                    for t in transfers {
                        match t.from {
                            Endpoint::Device(a) => {
                                let deps = deps_on(&frontier, a as usize);
                                made[a as usize].push(
                                    out.lists[a as usize]
                                        .push(deps, CommandKind::Send { to: t.to, bytes: t.bytes, tag }),
                                );
                            }
                            Endpoint::Host(_) => out.host_sends.push((t.to, t.bytes, tag)),
                        }
                        match t.to {
                            Endpoint::Device(b) => incoming[b as usize] += t.bytes,
                            Endpoint::Host(_) => out.host_receives += t.bytes,
                        }
                    }
                    for (d, &bytes) in incoming.iter().enumerate() {
                        if bytes > 0 {
                            let deps = deps_on(&frontier, d);
                            made[d].push(out.lists[d].push(deps, CommandKind::Recv { bytes, tag }));
                        }
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
