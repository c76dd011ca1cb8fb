//! The CPU cluster: cores that run host tasks, sharing the host's DRAM.
//!
//! A task is described by its work — instructions and the parallelism they
//! allow, vector FLOPs, bytes of memory it streams — and split over up to
//! `threads` cores. A thread takes the longer of its compute time (cycles at
//! the core's clock) and its memory time: its bytes go to the DRAM controller,
//! whose channels all cores share, and no core draws more than its own
//! miss-level parallelism allows. Threads wait for a free core.

use crate::msg::{MemRequest, Msg};
use crate::units::Bandwidth;
use sim_core::{Clock, Component, ComponentId, Ctx, Cycles, Stats, Time, Unit};
use std::collections::VecDeque;
use std::sync::Arc;

/// Work for the host, as the model sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct HostTask {
    /// What the work is, e.g. "sample" or "schedule".
    pub name: &'static str,
    /// Instructions executed, all threads together.
    pub instructions: u64,
    /// Instructions per cycle the code allows at best (its instruction-level parallelism).
    pub ilp: f64,
    /// FP32 vector FLOPs, all threads together.
    pub vector_flops: u64,
    /// Bytes streamed from or to DRAM, all threads together.
    pub bytes: u64,
    /// Cores the work is split over.
    pub threads: u32,
}

#[derive(Clone, Debug, PartialEq)]
pub struct CpuConfig {
    pub cores: u32,
    pub clock: Clock,
    pub issue_width: u32,
    /// FP32 FLOPs per cycle per core (lanes × pipes × 2 for fused multiply-add).
    pub vector_flops_per_cycle: u32,
    pub dram: ComponentId,
    /// The most one core can draw from DRAM.
    pub core_bandwidth: Bandwidth,
    pub dram_latency: Time,
}

#[derive(Debug)]
struct TaskRun {
    task: Arc<HostTask>,
    reply_to: ComponentId,
    token: u64,
    threads_left: u32,
}

#[derive(Debug)]
struct ThreadRun {
    task: usize,
    started: Time,
    /// Events still awaited: the compute timer, and the memory reply if any.
    pending: u8,
}

#[derive(Debug)]
pub struct CpuCluster {
    cfg: CpuConfig,
    free_cores: u32,
    queue: VecDeque<usize>,
    tasks: Vec<Option<TaskRun>>,
    threads: Vec<Option<ThreadRun>>,
    next_addr: u64,
    busy_core_ps: u64,
    tasks_done: u64,
    per_name: Vec<(&'static str, u64, u64)>,
}

impl CpuCluster {
    pub fn new(cfg: CpuConfig) -> CpuCluster {
        let free_cores = cfg.cores;
        CpuCluster {
            cfg,
            free_cores,
            queue: VecDeque::new(),
            tasks: Vec::new(),
            threads: Vec::new(),
            next_addr: 0,
            busy_core_ps: 0,
            tasks_done: 0,
            per_name: Vec::new(),
        }
    }

    fn slot<T>(slots: &mut Vec<Option<T>>, value: T) -> usize {
        match slots.iter().position(Option::is_none) {
            Some(i) => {
                slots[i] = Some(value);
                i
            }
            None => {
                slots.push(Some(value));
                slots.len() - 1
            }
        }
    }

    fn dispatch(&mut self, ctx: &mut Ctx<'_, Msg>) {
        while self.free_cores > 0 {
            let Some(task) = self.queue.pop_front() else { return };
            self.free_cores -= 1;
            self.start_thread(task, ctx);
        }
    }

