//! The detailed HBM controller: one scheduler per pseudo-channel over bank
//! state, with JEDEC timing in whole command-clock cycles.
//!
//! A request is split into *accesses*: runs of bursts to one row of one bank
//! of one pseudo-channel. Each pseudo-channel keeps a read and a write queue
//! and picks, first-ready first-come-first-served, among the accesses in its
//! scheduling window: a row hit that can issue soonest, else the oldest
//! access. It drains writes once `write_drain_high` are queued, down to
//! `write_drain_low` (or whenever no read waits). An access is committed only
//! when its first command can issue now, so later arrivals still compete for
//! the next slot.
//!
//! Timing (all in cycles of tCK, parameters rounded up to whole cycles):
//! - a row miss precharges the open row (no earlier than tRAS after its
//!   activate, tRTP after its last read, tWR after its last write data) and
//!   activates after tRP; activates respect tRC per bank, tRRD_S/L between
//!   banks in different/the same bank group, and at most four per tFAW;
//! - column commands follow the activate by tRCD; within one bank group they
//!   are tCCD_L apart, and every burst holds the data bus for tCCD_S, so bank
//!   groups interleave on the bus;
//! - read data follows its command by tCL, write data by tCWL; a read waits
//!   tWTR_S/L after write data, and write data waits until the bus has
//!   turned around from the last read (its data end plus one tCK);
//! - every tREFI an all-bank refresh closes every row and blocks the
//!   pseudo-channel for tRFC.

mod queue;

use super::mapping::{Coord, Organization, Resolved};
use crate::msg::{MemRequest, Msg};
use crate::spec::{ControllerSpec, DramTiming};
use queue::{Access, Queue};
use sim_core::{BusyTime, Component, ComponentId, Ctx, Histogram, Replayed, Stats, Time, Unit};
use std::collections::VecDeque;

/// What the controller needs to know, from the spec.
#[derive(Clone, Debug, PartialEq)]
pub struct HbmConfig {
    pub class: &'static str,
    pub timing: DramTiming,
    pub mapping: Resolved,
    pub organization: Organization,
    pub burst_bytes: u64,
    pub controller: ControllerSpec,
}

/// Timing in whole command-clock cycles.
#[derive(Clone, Copy, Debug)]
struct Cycles {
    ck: u64,
    rcd: u64,
    cl: u64,
    cwl: u64,
    rp: u64,
    ras: u64,
    rc: u64,
    rrd_s: u64,
    rrd_l: u64,
    faw: u64,
    ccd_s: u64,
    ccd_l: u64,
    wr: u64,
    wtr_s: u64,
    wtr_l: u64,
    rtp: u64,
    rfc: u64,
    refi: u64,
}

