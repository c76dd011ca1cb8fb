//! An NPU core: an instruction sequencer dispatching, in program order, into
//! the queues of a DMA engine, a matrix engine, a vector engine and a sync
//! unit, which run in parallel.
//!
//! An instruction issues when it is at the head of its engine's queue and
//! every instruction it depends on has finished as far as it needs (see
//! [`isa::Hazard`]). The matrix and vector engines are pipelined (see
//! [`super::timing`]): an instruction streams for `tiles × period` cycles
//! once it is ready and its fill is done, back to back with the one before,
//! and its results appear `drain` cycles later. Their operand traffic and the
//! DMA's arriving data share the scratchpad's ports, a bandwidth server; an
//! instruction cannot finish before its traffic is through. Loads and stores
//! become memory transactions of `dma_transaction` bytes (at most
//! `dma_max_outstanding` in flight) to the chiplet's memory controller or
//! shared SRAM, or messages to another core's scratchpad over the mesh.
//!
//! Each engine's time is accounted as busy, or stalled waiting on a DMA
//! result, on a compute result, on the scratchpad port, or on
//! synchronisation; the rest is idle.

use super::prepared::PreparedProgram;
use super::timing::{MatrixShape, StageTiming, VectorShape};
use crate::msg::{MemRequest, Msg, Stage};
use isa::{BufId, Dtype, Engine, Instr, MemRef};
use sim_core::{BusyTime, Clock, Component, ComponentId, Ctx, Cycles, Replayed, Stats, Time, Unit};
use std::collections::VecDeque;
use std::sync::Arc;

#[derive(Clone, Debug, PartialEq)]
pub struct CoreConfig {
    pub clock: Clock,
    pub matrix: MatrixShape,
    pub vector: VectorShape,
    pub scratchpad_bytes: u64,
    /// Accumulator storage beside the scratchpad, addressed after it.
    pub accumulator_bytes: u64,
    /// Bytes the scratchpad's ports move per cycle, all banks together.
    pub port_bytes_per_cycle: u64,
    /// Instructions each engine's queue holds, by [`Engine::index`].
    pub queue_depth: [u32; 4],
    pub dma_max_outstanding: u32,
    pub dma_transaction: u64,
    /// The chiplet's memory controller.
    pub memory: ComponentId,
    /// The chiplet's shared SRAM.
    pub shared: ComponentId,
    /// The chiplet's cores, by index (this one included).
    pub peers: Arc<[ComponentId]>,
    /// This core's index among them.
    pub index: u16,
    /// The chiplet's network, which carries everything the core sends off the core.
    pub network: ComponentId,
    /// Pure engine timing: memory and the scratchpad port take no time.
    pub compute_only: bool,
}

/// What an engine was waiting for when it could not issue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cause {
    Dma,
    Compute,
    Port,
    Sync,
}

const CAUSES: [(Cause, &str); 4] =
    [(Cause::Dma, "dma"), (Cause::Compute, "compute"), (Cause::Port, "port"), (Cause::Sync, "sync")];

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
    /// The next instruction to dispatch, in program order.
    dispatched: usize,
    queued: [u32; 4],
    heads: [usize; 4],
    /// The DMA instruction whose transactions are being issued, and how far.
    dma_issuing: Option<(u32, u64)>,
    dma_outstanding: u32,
    /// The sync unit waits at a barrier.
    at_barrier: bool,
    retired: usize,
}

/// An NPU core component.
#[derive(Debug)]
pub struct Core {
    cfg: CoreConfig,
    ports: super::ports::Ports,
    waiting: VecDeque<Launch>,
    run: Option<Run>,
    deps_left: Vec<u32>,
    txns_in_flight: Vec<u32>,
    fully_issued: Vec<bool>,
    semaphores: Vec<u32>,
    /// Cycle at which the matrix and vector engines' input stages free up.
    free_cycle: [u64; 4],
    /// Since when, and why, an engine has been waiting with nothing it can issue.
    blocked: [Option<(Time, Cause)>; 4],
    stalls: [[Time; 4]; 4],
    busy: [BusyTime; 4],
    dma_active_since: Time,
    retired: [u64; 4],
    programs: u64,
    macs: [u64; 6],
    vector_lane_ops: u64,
    sram_bits: u64,
    dma_read_bytes: u64,
    dma_write_bytes: u64,
    mesh_bytes: u64,
    doorbells: Vec<(Time, u32)>,
    faults: u64,
    /// Work replayed rather than simulated.
    replayed: Replayed,
}

