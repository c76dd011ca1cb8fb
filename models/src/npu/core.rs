//! An NPU core: an instruction sequencer issuing to a DMA engine, a matrix
//! engine and a vector engine that run in parallel.
//!
//! An instruction issues when it is at the head of its engine's queue (each
//! engine runs its instructions in program order), the engine is free (the
//! DMA engine: fewer than `dma_max_outstanding` transactions in flight) and
//! every instruction it depends on through a buffer has retired. Loads and
//! stores become memory transactions of `dma_transaction` bytes that travel
//! through the event engine to the chiplet's memory controller; the DMA engine
//! starts issuing the next instruction's transactions as soon as the previous
//! one's are all issued, so back-to-back loads keep memory busy.

use super::prepared::PreparedProgram;
use super::timing::{MatrixShape, VectorShape};
use crate::msg::{MemRequest, Msg};
use isa::{Dtype, Engine, Instr};
use sim_core::{BusyTime, Clock, Component, ComponentId, Ctx, Cycles, Stats, Time, Unit};
use std::collections::VecDeque;
use std::sync::Arc;

#[derive(Clone, Debug, PartialEq)]
pub struct CoreConfig {
    pub clock: Clock,
    pub matrix: MatrixShape,
    pub vector: VectorShape,
    pub scratchpad_bytes: u64,
    pub dma_max_outstanding: u32,
    pub dma_transaction: u64,
    /// The chiplet's memory controller.
    pub memory: ComponentId,
    /// One-way latency across the mesh between the core and the memory controller.
    pub noc_latency: Time,
    /// Mesh hops between the core and the memory controller, for energy.
    pub noc_hops: u32,
}

#[derive(Debug)]
struct Launch {
    program: Arc<PreparedProgram>,
    reply_to: ComponentId,
    token: u64,
}

/// The program running now. Per-instruction state lives in the core's
/// buffers, which are reused from one program to the next.
#[derive(Debug)]
struct Run {
    launch: Launch,
    heads: [usize; 3],
    engine_busy: [bool; 3],
    /// The DMA instruction whose transactions are being issued, and how far.
    dma_issuing: Option<(u32, u64)>,
    dma_outstanding: u32,
    retired: usize,
}

/// An NPU core component.
#[derive(Debug)]
pub struct Core {
    cfg: CoreConfig,
    waiting: VecDeque<Launch>,
    run: Option<Run>,
    deps_left: Vec<u32>,
    txns_in_flight: Vec<u32>,
    fully_issued: Vec<bool>,
    busy: [BusyTime; 3],
    dma_active_since: Time,
    retired: [u64; 3],
    programs: u64,
    macs: [u64; 6],
    vector_lane_ops: u64,
    sram_bits: u64,
    dma_read_bytes: u64,
    dma_write_bytes: u64,
    faults: u64,
}

impl Core {
    pub fn new(cfg: CoreConfig) -> Core {
        Core {
            cfg,
            waiting: VecDeque::new(),
            run: None,
            deps_left: Vec::new(),
            txns_in_flight: Vec::new(),
            fully_issued: Vec::new(),
            busy: [BusyTime::default(); 3],
            dma_active_since: Time::ZERO,
            retired: [0; 3],
            programs: 0,
            macs: [0; 6],
            vector_lane_ops: 0,
            sram_bits: 0,
            dma_read_bytes: 0,
            dma_write_bytes: 0,
            faults: 0,
        }
    }

    fn start(&mut self, launch: Launch, ctx: &mut Ctx<'_, Msg>) {
        let prepared = &launch.program;
        if prepared.program().scratchpad_bytes() > self.cfg.scratchpad_bytes {
            // Lowering checks programs against the spec; count any that slip through.
            self.faults += 1;
        }
        let n = prepared.len();
        self.deps_left.clear();
        self.deps_left.extend_from_slice(prepared.dep_counts());
        self.txns_in_flight.clear();
        self.txns_in_flight.resize(n, 0);
        self.fully_issued.clear();
        self.fully_issued.resize(n, false);
        self.run = Some(Run {
            launch,
            heads: [0; 3],
            engine_busy: [false; 3],
            dma_issuing: None,
            dma_outstanding: 0,
            retired: 0,
        });
        if n == 0 {
            self.finish(ctx);
        } else {
            self.issue(ctx);
        }
    }

