//! A channel-level memory model: addresses interleave over independent
//! channels, each a server with a data rate; requests queue per channel in
//! arrival order; periodic refresh blocks a channel; an unloaded access
//! latency is added to each request.
//!
//! This is the transaction-level model the first end-to-end runs use for HBM
//! and for the host's DRAM. Bank state (row hits and misses, bank conflicts,
//! read/write turnaround) is not modelled here: rows are assumed streamed
//! whole, one activate per page of each channel's share of a request.

use crate::msg::{MemRequest, Msg};
use crate::units::Bandwidth;
use sim_core::{BusyTime, Component, Ctx, Histogram, Rate, Replayed, Stats, Time, Unit};

/// All-bank refresh: every `interval`, a channel is unavailable for `duration`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refresh {
    pub interval: Time,
    pub duration: Time,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ChannelMemoryConfig {
    /// Statistics class, e.g. `"memory.hbm"` or `"cpu.dram"`.
    pub class: &'static str,
    pub channels: u32,
    pub channel_bandwidth: Bandwidth,
    /// Bytes mapped to one channel before the next.
    pub interleave: u64,
    /// Row-buffer size of one channel, for counting activates; rounded up to a power of two.
    pub page_size: u64,
    /// Unloaded access latency, added to every request.
    pub latency: Time,
    pub refresh: Option<Refresh>,
}

#[derive(Debug)]
pub struct ChannelMemory {
    cfg: ChannelMemoryConfig,
    rate: Rate,
    /// Scratch space for splitting a request over channels.
    split: Vec<u64>,
    /// Per channel, the start of the next refresh window it may meet.
    next_refresh: Vec<Time>,
    /// The page size as a shift and mask (it is a power of two).
    page_shift: u32,
    page_mask: u64,
    free_at: Vec<Time>,
    busy: Vec<BusyTime>,
    per_channel: Vec<u64>,
    read_bytes: u64,
    write_bytes: u64,
    activates: u64,
    requests: u64,
    latency: Histogram,
    /// Work replayed rather than simulated.
    replayed: Replayed,
}

/// What a memory does not take from a replay: what it is, and the refreshes
/// its own clock accrues.
pub const NOT_REPLAYED: &[&str] = &["units.", "actions.refresh"];

impl ChannelMemory {
    pub fn new(cfg: ChannelMemoryConfig) -> ChannelMemory {
        let n = cfg.channels as usize;
        ChannelMemory {
            rate: cfg.channel_bandwidth.byte_rate(),
            page_shift: cfg.page_size.next_power_of_two().trailing_zeros(),
            page_mask: cfg.page_size.next_power_of_two() - 1,
            split: vec![0; n],
            next_refresh: (0..n as u64)
                .map(|c| cfg.refresh.map_or(Time::MAX, |r| Time::from_ps(r.interval.as_ps() * c / n as u64)))
                .collect(),
            cfg,
            free_at: vec![Time::ZERO; n],
            busy: vec![BusyTime::default(); n],
            per_channel: vec![0; n],
            read_bytes: 0,
            write_bytes: 0,
            activates: 0,
            requests: 0,
            latency: Histogram::new(),
            replayed: Replayed::default(),
        }
    }

    /// Bytes of `[addr, addr + bytes)` that fall on each channel, in `split`.
    fn split(&self, addr: u64, bytes: u64, split: &mut [u64]) {
        split.iter_mut().for_each(|b| *b = 0);
        let il = self.cfg.interleave;
        let n = self.cfg.channels as u64;
        let end = addr + bytes;
        let mut at = addr;
        // Leading partial granule.
        if !at.is_multiple_of(il) {
            let upto = (at / il + 1) * il;
            let take = upto.min(end) - at;
            split[((at / il) % n) as usize] += take;
            at += take;
        }
        let full = (end - at) / il;
        if full > 0 {
            let (rounds, extra) = (full / n * il, full % n);
            let first = ((at / il) % n) as usize;
            // Channels first, first + 1, ... (wrapping) get one granule more than the rest.
            for (i, c) in (first..split.len()).chain(0..first).enumerate() {
                split[c] += rounds + if (i as u64) < extra { il } else { 0 };
            }
            at += full * il;
        }
        if at < end {
            split[((at / il) % n) as usize] += end - at;
        }
    }

