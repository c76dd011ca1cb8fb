//! A one-direction link: chunks queue in arrival order, cross at the link's
//! data rate, and reach the next hop after its latency (store and forward per
//! chunk, so a transfer of many chunks pipelines across hops).

use crate::msg::Msg;
use crate::units::Bandwidth;
use sim_core::{BusyTime, Component, Ctx, Rate, Stats, Time, Unit};

#[derive(Clone, Debug, PartialEq)]
pub struct LinkConfig {
    /// Statistics class, e.g. `"link.pcie"`.
    pub class: &'static str,
    pub bandwidth: Bandwidth,
    pub latency: Time,
}

#[derive(Debug)]
pub struct Link {
    cfg: LinkConfig,
    rate: Rate,
    free_at: Time,
    busy: BusyTime,
    bytes: u64,
    chunks: u64,
}

impl Link {
    pub fn new(cfg: LinkConfig) -> Link {
        Link {
            rate: cfg.bandwidth.byte_rate(),
            cfg,
            free_at: Time::ZERO,
            busy: BusyTime::default(),
            bytes: 0,
            chunks: 0,
        }
    }

    pub fn bandwidth(&self) -> Bandwidth {
        self.cfg.bandwidth
    }
}

impl Component<Msg> for Link {
    fn kind(&self) -> &'static str {
        self.cfg.class
    }

    fn handle(&mut self, msg: Msg, ctx: &mut Ctx<'_, Msg>) {
        let Msg::Chunk(mut chunk) = msg else {
            debug_assert!(false, "link received {msg:?}");
            return;
        };
        let start = ctx.now().max(self.free_at);
        let end = start + self.rate.time_for(chunk.bytes);
        self.free_at = end;
        self.busy.record(start, end);
        self.bytes += chunk.bytes;
        self.chunks += 1;
        let arrive = end + self.cfg.latency;
        chunk.hop += 1;
        match chunk.route.links.get(chunk.hop as usize) {
            Some(&next) => ctx.send_at(next, arrive, Msg::Chunk(chunk)),
            None => ctx.send_at(chunk.route.dest, arrive, Msg::Arrived { tag: chunk.tag, bytes: chunk.bytes }),
        }
    }

    fn stats(&self, now: Time) -> Stats {
        Stats::new()
            .scalar(
                format!("busy.{}", self.cfg.class),
                Unit::Picoseconds,
                "time spent moving data",
                self.busy.total_until(now).as_ps(),
            )
            .count(format!("units.{}", self.cfg.class), "links", 1)
            .bytes("bytes", "bytes carried", self.bytes)
            .count("chunks", "chunks carried", self.chunks)
            .count("actions.bits", "bits carried", self.bytes * 8)
    }
}