    fn finish(&mut self, ctx: &mut Ctx<'_, Msg>) {
        if let Some(run) = self.run.take() {
            self.programs += 1;
            ctx.send(run.launch.reply_to, Time::ZERO, Msg::Done { token: run.launch.token });
        }
        if let Some(next) = self.waiting.pop_front() {
            self.start(next, ctx);
        }
    }

    fn retire(&mut self, index: u32, engine: Engine, ctx: &mut Ctx<'_, Msg>) {
        self.retired[engine.index()] += 1;
        let Some(run) = self.run.as_mut() else { return };
        run.retired += 1;
        for &d in run.launch.program.dependents(index) {
            self.deps_left[d as usize] -= 1;
        }
        if run.retired == run.launch.program.len() {
            self.finish(ctx);
        } else {
            self.issue(ctx);
        }
    }

    /// Start whatever can start now on each engine.
    fn issue(&mut self, ctx: &mut Ctx<'_, Msg>) {
        for engine in [Engine::Matrix, Engine::Vector] {
            self.issue_compute(engine, ctx);
        }
        self.issue_dma(ctx);
    }

    fn ready_head(run: &Run, deps_left: &[u32], engine: Engine) -> Option<u32> {
        let &index = run.launch.program.queue(engine).get(run.heads[engine.index()])?;
        (deps_left[index as usize] == 0).then_some(index)
    }

    fn issue_compute(&mut self, engine: Engine, ctx: &mut Ctx<'_, Msg>) {
        let Some(run) = self.run.as_mut() else { return };
        let e = engine.index();
        if run.engine_busy[e] {
            return;
        }
        let Some(index) = Self::ready_head(run, &self.deps_left, engine) else { return };
        run.heads[e] += 1;
        run.engine_busy[e] = true;
        let program = Arc::clone(&run.launch.program);
        let instr = &program.program().instrs[index as usize];
        let cycles = self.account_compute(instr);
        let clock = self.cfg.clock;
        let first = clock.cycles_covering(ctx.now());
        let start = clock.duration(first);
        let end = clock.duration(Cycles(first.0 + cycles));
        self.busy[e].record(start, end);
        ctx.send_at(ctx.me(), end, Msg::EngineDone { engine, index });
    }

    /// Cycles of a matrix or vector instruction, counting its actions.
    fn account_compute(&mut self, instr: &Instr) -> u64 {
        match *instr {
            Instr::MatMul { m, n, k, dtype, acc, accumulate, .. } => {
                let (m64, n64, k64) = (m as u64, n as u64, k as u64);
                self.macs[dtype as usize] += m64 * n64 * k64;
                let out_bits = m64 * n64 * acc.bytes() * 8;
                self.sram_bits += (m64 * k64 + k64 * n64) * dtype.bytes() * 8 + out_bits * (1 + u64::from(accumulate));
                self.cfg.matrix.cycles(m, n, k, dtype).unwrap_or_else(|| {
                    self.faults += 1;
                    0
                })
            }
            Instr::Vector { op, elems, dtype, src2, .. } => {
                let per = if op.is_transcendental() { self.cfg.vector.transcendental_cycles as u64 } else { 1 };
                self.vector_lane_ops += elems * per;
                self.sram_bits += elems * dtype.bytes() * 8 * (2 + u64::from(src2.is_some()));
                self.cfg.vector.cycles(op, elems)
            }
            Instr::Load { .. } | Instr::Store { .. } => 0,
        }
    }