impl Cycles {
    fn of(t: &DramTiming) -> Cycles {
        let ck = t.t_ck.as_ps().max(1);
        let n = |x: Time| x.as_ps().div_ceil(ck);
        Cycles {
            ck,
            rcd: n(t.t_rcd),
            cl: n(t.t_cl),
            cwl: n(t.t_cwl),
            rp: n(t.t_rp),
            ras: n(t.t_ras),
            rc: n(t.t_rc),
            rrd_s: n(t.t_rrd_s),
            rrd_l: n(t.t_rrd_l),
            faw: n(t.t_faw),
            ccd_s: n(t.t_ccd_s).max(1),
            ccd_l: n(t.t_ccd_l).max(1),
            wr: n(t.t_wr),
            wtr_s: n(t.t_wtr_s),
            wtr_l: n(t.t_wtr_l),
            rtp: n(t.t_rtp),
            rfc: n(t.t_rfc),
            refi: n(t.t_refi).max(1),
        }
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct Bank {
    open: Option<u64>,
    ready_act: u64,
    ready_col: u64,
    ready_pre: u64,
}

#[derive(Debug)]
struct Channel {
    reads: Queue,
    writes: Queue,
    draining: bool,
    banks: Vec<Bank>,
    group_free: Vec<u64>,
    bus_free: u64,
    last_act: Option<(u64, u32)>,
    faw: VecDeque<u64>,
    read_end: u64,
    write_end: Option<(u64, u32)>,
    next_refresh: u64,
    decision_pending: bool,
    busy: BusyTime,
    bytes: u64,
    hits: u64,
    misses: u64,
    conflicts: u64,
}

#[derive(Debug)]
struct Pending {
    reply_to: ComponentId,
    token: u64,
    reply_delay: Time,
    arrival: Time,
    remaining: u32,
    done: u64,
    write: bool,
}

/// The next command an access needs, and the earliest cycle it can issue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Command {
    Precharge(u64),
    Activate(u64),
    Column(u64),
}

impl Command {
    fn at(self) -> u64 {
        match self {
            Command::Precharge(t) | Command::Activate(t) | Command::Column(t) => t,
        }
    }
}

/// What a scan of a queue found: the oldest access whose column command can
/// issue, the oldest whose row command can, and when the next command of any can.
#[derive(Clone, Copy, Debug, Default)]
struct Scan {
    column: Option<(u64, usize, usize, u64)>,
    row: Option<(u64, usize, Command)>,
    earliest: Option<u64>,
    /// Commands that could issue now.
    ready: u32,
}

/// The detailed HBM controller of one chiplet (all its pseudo-channels).
#[derive(Debug)]
pub struct Hbm {
    cfg: HbmConfig,
    t: Cycles,
    /// Whether all the bursts of one interleave granule share channel, bank and row.
    granules_uniform: bool,
    channels: Vec<Channel>,
    requests: Vec<Option<Pending>>,
    free_requests: Vec<u32>,
    read_bytes: u64,
    write_bytes: u64,
    activates: u64,
    latency: Histogram,
    /// Work replayed rather than simulated.
    replayed: Replayed,
}

impl Hbm {
    pub fn new(cfg: HbmConfig) -> Hbm {
        let t = Cycles::of(&cfg.timing);
        let org = cfg.organization;
        let banks = (org.bank_groups * org.banks_per_group) as usize;
        let n = org.channels as usize;
        let channels = (0..n)
            .map(|c| Channel {
                reads: Queue::new(cfg.controller.read_queue as usize, banks),
                writes: Queue::new(cfg.controller.write_queue as usize, banks),
                draining: false,
                banks: vec![Bank::default(); banks],
                group_free: vec![0; org.bank_groups as usize],
                bus_free: 0,
                last_act: None,
                faw: VecDeque::new(),
                read_end: 0,
                write_end: None,
                // Stagger refreshes evenly over the interval.
                next_refresh: t.refi * c as u64 / n as u64,
                decision_pending: false,
                busy: BusyTime::default(),
                bytes: 0,
                hits: 0,
                misses: 0,
                conflicts: 0,
            })
            .collect();
        let granules_uniform = {
            let g = cfg.mapping.interleave_bursts;
            let (a, b) = (cfg.mapping.locate(0), cfg.mapping.locate(g - 1));
            (a.channel, a.bank_group, a.bank, a.row) == (b.channel, b.bank_group, b.bank, b.row)
        };
        Hbm {
            cfg,
            t,
            granules_uniform,
            channels,
            requests: Vec::new(),
            free_requests: Vec::new(),
            read_bytes: 0,
            write_bytes: 0,
            activates: 0,
            latency: Histogram::new(),
            replayed: Replayed::default(),
        }
    }

    fn time(&self, cycle: u64) -> Time {
        Time::from_ps(cycle * self.t.ck)
    }

    fn cycle(&self, time: Time) -> u64 {
        time.as_ps().div_ceil(self.t.ck)
    }