impl Core {
    pub fn new(cfg: CoreConfig) -> Core {
        Core {
            ports: super::ports::Ports::new(cfg.port_bytes_per_cycle),
            cfg,
            waiting: VecDeque::new(),
            run: None,
            deps_left: Vec::new(),
            txns_in_flight: Vec::new(),
            fully_issued: Vec::new(),
            semaphores: vec![0; 256],
            free_cycle: [0; 4],
            blocked: [None; 4],
            stalls: [[Time::ZERO; 4]; 4],
            busy: [BusyTime::default(); 4],
            dma_active_since: Time::ZERO,
            retired: [0; 4],
            programs: 0,
            macs: [0; 6],
            vector_lane_ops: 0,
            sram_bits: 0,
            dma_read_bytes: 0,
            dma_write_bytes: 0,
            mesh_bytes: 0,
            doorbells: Vec::new(),
            faults: 0,
            replayed: Replayed::default(),
        }
    }

    /// The earliest instruction of the running program that an engine is
    /// held at (a `wait` or `barrier` never satisfied holds the sync unit
    /// there), or `None` when no program is running.
    pub fn held_at(&self) -> Option<usize> {
        let run = self.run.as_ref()?;
        Engine::ALL
            .iter()
            .filter_map(|&e| run.launch.program.queue(e).get(run.heads[e.index()]).map(|&i| i as usize))
            .min()
            .or(Some(run.dispatched))
    }

    /// When each doorbell rang, with its value.
    pub fn doorbells(&self) -> &[(Time, u32)] {
        &self.doorbells
    }