    fn issue_dma(&mut self, ctx: &mut Ctx<'_, Msg>) {
        let me = ctx.me();
        loop {
            let Some(run) = self.run.as_mut() else { return };
            if run.dma_outstanding >= self.cfg.dma_max_outstanding {
                return;
            }
            if run.dma_issuing.is_none() {
                let Some(index) = Self::ready_head(run, &self.deps_left, Engine::Dma) else { return };
                run.heads[Engine::Dma.index()] += 1;
                run.dma_issuing = Some((index, 0));
            }
            let Some((index, offset)) = run.dma_issuing else { return };
            let (addr, total, write) = match run.launch.program.program().instrs[index as usize] {
                Instr::Load { addr, bytes, .. } => (addr, bytes, false),
                Instr::Store { addr, bytes, .. } => (addr, bytes, true),
                _ => unreachable!("only loads and stores queue on the DMA engine"),
            };
            if total == 0 {
                run.dma_issuing = None;
                self.retire(index, Engine::Dma, ctx);
                continue;
            }
            let bytes = self.cfg.dma_transaction.min(total - offset);
            let req = MemRequest {
                addr: addr + offset,
                bytes,
                write,
                reply_to: me,
                token: index as u64,
                reply_delay: self.cfg.noc_latency,
            };
            ctx.send(self.cfg.memory, self.cfg.noc_latency, Msg::Mem(req));
            if run.dma_outstanding == 0 {
                self.dma_active_since = ctx.now();
            }
            run.dma_outstanding += 1;
            self.txns_in_flight[index as usize] += 1;
            if offset + bytes == total {
                self.fully_issued[index as usize] = true;
                run.dma_issuing = None;
            } else {
                run.dma_issuing = Some((index, offset + bytes));
            }
            if write {
                self.dma_write_bytes += bytes;
            } else {
                self.dma_read_bytes += bytes;
            }
            self.sram_bits += bytes * 8;
        }
    }

    fn transaction_done(&mut self, index: u32, ctx: &mut Ctx<'_, Msg>) {
        let Some(run) = self.run.as_mut() else { return };
        run.dma_outstanding -= 1;
        self.txns_in_flight[index as usize] -= 1;
        if run.dma_outstanding == 0 {
            self.busy[Engine::Dma.index()].record(self.dma_active_since, ctx.now());
        }
        if self.txns_in_flight[index as usize] == 0 && self.fully_issued[index as usize] {
            self.retire(index, Engine::Dma, ctx);
        } else {
            self.issue_dma(ctx);
        }
    }
}

impl Component<Msg> for Core {
    fn kind(&self) -> &'static str {
        "npu.core"
    }

    fn handle(&mut self, msg: Msg, ctx: &mut Ctx<'_, Msg>) {
        match msg {
            Msg::RunProgram { program, reply_to, token } => {
                let launch = Launch { program, reply_to, token };
                if self.run.is_some() {
                    self.waiting.push_back(launch);
                } else {
                    self.start(launch, ctx);
                }
            }
            Msg::EngineDone { engine, index } => {
                if let Some(run) = self.run.as_mut() {
                    run.engine_busy[engine.index()] = false;
                }
                self.retire(index, engine, ctx);
            }
            Msg::Done { token } => self.transaction_done(token as u32, ctx),
            other => debug_assert!(false, "core received {other:?}"),
        }
    }

    fn stats(&self, now: Time) -> Stats {
        let mut s = Stats::new();
        for engine in Engine::ALL {
            let e = engine.index();
            s = s
                .scalar(
                    format!("busy.npu.{}", engine.name()),
                    Unit::Picoseconds,
                    "time the engine was working",
                    self.busy[e].total_until(now).as_ps(),
                )
                .count(format!("units.npu.{}", engine.name()), "engines", 1)
                .count(format!("{}.retired", engine.name()), "instructions retired", self.retired[e]);
        }
        for dtype in Dtype::ALL {
            if self.macs[dtype as usize] > 0 {
                s = s.count(format!("actions.mac.{dtype}"), "multiply-accumulates", self.macs[dtype as usize]);
            }
        }
        s.count("programs", "programs run to completion", self.programs)
            .count("actions.vector_op", "vector lane operations", self.vector_lane_ops)
            .count("actions.sram_bits", "scratchpad bits read and written", self.sram_bits)
            .count(
                "actions.noc_bits",
                "bit-hops on the mesh",
                (self.dma_read_bytes + self.dma_write_bytes) * 8 * self.cfg.noc_hops as u64,
            )
            .bytes("dma.read_bytes", "bytes loaded from memory", self.dma_read_bytes)
            .bytes("dma.write_bytes", "bytes stored to memory", self.dma_write_bytes)
            .count("faults", "instructions the core could not execute as given", self.faults)
    }
}