    /// Queue the accesses of a request (runs of bursts to one row); returns the channels touched.
    fn split(&mut self, req: &MemRequest, index: u32) -> Vec<usize> {
        let bb = self.cfg.burst_bytes;
        let first = req.addr / bb;
        let last = (req.addr + req.bytes.max(1) - 1) / bb;
        let step = if self.granules_uniform { self.cfg.mapping.interleave_bursts } else { 1 };
        let mut touched = Vec::new();
        let mut previous: Vec<Option<(u32, u64)>> = vec![None; self.channels.len()];
        let mut accesses = 0;
        let mut b = first;
        while b <= last {
            let run_end = if step > 1 { ((b / step) + 1) * step - 1 } else { b };
            let bursts = (run_end.min(last) - b + 1) as u32;
            let c: Coord = self.cfg.mapping.locate(b);
            let bank = c.bank_group * self.cfg.organization.banks_per_group as u32 + c.bank;
            let ch = c.channel as usize;
            let queue = if req.write { &mut self.channels[ch].writes } else { &mut self.channels[ch].reads };
            let extended =
                previous[ch] == Some((bank, c.row)) && queue.last_mut(bank).map(|a| a.bursts += bursts).is_some();
            if !extended {
                queue.push(Access {
                    request: index,
                    bank,
                    group: c.bank_group,
                    row: c.row,
                    bursts,
                    write: req.write,
                    activated: false,
                    seq: 0,
                });
                previous[ch] = Some((bank, c.row));
                accesses += 1;
                touched.push(ch);
            }
            b = run_end + 1;
        }
        if let Some(p) = self.requests[index as usize].as_mut() {
            p.remaining = accesses;
        }
        touched.sort_unstable();
        touched.dedup();
        touched
    }

    /// Apply the refreshes due by `cycle` on channel `ch`: precharge every
    /// bank, then block the channel for tRFC.
    fn refresh_until(&mut self, ch: usize, cycle: u64) {
        let t = self.t;
        let channel = &mut self.channels[ch];
        while channel.next_refresh <= cycle {
            let mut start = channel.next_refresh;
            for bank in &channel.banks {
                if bank.open.is_some() {
                    start = start.max(bank.ready_pre + t.rp);
                }
            }
            let end = start + t.rfc;
            for bank in &mut channel.banks {
                bank.open = None;
                bank.ready_act = bank.ready_act.max(end);
            }
            channel.next_refresh += t.refi;
        }
    }

    /// The column command of `a`, whose row is open, no earlier than `now`.
    fn column_at(&self, ch: usize, a: &Access, now: u64) -> u64 {
        let t = self.t;
        let channel = &self.channels[ch];
        let bank = &channel.banks[a.bank as usize];
        // A column command issues only when its data will find the bus free.
        let delay = if a.write { t.cwl } else { t.cl };
        let mut column = bank
            .ready_col
            .max(now)
            .max(channel.group_free[a.group as usize])
            .max(channel.bus_free.saturating_sub(delay));
        if a.write {
            // Write data may not start before the bus has turned around from the last read.
            column = column.max((channel.read_end + 1).saturating_sub(t.cwl));
        } else if let Some((end, group)) = channel.write_end {
            column = column.max(end + if group == a.group { t.wtr_l } else { t.wtr_s });
        }
        column
    }

    /// The row command the oldest access of a bank needs: close the open row, or open its own.
    fn row_command(&self, ch: usize, a: &Access, now: u64) -> Command {
        let t = self.t;
        let channel = &self.channels[ch];
        let bank = &channel.banks[a.bank as usize];
        if bank.open.is_some() {
            return Command::Precharge(bank.ready_pre.max(now));
        }
        let mut act = bank.ready_act.max(now);
        if let Some((last, group)) = channel.last_act {
            act = act.max(last + if group == a.group { t.rrd_l } else { t.rrd_s });
        }
        if channel.faw.len() == 4 {
            act = act.max(channel.faw[0] + t.faw);
        }
        Command::Activate(act)
    }