    fn start(&mut self, launch: Launch, ctx: &mut Ctx<'_, Msg>) {
        let prepared = &launch.program;
        if !prepared.fits(self.cfg.scratchpad_bytes + self.cfg.accumulator_bytes) {
            // Lowering and the assembler check programs against the spec; count any that slip through.
            self.faults += 1;
        }
        let n = prepared.len();
        self.deps_left.clear();
        self.deps_left.extend_from_slice(prepared.dep_counts());
        self.txns_in_flight.clear();
        self.txns_in_flight.resize(n, 0);
        self.fully_issued.clear();
        self.fully_issued.resize(n, false);
        self.blocked = [None; 4];
        self.run = Some(Run {
            launch,
            dispatched: 0,
            queued: [0; 4],
            heads: [0; 4],
            dma_issuing: None,
            dma_outstanding: 0,
            at_barrier: false,
            retired: 0,
        });
        self.issue(ctx);
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

    fn time_of(&self, cycle: u64) -> Time {
        self.cfg.clock.duration(Cycles(cycle))
    }

    /// Release what waited for `index` at this `stage` of its completion;
    /// at its result, count it retired.
    fn release(&mut self, index: u32, stage: Stage) {
        let Some(run) = self.run.as_mut() else { return };
        let program = Arc::clone(&run.launch.program);
        if stage != Stage::Result {
            for &d in program.after_reads(index) {
                self.deps_left[d as usize] -= 1;
            }
        }
        if stage != Stage::Reads {
            for &d in program.after_result(index) {
                self.deps_left[d as usize] -= 1;
            }
            run.retired += 1;
            self.retired[program.program().instrs[index as usize].engine().index()] += 1;
        }
    }

    /// Issue everything that can issue now, until nothing more can.
    fn issue(&mut self, ctx: &mut Ctx<'_, Msg>) {
        loop {
            let Some(run) = self.run.as_ref() else { return };
            if run.retired == run.launch.program.len() {
                self.finish(ctx);
                continue;
            }
            self.dispatch();
            let mut progress = false;
            progress |= self.issue_compute(Engine::Matrix, ctx);
            progress |= self.issue_compute(Engine::Vector, ctx);
            progress |= self.issue_sync(ctx);
            progress |= self.issue_dma(ctx);
            if !progress {
                return;
            }
        }
    }

    /// Move instructions, in program order, into their engines' queues while there is room.
    fn dispatch(&mut self) {
        let Some(run) = self.run.as_mut() else { return };
        let program = &run.launch.program.program().instrs;
        while let Some(instr) = program.get(run.dispatched) {
            let e = instr.engine().index();
            if run.queued[e] >= self.cfg.queue_depth[e].max(1) {
                break;
            }
            run.queued[e] += 1;
            run.dispatched += 1;
        }
    }

    /// The head of `engine`'s queue if it is dispatched and ready; otherwise
    /// note why the engine waits.
    fn ready_head(&mut self, engine: Engine, now: Time) -> Option<u32> {
        let run = self.run.as_ref()?;
        let e = engine.index();
        let &index = run.launch.program.queue(engine).get(run.heads[e])?;
        if index as usize >= run.dispatched {
            return None;
        }
        if self.deps_left[index as usize] == 0 {
            return Some(index);
        }
        if self.blocked[e].is_none() {
            let program = &run.launch.program;
            let instrs = &program.program().instrs;
            let cause = program
                .waits_on(index)
                .iter()
                .map(|&p| match instrs[p as usize].engine() {
                    Engine::Dma => Cause::Dma,
                    Engine::Sync => Cause::Sync,
                    _ => Cause::Compute,
                })
                .next()
                .unwrap_or(Cause::Compute);
            let free = self.time_of(self.free_cycle[e]).max(now);
            self.blocked[e] = Some((free, cause));
        }
        None
    }

    /// Account the wait that ends when `engine` starts working at `start`.
    fn unblock(&mut self, engine: Engine, start: Time) {
        if let Some((since, cause)) = self.blocked[engine.index()].take()
            && start > since
        {
            self.stalls[engine.index()][cause as usize] += start - since;
        }
    }

    fn advance_head(&mut self, engine: Engine) {
        if let Some(run) = self.run.as_mut() {
            run.heads[engine.index()] += 1;
            run.queued[engine.index()] -= 1;
        }
    }

    /// Reserve the scratchpad ports for `bytes` from `from_cycle` (now is
    /// `now_cycle`); returns the cycle they are through.
    fn port(&mut self, now_cycle: u64, from_cycle: u64, bytes: u64) -> u64 {
        if self.cfg.compute_only || bytes == 0 {
            return from_cycle;
        }
        self.ports.reserve(now_cycle, from_cycle, bytes)
    }

    fn issue_compute(&mut self, engine: Engine, ctx: &mut Ctx<'_, Msg>) -> bool {
        let now = ctx.now();
        let Some(index) = self.ready_head(engine, now) else { return false };
        let Some(run) = self.run.as_ref() else { return false };
        let program = Arc::clone(&run.launch.program);
        let instr = &program.program().instrs[index as usize];
        // Buffers placed beyond the scratchpad live in the accumulators (a
        // GPU's registers): what an instruction reads or writes there does
        // not cross the scratchpad's ports.
        let spad = self.cfg.scratchpad_bytes;
        let in_scratchpad = |b: BufId| program.program().buffers.get(b.0 as usize).is_none_or(|b| b.offset < spad);
        let (timing, traffic) = self.account_compute(instr, in_scratchpad);
        let e = engine.index();
        let ready = self.cfg.clock.cycles_covering(now).0;
        let start = self.free_cycle[e].max(ready + timing.fill);
        let computed = start + timing.streaming();
        let end = computed.max(self.port(ready, start, traffic));
        self.unblock(engine, self.time_of(ready.max(self.free_cycle[e])));
        if end > computed {
            self.stalls[e][Cause::Port as usize] += self.time_of(end) - self.time_of(computed);
        }
        self.free_cycle[e] = end;
        self.busy[e].record(self.time_of(start), self.time_of(end));
        self.advance_head(engine);
        let reads_done = self.time_of(end);
        let drain = self.time_of(end + timing.drain) - reads_done;
        self.schedule_completion(index, reads_done, drain, ctx);
        true
    }

    /// Send the completion events of `index`: its reads are done at
    /// `reads_done`, its results visible `drain` later (one event when both coincide).
    fn schedule_completion(&mut self, index: u32, reads_done: Time, drain: Time, ctx: &mut Ctx<'_, Msg>) {
        let me = ctx.me();
        let readers = self.run.as_ref().is_some_and(|r| !r.launch.program.after_reads(index).is_empty());
        if drain > Time::ZERO && readers {
            ctx.send_at(me, reads_done, Msg::InstrDone { index, stage: Stage::Reads });
            ctx.send_at(me, reads_done + drain, Msg::InstrDone { index, stage: Stage::Result });
        } else {
            ctx.send_at(me, reads_done + drain, Msg::InstrDone { index, stage: Stage::Both });
        }
    }

    /// The timing of a matrix or vector instruction and its scratchpad
    /// traffic, counting its actions. Only the buffers in the scratchpad
    /// cross its ports: partial sums, softmax scores or an operand held in
    /// the accumulators do not.
    fn account_compute(&mut self, instr: &Instr, in_scratchpad: impl Fn(BufId) -> bool) -> (StageTiming, u64) {
        match *instr {
            Instr::MatMul { c, a, m, n, k, dtype, acc, accumulate, .. } => {
                self.macs[dtype as usize] += m as u64 * n as u64 * k as u64;
                let all = self.cfg.matrix.scratchpad_bytes(m, n, k, dtype, acc, accumulate, in_scratchpad(c));
                // An operand in registers (Hopper's wgmma with A from registers) is not streamed.
                let from_registers = if in_scratchpad(a) { 0 } else { self.cfg.matrix.operand_bytes(m, n, k, dtype).0 };
                let traffic = all - from_registers;
                self.sram_bits += traffic * 8;
                let timing = self.cfg.matrix.timing(m, n, k, dtype).unwrap_or_else(|| {
                    self.faults += 1;
                    StageTiming { tiles: 0, period: 0, fill: 0, drain: 0 }
                });
                (timing, traffic)
            }
            Instr::Vector { op, dst, src, src2, elems, dtype } => {
                let timing = self.cfg.vector.timing(op, elems);
                self.vector_lane_ops += timing.period * self.cfg.vector.lanes as u64;
                let streamed = [Some(dst), Some(src), src2].into_iter().flatten().filter(|&b| in_scratchpad(b)).count();
                let traffic = elems * dtype.bytes() * streamed as u64;
                self.sram_bits += traffic * 8;
                (timing, traffic)
            }
            _ => (StageTiming { tiles: 0, period: 0, fill: 0, drain: 0 }, 0),
        }
    }

    fn issue_sync(&mut self, ctx: &mut Ctx<'_, Msg>) -> bool {
        let now = ctx.now();
        if self.run.as_ref().is_some_and(|r| r.at_barrier) {
            return false;
        }
        let Some(index) = self.ready_head(Engine::Sync, now) else { return false };
        let Some(run) = self.run.as_ref() else { return false };
        let program = Arc::clone(&run.launch.program);
        let (reply_to, token) = (run.launch.reply_to, run.launch.token);
        match program.program().instrs[index as usize] {
            Instr::Signal { sem, core } => match core.filter(|&c| c != self.cfg.index) {
                Some(c) => {
                    let Some(&peer) = self.cfg.peers.get(c as usize) else {
                        self.faults += 1;
                        return self.sync_done(index, now);
                    };
                    self.over_network(peer, Msg::Signal { sem }, ctx);
                }
                None => self.semaphores[sem as usize] += 1,
            },
            Instr::Wait { sem, count } => {
                if self.semaphores[sem as usize] < count {
                    if self.blocked[Engine::Sync.index()].is_none() {
                        self.blocked[Engine::Sync.index()] = Some((now, Cause::Sync));
                    }
                    return false;
                }
                self.semaphores[sem as usize] -= count;
            }
            Instr::Barrier => {
                if let Some(run) = self.run.as_mut() {
                    run.at_barrier = true;
                }
                self.unblock(Engine::Sync, now);
                self.blocked[Engine::Sync.index()] = Some((now, Cause::Sync));
                ctx.send(reply_to, Time::ZERO, Msg::BarrierArrive { token });
                return true;
            }
            Instr::Doorbell { value } => self.doorbells.push((now, value)),
            _ => unreachable!("only sync instructions queue on the sync unit"),
        }
        self.sync_done(index, now)
    }

    fn sync_done(&mut self, index: u32, now: Time) -> bool {
        self.unblock(Engine::Sync, now);
        self.advance_head(Engine::Sync);
        self.release(index, Stage::Both);
        true
    }

    fn barrier_released(&mut self, ctx: &mut Ctx<'_, Msg>) {
        let Some(run) = self.run.as_mut() else { return };
        if !run.at_barrier {
            return;
        }
        run.at_barrier = false;
        let index = run.launch.program.queue(Engine::Sync)[run.heads[Engine::Sync.index()]];
        self.sync_done(index, ctx.now());
        self.issue(ctx);
    }

    fn issue_dma(&mut self, ctx: &mut Ctx<'_, Msg>) -> bool {
        let now = ctx.now();
        let me = ctx.me();
        let mut progress = false;
        loop {
            let Some(run) = self.run.as_ref() else { return progress };
            if run.dma_outstanding >= self.cfg.dma_max_outstanding {
                return progress;
            }
            let (index, offset) = match run.dma_issuing {
                Some(at) => at,
                None => {
                    let Some(index) = self.ready_head(Engine::Dma, now) else { return progress };
                    self.unblock(Engine::Dma, now);
                    self.advance_head(Engine::Dma);
                    (index, 0)
                }
            };
            progress = true;
            let Some(run) = self.run.as_ref() else { return progress };
            let instr = run.launch.program.program().instrs[index as usize].clone();
            let total = instr.dma_bytes();
            if self.cfg.compute_only || total == 0 {
                if let Some(run) = self.run.as_mut() {
                    run.dma_issuing = None;
                }
                self.count_dma(&instr, total);
                self.release(index, Stage::Both);
                continue;
            }
            let (target, write) = match instr {
                Instr::Load { src, .. } => (src, false),
                Instr::Store { dst, .. } => (dst, true),
                Instr::Send { core, offset, .. } => (MemRef::Core { core, offset }, true),
                _ => unreachable!("only DMA instructions queue on the DMA engine"),
            };
            // Transfers to another core go as one message; memory transfers in transactions.
            let bytes = match target {
                MemRef::Core { .. } => total - offset,
                _ => self.cfg.dma_transaction.min(total - offset),
            };
            match target {
                MemRef::Hbm(base) | MemRef::Shared(base) => {
                    let to = if matches!(target, MemRef::Hbm(_)) { self.cfg.memory } else { self.cfg.shared };
                    let addr = base + offset;
                    let req =
                        MemRequest { addr, bytes, write, reply_to: me, token: index as u64, reply_delay: Time::ZERO };
                    self.over_network(to, Msg::Mem(req), ctx);
                }
                MemRef::Core { core, .. } => {
                    let Some(&peer) = self.cfg.peers.get(core as usize) else {
                        self.faults += 1;
                        if let Some(run) = self.run.as_mut() {
                            run.dma_issuing = None;
                        }
                        self.release(index, Stage::Both);
                        continue;
                    };
                    self.mesh_bytes += bytes;
                    // A send writes the peer's scratchpad; the network carries the data there.
                    let access =
                        Msg::SpadAccess { bytes, write, reply_to: me, token: index as u64, reply_delay: Time::ZERO };
                    self.over_network(peer, access, ctx);
                }
            }
            let Some(run) = self.run.as_mut() else { return progress };
            if run.dma_outstanding == 0 {
                self.dma_active_since = now;
            }
            run.dma_outstanding += 1;
            self.txns_in_flight[index as usize] += 1;
            if offset + bytes >= total {
                self.fully_issued[index as usize] = true;
                run.dma_issuing = None;
            } else {
                run.dma_issuing = Some((index, offset + bytes));
            }
            self.count_dma(&instr, bytes);
        }
    }

    fn over_network(&self, to: ComponentId, msg: Msg, ctx: &mut Ctx<'_, Msg>) {
        ctx.send(self.cfg.network, Time::ZERO, Msg::Noc { from: ctx.me(), to, msg: Box::new(msg) });
    }

    fn count_dma(&mut self, instr: &Instr, bytes: u64) {
        match instr {
            Instr::Load { .. } => self.dma_read_bytes += bytes,
            _ => self.dma_write_bytes += bytes,
        }
        self.sram_bits += bytes * 8;
    }

    /// A memory or peer transaction of instruction `index` came back.
    fn transaction_done(&mut self, index: u32, ctx: &mut Ctx<'_, Msg>) {
        let Some(run) = self.run.as_mut() else { return };
        run.dma_outstanding -= 1;
        self.txns_in_flight[index as usize] -= 1;
        if run.dma_outstanding == 0 {
            self.busy[Engine::Dma.index()].record(self.dma_active_since, ctx.now());
        }
        if self.txns_in_flight[index as usize] == 0 && self.fully_issued[index as usize] {
            self.release(index, Stage::Both);
        }
        self.issue(ctx);
    }

    /// Another core reads or writes this core's scratchpad: it uses the ports.
    fn serve_peer(&mut self, bytes: u64, reply_to: ComponentId, token: u64, reply_delay: Time, ctx: &mut Ctx<'_, Msg>) {
        let now = self.cfg.clock.cycles_covering(ctx.now()).0;
        let through = self.port(now, now, bytes);
        self.sram_bits += bytes * 8;
        let at = self.time_of(through).max(ctx.now()) + reply_delay;
        ctx.send_at(reply_to, at, Msg::Done { token });
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
            Msg::InstrDone { index, stage } => {
                self.release(index, stage);
                self.issue(ctx);
            }
            Msg::Done { token } => self.transaction_done(token as u32, ctx),
            Msg::SpadAccess { bytes, reply_to, token, reply_delay, .. } => {
                self.serve_peer(bytes, reply_to, token, reply_delay, ctx)
            }
            Msg::Signal { sem } => {
                self.semaphores[sem as usize] += 1;
                self.issue(ctx);
            }
            Msg::BarrierRelease => self.barrier_released(ctx),
            Msg::Replay { records } => records.iter().for_each(|(r, n)| self.replayed.add(r, *n)),
            other => debug_assert!(false, "core received {other:?}"),
        }
    }