    fn start_thread(&mut self, task_index: usize, ctx: &mut Ctx<'_, Msg>) {
        let Some(run) = self.tasks[task_index].as_ref() else { return };
        let task = Arc::clone(&run.task);
        let threads = task.threads.max(1) as u64;
        let now = ctx.now();
        let ipc = task.ilp.min(self.cfg.issue_width as f64).max(0.01);
        let issue_cycles = ((task.instructions.div_ceil(threads)) as f64 / ipc).ceil() as u64;
        let vector_cycles = task.vector_flops.div_ceil(threads).div_ceil(self.cfg.vector_flops_per_cycle.max(1) as u64);
        let cycles = issue_cycles.max(vector_cycles);
        let first = self.cfg.clock.cycles_covering(now);
        let mut ready = self.cfg.clock.duration(Cycles(first.0 + cycles));
        let bytes = task.bytes.div_ceil(threads);
        let index = Self::slot(&mut self.threads, ThreadRun { task: task_index, started: now, pending: 1 });
        if bytes > 0 {
            ready = ready.max(now + self.cfg.dram_latency + self.cfg.core_bandwidth.time_for(bytes));
            let req = MemRequest {
                addr: self.next_addr,
                bytes,
                write: false,
                reply_to: ctx.me(),
                token: index as u64,
                reply_delay: Time::ZERO,
            };
            self.next_addr = self.next_addr.wrapping_add(bytes.next_multiple_of(4096));
            ctx.send(self.cfg.dram, Time::ZERO, Msg::Mem(req));
            if let Some(t) = self.threads[index].as_mut() {
                t.pending = 2;
            }
        }
        ctx.send_at(ctx.me(), ready, Msg::Wake { token: index as u64 });
    }

    fn thread_event(&mut self, index: usize, ctx: &mut Ctx<'_, Msg>) {
        let Some(thread) = self.threads[index].as_mut() else { return };
        thread.pending -= 1;
        if thread.pending > 0 {
            return;
        }
        let Some(thread) = self.threads[index].take() else { return };
        let spent = (ctx.now() - thread.started).as_ps();
        self.busy_core_ps += spent;
        self.free_cores += 1;
        if let Some(run) = self.tasks[thread.task].as_mut() {
            match self.per_name.iter_mut().find(|(n, _, _)| *n == run.task.name) {
                Some(entry) => entry.2 += spent,
                None => self.per_name.push((run.task.name, 0, spent)),
            }
            run.threads_left -= 1;
            if run.threads_left == 0 {
                let done = self.tasks[thread.task].take();
                if let Some(done) = done {
                    self.tasks_done += 1;
                    if let Some(entry) = self.per_name.iter_mut().find(|(n, _, _)| *n == done.task.name) {
                        entry.1 += 1;
                    }
                    ctx.send(done.reply_to, Time::ZERO, Msg::Done { token: done.token });
                }
            }
        }
        self.dispatch(ctx);
    }
}

impl Component<Msg> for CpuCluster {
    fn kind(&self) -> &'static str {
        "cpu"
    }

    fn handle(&mut self, msg: Msg, ctx: &mut Ctx<'_, Msg>) {
        match msg {
            Msg::HostTask { task, reply_to, token } => {
                let threads = task.threads.max(1);
                let index = Self::slot(&mut self.tasks, TaskRun { task, reply_to, token, threads_left: threads });
                self.queue.extend(std::iter::repeat_n(index, threads as usize));
                self.dispatch(ctx);
            }
            Msg::Wake { token } | Msg::Done { token } => self.thread_event(token as usize, ctx),
            other => debug_assert!(false, "cpu received {other:?}"),
        }
    }

    fn stats(&self, _now: Time) -> Stats {
        let mut s = Stats::new()
            .scalar(
                "busy.cpu.core",
                Unit::Picoseconds,
                "core-time spent running host work, summed over cores",
                self.busy_core_ps,
            )
            .count("units.cpu.core", "cores", self.cfg.cores.into())
            .count("tasks", "host tasks completed", self.tasks_done)
            .scalar("actions.core_active_ps", Unit::Picoseconds, "core-time active, for energy", self.busy_core_ps);
        for (name, count, ps) in &self.per_name {
            s = s.count(format!("task.{name}.count"), "tasks of this kind completed", *count).scalar(
                format!("task.{name}.core_ps"),
                Unit::Picoseconds,
                "core-time spent on tasks of this kind",
                *ps,
            );
        }
        s
    }
}