    /// Which queue the channel serves now: writes when draining or no read waits.
    fn serving_writes(&self, ch: usize) -> bool {
        let channel = &self.channels[ch];
        channel.draining || channel.reads.is_empty()
    }

    /// Look at each bank of the served queue: its oldest row hit (a column
    /// command), or, if no queued access hits its open row, its oldest access's
    /// row command (a row that queued accesses still hit is never closed for another).
    fn scan(&self, ch: usize, now: u64) -> Scan {
        let channel = &self.channels[ch];
        let queue = if self.serving_writes(ch) { &channel.writes } else { &channel.reads };
        let mut scan = Scan::default();
        let note = |at: u64, scan: &mut Scan| scan.earliest = Some(scan.earliest.map_or(at, |e: u64| e.min(at)));
        for (b, list) in queue.banks.iter().enumerate() {
            let Some(oldest) = list.front() else { continue };
            let open = channel.banks[b].open;
            let hit = open.and_then(|row| list.iter().position(|a| a.row == row));
            match hit {
                Some(pos) => {
                    let a = &list[pos];
                    let at = self.column_at(ch, a, now);
                    if at <= now {
                        scan.ready += 1;
                        if scan.column.is_none_or(|(seq, ..)| a.seq < seq) {
                            scan.column = Some((a.seq, b, pos, at));
                        }
                    } else {
                        note(at, &mut scan);
                    }
                }
                None => {
                    let command = self.row_command(ch, oldest, now);
                    if command.at() <= now {
                        scan.ready += 1;
                        if scan.row.is_none_or(|(seq, ..)| oldest.seq < seq) {
                            scan.row = Some((oldest.seq, b, command));
                        }
                    } else {
                        note(command.at(), &mut scan);
                    }
                }
            }
        }
        scan
    }

    /// Issue, one per cycle, the command that first-ready first-come scheduling
    /// picks on channel `ch`; then ask to be woken when the next one can issue.
    fn decide(&mut self, ch: usize, now: u64, ctx: &mut Ctx<'_, Msg>) {
        self.refresh_until(ch, now);
        {
            let (high, low) =
                (self.cfg.controller.write_drain_high as usize, self.cfg.controller.write_drain_low as usize);
            let channel = &mut self.channels[ch];
            if channel.writes.len() >= high {
                channel.draining = true;
            } else if channel.writes.len() <= low && !channel.reads.is_empty() {
                channel.draining = false;
            }
            if channel.reads.is_empty() && channel.writes.is_empty() {
                return;
            }
        }
        let writes = self.serving_writes(ch);
        let scan = self.scan(ch, now);
        let chosen = scan
            .column
            .map(|(_, b, pos, at)| (b, Some(pos), Command::Column(at)))
            .or(scan.row.map(|(_, b, c)| (b, None, c)));
        let Some((bank, pos, command)) = chosen else {
            let next = scan.earliest.unwrap_or(now + 1);
            if next >= self.channels[ch].next_refresh {
                self.refresh_until(ch, next);
                return self.decide(ch, now, ctx);
            }
            self.wake(ch, next, ctx);
            return;
        };
        match command {
            Command::Precharge(at) => self.precharge(ch, writes, bank, at),
            Command::Activate(at) => self.activate(ch, writes, bank, at),
            Command::Column(at) => {
                let channel = &mut self.channels[ch];
                let queue = if writes { &mut channel.writes } else { &mut channel.reads };
                let access = queue.take(bank, pos.unwrap_or(0));
                let done = self.column(ch, &access, at);
                self.finish_access(access.request, done, ctx);
            }
        }
        // One command per cycle. Issuing a command only ever delays the
        // others, so the next cycle if another was ready, else the earliest
        // the scan saw, is a safe time to look again.
        let channel = &self.channels[ch];
        if !channel.reads.is_empty() || !channel.writes.is_empty() {
            let at = if scan.ready > 1 { now + 1 } else { scan.earliest.unwrap_or(now + 1).max(now + 1) };
            self.wake(ch, at, ctx);
        }
    }

