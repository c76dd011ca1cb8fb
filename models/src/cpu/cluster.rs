//! The CPU cluster: cores that run host tasks, sharing the host's DRAM.
//!
//! A task is described by its work — instructions and the parallelism they
//! allow, vector FLOPs, bytes of memory it reads and the working set they
//! come from — and split over up to `threads` cores. A thread takes the
//! longer of its compute time (cycles at the core's clock) and its memory
//! time. Threads wait for a free core.
//!
//! Memory time: the first touch of the working set comes from DRAM, whose
//! channels all cores share (so contention shows), at most at what the
//! core's misses in flight allow. Reuse beyond it hits each cache level in
//! the proportion of the working set the level holds (accesses spread over
//! the working set: a level of capacity C serves min(1, C/W) of them), at
//! that level's streaming bandwidth; the shared last-level cache is split
//! among the cores that run. What no level holds goes to DRAM.

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
    /// Bytes read or written, all threads together.
    pub bytes: u64,
    /// Distinct bytes among them, all threads together; each thread works on
    /// its share. Zero for as many as `bytes` (data streamed once).
    pub working_set: u64,
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
    /// L1, L2, then the last level (shared) if there is one.
    pub caches: Vec<CacheLevel>,
}

/// One cache level as the model sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct CacheLevel {
    pub name: &'static str,
    /// Per core, or for the node when shared.
    pub size: u64,
    pub shared: bool,
    /// What one core streams from it.
    pub bandwidth: Bandwidth,
}

/// Where a thread's bytes come from: per cache level, then DRAM's first touches and misses.
#[derive(Clone, Debug, PartialEq)]
pub struct Served {
    pub from_cache: Vec<u64>,
    pub from_dram: u64,
    /// Time to stream the cached part.
    pub cache_time: Time,
}

impl CpuConfig {
    /// Where `bytes` of a thread with `working_set` distinct bytes come
    /// from, with `running` cores sharing the last level.
    pub fn serve(&self, bytes: u64, working_set: u64, running: u32) -> Served {
        let w = if working_set == 0 { bytes } else { working_set.min(bytes) };
        let reuse = bytes - w;
        let mut from_cache = Vec::with_capacity(self.caches.len());
        let (mut held_before, mut cache_time) = (0.0f64, Time::ZERO);
        for level in &self.caches {
            let size = if level.shared { level.size / running.max(1) as u64 } else { level.size };
            let held = (size as f64 / w.max(1) as f64).min(1.0);
            let hits = (reuse as f64 * (held - held_before).max(0.0)).round() as u64;
            held_before = held_before.max(held);
            cache_time += level.bandwidth.time_for(hits);
            from_cache.push(hits);
        }
        let from_dram = bytes - from_cache.iter().sum::<u64>();
        Served { from_cache, from_dram, cache_time }
    }
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
    /// Bytes served by each cache level, and from DRAM.
    cache_bytes: Vec<u64>,
    dram_bytes: u64,
}

impl CpuCluster {
    pub fn new(cfg: CpuConfig) -> CpuCluster {
        let free_cores = cfg.cores;
        let cache_bytes = vec![0; cfg.caches.len()];
        CpuCluster {
            cache_bytes,
            dram_bytes: 0,
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
        let running = self.cfg.cores - self.free_cores;
        let served = self.cfg.serve(task.bytes.div_ceil(threads), task.working_set.div_ceil(threads), running);
        for (count, hits) in self.cache_bytes.iter_mut().zip(&served.from_cache) {
            *count += hits;
        }
        self.dram_bytes += served.from_dram;
        ready = ready.max(now + served.cache_time);
        let bytes = served.from_dram;
        let index = Self::slot(&mut self.threads, ThreadRun { task: task_index, started: now, pending: 1 });
        if bytes > 0 {
            ready =
                ready.max(now + self.cfg.dram_latency + served.cache_time + self.cfg.core_bandwidth.time_for(bytes));
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
        for (level, bytes) in self.cfg.caches.iter().zip(&self.cache_bytes) {
            s = s.bytes(format!("served.{}", level.name), "bytes host tasks read from this cache level", *bytes);
        }
        s = s.bytes("served.dram", "bytes host tasks read from DRAM (first touches and misses)", self.dram_bytes);
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