    fn stats(&self, now: Time) -> Stats {
        let mut s = Stats::new();
        for engine in Engine::ALL {
            let e = engine.index();
            if engine != Engine::Sync {
                s = s
                    .scalar(
                        format!("busy.npu.{}", engine.name()),
                        Unit::Picoseconds,
                        "time the engine was working",
                        self.busy[e].total_until(now).as_ps(),
                    )
                    .count(format!("units.npu.{}", engine.name()), "engines", 1);
            }
            s = s.count(format!("{}.retired", engine.name()), "instructions retired", self.retired[e]);
            for (cause, name) in CAUSES {
                let t = self.stalls[e][cause as usize];
                if t > Time::ZERO {
                    s = s.time(format!("stall.{}.{name}", engine.name()), "time the engine waited with work queued", t);
                }
            }
        }
        for dtype in Dtype::ALL {
            if self.macs[dtype as usize] > 0 {
                s = s.count(format!("actions.mac.{dtype}"), "multiply-accumulates", self.macs[dtype as usize]);
            }
        }
        let s = s
            .count("programs", "programs run to completion", self.programs)
            .count("actions.vector_op", "vector lane operations", self.vector_lane_ops)
            .count("actions.sram_bits", "scratchpad bits read and written", self.sram_bits)
            .bytes("dma.read_bytes", "bytes loaded", self.dma_read_bytes)
            .bytes("dma.write_bytes", "bytes stored or sent", self.dma_write_bytes)
            .bytes("mesh.bytes", "bytes moved to or from other cores' scratchpads", self.mesh_bytes)
            .count("doorbells", "doorbells rung", self.doorbells.len() as u64)
            .count("faults", "instructions the core could not execute as given", self.faults);
        self.replayed.merge_into(s, &["units."])
    }
}