    fn wake(&mut self, ch: usize, cycle: u64, ctx: &mut Ctx<'_, Msg>) {
        let at = self.time(cycle).max(ctx.now());
        let channel = &mut self.channels[ch];
        if !channel.decision_pending {
            channel.decision_pending = true;
            ctx.send_at(ctx.me(), at, Msg::Wake { token: ch as u64 });
        }
    }

    fn oldest(&mut self, ch: usize, writes: bool, bank: usize) -> &mut Access {
        let channel = &mut self.channels[ch];
        let queue = if writes { &mut channel.writes } else { &mut channel.reads };
        queue.banks[bank].front_mut().expect("a bank with a row command has an access")
    }

    /// Close the open row of `bank` for its oldest access.
    fn precharge(&mut self, ch: usize, writes: bool, bank: usize, at: u64) {
        let t = self.t;
        self.oldest(ch, writes, bank).activated = true;
        let channel = &mut self.channels[ch];
        channel.conflicts += 1;
        let state = &mut channel.banks[bank];
        state.open = None;
        state.ready_act = state.ready_act.max(at + t.rp);
    }

    /// Open the row `bank`'s oldest access needs.
    fn activate(&mut self, ch: usize, writes: bool, bank: usize, at: u64) {
        let t = self.t;
        let access = self.oldest(ch, writes, bank);
        let counted = access.activated;
        access.activated = true;
        let (row, group) = (access.row, access.group);
        let channel = &mut self.channels[ch];
        if !counted {
            channel.misses += 1;
        }
        let state = &mut channel.banks[bank];
        state.open = Some(row);
        state.ready_pre = at + t.ras;
        state.ready_act = at + t.rc;
        state.ready_col = at + t.rcd;
        channel.last_act = Some((at, group));
        channel.faw.push_back(at);
        if channel.faw.len() > 4 {
            channel.faw.pop_front();
        }
        self.activates += 1;
    }

    /// Issue the column commands of `a` from cycle `column`; returns the cycle its data is through.
    fn column(&mut self, ch: usize, a: &Access, column: u64) -> u64 {
        let t = self.t;
        let channel = &mut self.channels[ch];
        if !a.activated {
            channel.hits += 1;
        }
        let bank = &mut channel.banks[a.bank as usize];
        let n = a.bursts as u64;
        let last_column = column + (n - 1) * t.ccd_l;
        let delay = if a.write { t.cwl } else { t.cl };
        let bus_start = (column + delay).max(channel.bus_free);
        let bus_end = bus_start + n * t.ccd_s;
        let data_end = bus_end.max(last_column + delay + t.ccd_s);
        channel.bus_free = bus_end;
        channel.group_free[a.group as usize] = last_column + t.ccd_l;
        bank.ready_col = last_column + t.ccd_l;
        if a.write {
            bank.ready_pre = bank.ready_pre.max(data_end + t.wr);
            channel.write_end = Some((data_end, a.group));
        } else {
            bank.ready_pre = bank.ready_pre.max(last_column + t.rtp);
            channel.read_end = channel.read_end.max(data_end);
        }
        channel.bytes += n * self.cfg.burst_bytes;
        channel.busy.record(Time::from_ps(bus_start * t.ck), Time::from_ps(bus_end * t.ck));
        data_end
    }

    fn finish_access(&mut self, request: u32, done: u64, ctx: &mut Ctx<'_, Msg>) {
        let Some(p) = self.requests[request as usize].as_mut() else { return };
        p.remaining -= 1;
        p.done = p.done.max(done);
        if p.remaining > 0 {
            return;
        }
        let Some(p) = self.requests[request as usize].take() else { return };
        self.free_requests.push(request);
        let at = self.time(p.done).max(ctx.now()) + self.cfg.controller.latency.time();
        if !p.write {
            self.latency.record((at - p.arrival).as_ps());
        }
        ctx.send_at(p.reply_to, at + p.reply_delay, Msg::Done { token: p.token });
    }