    /// When a transfer of `duration` on `channel`, wanting to start at `start`,
    /// actually starts and ends: it waits out a refresh in progress and pauses
    /// for each refresh it meets. Channels' refreshes are staggered evenly
    /// over the interval. Starts on one channel never decrease (requests queue
    /// in order), so each channel keeps the next refresh window it can meet.
    fn serve(&mut self, channel: usize, start: Time, duration: Time) -> (Time, Time) {
        let Some(refresh) = self.cfg.refresh else {
            return (start, start + duration);
        };
        let (period, rfc) = (refresh.interval, refresh.duration);
        let mut next = self.next_refresh[channel];
        if next + rfc <= start {
            let skipped = (start - next - rfc).as_ps() / period.as_ps() + 1;
            next += Time::from_ps(skipped * period.as_ps());
        }
        let mut begin = start;
        if begin >= next {
            begin = next + rfc;
            next += period;
        }
        let mut end = begin + duration;
        while end > next {
            end += rfc;
            next += period;
        }
        self.next_refresh[channel] = next;
        (begin, end)
    }
}

impl Component<Msg> for ChannelMemory {
    fn kind(&self) -> &'static str {
        self.cfg.class
    }

    fn handle(&mut self, msg: Msg, ctx: &mut Ctx<'_, Msg>) {
        let req = match msg {
            Msg::Mem(req) => req,
            Msg::Replay { records } => return records.iter().for_each(|(r, n)| self.replayed.add(r, *n)),
            other => {
                debug_assert!(false, "memory received {other:?}");
                return;
            }
        };
        let MemRequest { addr, bytes, write, reply_to, token, reply_delay } = req;
        let now = ctx.now();
        let mut split = std::mem::take(&mut self.split);
        self.split(addr, bytes, &mut split);
        let mut done = now;
        for (c, &b) in split.iter().enumerate() {
            if b == 0 {
                continue;
            }
            let want = now.max(self.free_at[c]);
            let (start, end) = self.serve(c, want, self.rate.time_for(b));
            self.free_at[c] = end;
            self.busy[c].record(start, end);
            self.per_channel[c] += b;
            self.activates += (b + self.page_mask) >> self.page_shift;
            done = done.max(end);
        }
        self.split = split;
        if write {
            self.write_bytes += bytes;
        } else {
            self.read_bytes += bytes;
        }
        self.requests += 1;
        let complete = done + self.cfg.latency;
        self.latency.record((complete - now).as_ps());
        ctx.send_at(reply_to, complete + reply_delay, Msg::Done { token });
    }

    fn stats(&self, now: Time) -> Stats {
        let busy: u64 = self.busy.iter().map(|b| b.total_until(now).as_ps()).sum();
        let refreshes = self.cfg.refresh.map_or(0, |r| now.as_ps() / r.interval.as_ps()) * self.cfg.channels as u64;
        let mut stats = Stats::new()
            .scalar(
                format!("busy.{}", self.cfg.class),
                Unit::Picoseconds,
                "channel-time spent moving data, summed over channels",
                busy,
            )
            .count(format!("units.{}", self.cfg.class), "channels", self.cfg.channels.into())
            .count("requests", "requests served", self.requests)
            .bytes("read_bytes", "bytes read", self.read_bytes)
            .bytes("write_bytes", "bytes written", self.write_bytes)
            .count("actions.read_bits", "bits read", self.read_bytes * 8)
            .count("actions.write_bits", "bits written", self.write_bytes * 8)
            .count("actions.activate", "row activations (one per page streamed)", self.activates)
            .count("actions.refresh", "all-bank refreshes, per channel", refreshes)
            .distribution("latency", Unit::Picoseconds, "request latency, arrival to data", &self.latency);
        for (c, (bytes, busy)) in self.per_channel.iter().zip(&self.busy).enumerate() {
            stats = stats.bytes(format!("channel{c}.bytes"), "bytes moved on this channel", *bytes).time(
                format!("channel{c}.busy"),
                "time this channel spent moving data",
                busy.total_until(now),
            );
        }
        self.replayed.merge_into(stats, NOT_REPLAYED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sim_core::{ComponentId, SystemBuilder};

    /// Sends requests at given times and records when each completes.
    struct Requester {
        memory: ComponentId,
        requests: Vec<(Time, u64, u64)>,
        done: Vec<(u64, Time)>,
    }

    impl Component<Msg> for Requester {
        fn kind(&self) -> &'static str {
            "test.requester"
        }
        fn handle(&mut self, msg: Msg, ctx: &mut Ctx<'_, Msg>) {
            match msg {
                Msg::Wake { .. } => {
                    for (i, &(at, addr, bytes)) in self.requests.iter().enumerate() {
                        let req = MemRequest {
                            addr,
                            bytes,
                            write: false,
                            reply_to: ctx.me(),
                            token: i as u64,
                            reply_delay: Time::ZERO,
                        };
                        ctx.send_at(self.memory, at, Msg::Mem(req));
                    }
                }
                Msg::Done { token } => self.done.push((token, ctx.now())),
                _ => {}
            }
        }
    }

    fn config(refresh: Option<Refresh>) -> ChannelMemoryConfig {
        ChannelMemoryConfig {
            class: "memory.test",
            channels: 4,
            channel_bandwidth: Bandwidth::from_bytes_per_s(1_000_000_000), // 1 B/ns
            interleave: 256,
            page_size: 1024,
            latency: Time::from_ns(30),
            refresh,
        }
    }

    fn run(cfg: ChannelMemoryConfig, requests: Vec<(Time, u64, u64)>) -> Vec<(u64, Time)> {
        let mut b = SystemBuilder::new();
        let memory = b.add("mem", ChannelMemory::new(cfg));
        let r = b.add("req", Requester { memory, requests, done: vec![] });
        b.post(Time::ZERO, r, Msg::Wake { token: 0 });
        let mut sys = b.build().unwrap();
        sys.run_to_end();
        let mut done = sys.get::<Requester>(r).unwrap().done.clone();
        done.sort();
        done
    }

    #[test]
    fn interleaving_spreads_bytes_over_channels() {
        let m = ChannelMemory::new(config(None));
        let mut split = [0u64; 4];
        m.split(100, 1000, &mut split); // 100..1100
        assert_eq!(split.iter().sum::<u64>(), 1000);
        // 100..256 and 1024..1100 on channel 0; the three granules between on 1, 2, 3.
        assert_eq!(split, [232, 256, 256, 256]);
        m.split(0, 4096, &mut split);
        assert_eq!(split, [1024; 4]);
    }

    #[test]
    fn unloaded_latency_is_transfer_plus_access() {
        // 1 KiB over 4 channels = 256 ns of transfer on each, then 30 ns.
        let done = run(config(None), vec![(Time::ZERO, 0, 1024)]);
        assert_eq!(done, [(0, Time::from_ns(286))]);
    }

    #[test]
    fn requests_on_one_channel_queue() {
        let done = run(config(None), vec![(Time::ZERO, 0, 256), (Time::ZERO, 1024, 256)]);
        assert_eq!(done, [(0, Time::from_ns(286)), (1, Time::from_ns(542))]);
    }

    #[test]
    fn refresh_pauses_a_channel_and_is_staggered() {
        let refresh = Refresh { interval: Time::from_ns(1000), duration: Time::from_ns(100) };
        // Channel 0 refreshes over [0, 100): a request at 0 starts at 100.
        let done = run(config(Some(refresh)), vec![(Time::ZERO, 0, 256)]);
        assert_eq!(done, [(0, Time::from_ns(386))]);
        // 8 KiB over 4 channels from 100 ns: 2,048 ns on each. Channels 0, 2
        // and 3 meet two refresh windows (end at 2,348); channel 1, offset
        // 250, meets those at 250, 1,250 and 2,250 and ends last, at 2,448.
        let done = run(config(Some(refresh)), vec![(Time::from_ns(100), 0, 8192)]);
        assert_eq!(done[0].1, Time::from_ns(2448 + 30));
    }
}