    fn arrive(&mut self, req: MemRequest, ctx: &mut Ctx<'_, Msg>) {
        let now = self.cycle(ctx.now());
        let pending = Pending {
            reply_to: req.reply_to,
            token: req.token,
            reply_delay: req.reply_delay,
            arrival: ctx.now(),
            remaining: 0,
            done: now,
            write: req.write,
        };
        let index = match self.free_requests.pop() {
            Some(i) => {
                self.requests[i as usize] = Some(pending);
                i
            }
            None => {
                self.requests.push(Some(pending));
                (self.requests.len() - 1) as u32
            }
        };
        if req.write {
            self.write_bytes += req.bytes;
        } else {
            self.read_bytes += req.bytes;
        }
        for ch in self.split(&req, index) {
            if !self.channels[ch].decision_pending {
                self.decide(ch, now, ctx);
            }
        }
    }
}

impl Component<Msg> for Hbm {
    fn kind(&self) -> &'static str {
        self.cfg.class
    }

    fn handle(&mut self, msg: Msg, ctx: &mut Ctx<'_, Msg>) {
        match msg {
            Msg::Mem(req) => self.arrive(req, ctx),
            Msg::Wake { token } => {
                let ch = token as usize;
                self.channels[ch].decision_pending = false;
                let now = self.cycle(ctx.now());
                self.decide(ch, now, ctx);
            }
            Msg::Replay { records } => records.iter().for_each(|(r, n)| self.replayed.add(r, *n)),
            other => debug_assert!(false, "memory received {other:?}"),
        }
    }

    fn stats(&self, now: Time) -> Stats {
        let busy: u64 = self.channels.iter().map(|c| c.busy.total_until(now).as_ps()).sum();
        let sum = |f: fn(&Channel) -> u64| self.channels.iter().map(f).sum::<u64>();
        // Refreshes follow their schedule whether or not requests come: count
        // those due by now (the model applies them lazily, when a channel next works).
        let now_cycle = now.as_ps() / self.t.ck;
        let n = self.channels.len() as u64;
        let refreshes = (0..n)
            .map(|c| self.t.refi * c / n)
            .map(|first| if now_cycle >= first { (now_cycle - first) / self.t.refi + 1 } else { 0 })
            .sum::<u64>();
        let mut stats = Stats::new()
            .scalar(
                format!("busy.{}", self.cfg.class),
                Unit::Picoseconds,
                "data-bus time moving data, summed over pseudo-channels",
                busy,
            )
            .count(format!("units.{}", self.cfg.class), "pseudo-channels", self.channels.len() as u64)
            .bytes("read_bytes", "bytes read", self.read_bytes)
            .bytes("write_bytes", "bytes written", self.write_bytes)
            .count("actions.read_bits", "bits read", self.read_bytes * 8)
            .count("actions.write_bits", "bits written", self.write_bytes * 8)
            .count("actions.activate", "row activations", self.activates)
            .count("actions.refresh", "all-bank refreshes, per pseudo-channel", refreshes)
            .count("row_hits", "accesses to the open row", sum(|c| c.hits))
            .count("row_misses", "accesses to a closed bank", sum(|c| c.misses))
            .count("row_conflicts", "accesses that closed another row first", sum(|c| c.conflicts))
            .distribution("latency", Unit::Picoseconds, "read latency, arrival to last data", &self.latency);
        for (c, channel) in self.channels.iter().enumerate() {
            stats = stats.bytes(format!("channel{c}.bytes"), "bytes moved on this pseudo-channel", channel.bytes).time(
                format!("channel{c}.busy"),
                "data-bus time of this pseudo-channel",
                channel.busy.total_until(now),
            );
        }
        self.replayed.merge_into(stats, crate::memory::channels::NOT_REPLAYED)
    }
}
