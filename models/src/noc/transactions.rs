//! A chiplet's network at transaction level, for end-to-end runs: each
//! message reserves the channels along its route (a node's injection port,
//! the router-to-router links, the destination's ejection port) for as many
//! cycles as it has flits, in the order the messages are sent.
//!
//! A message of `F` flits whose head is ready at cycle `t` enters each
//! channel when its head gets there (`router_cycles` after reaching the
//! router, `link_cycles` per link) or when the channel frees up, whichever is
//! later, and holds the channel `F` cycles: at zero load this is the
//! cycle-level [`super::Network`]'s `(H + 1)·router + H·link + (F − 1)`
//! exactly. It models serialisation and link contention; it ignores buffer
//! back-pressure (a message waiting for one channel does not hold the ones
//! behind it), which is why the cycle-level network exists.
//!
//! Components talk through it by sending it [`Msg::Noc`]. Memory and
//! scratchpad transactions are proxied: the request crosses with its data
//! (a write) or as one flit (a read), reaches its target when its head
//! arrives, and the target's reply comes back through the network, carrying
//! the read data, and cannot complete before the request's tail arrived.
//! Data are assumed to stream: a read's data leave the target as it produces
//! them, so they start back up to `F − 1` cycles before the target is done.

use super::topology::{Port, Topology, TopologyKind};
use crate::msg::{MemRequest, Msg};
use sim_core::{Clock, Component, ComponentId, Ctx, Cycles, Replayed, Stats, Time, Unit};
use std::collections::BTreeMap;

/// A component on the network, and the routers it attaches to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attachment {
    pub component: ComponentId,
    /// One router, or the routers of its ports: address `a` goes through
    /// port `(a / granule) mod ports`.
    pub routers: Vec<u32>,
    pub granule: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct TransactionNetworkConfig {
    pub topology: Topology,
    pub router_cycles: u32,
    pub link_cycles: u32,
    /// Bytes per flit: what a link moves per cycle.
    pub flit_bytes: u64,
    pub clock: Clock,
    pub attachments: Vec<Attachment>,
}

/// A channel's reservations.
#[derive(Clone, Copy, Debug, Default)]
struct Channel {
    /// The first cycle not yet reserved.
    free: u64,
    busy_cycles: u64,
    bytes: u64,
}

/// A proxied transaction waiting for its target's reply.
#[derive(Clone, Debug)]
struct Pending {
    reply_to: ComponentId,
    token: u64,
    reply_delay: Time,
    /// The requester's node.
    near: u32,
    /// The parts the target's ports serve: each port's node, its bytes, and
    /// when its part of the request's head arrived.
    parts: Vec<Part>,
    write: bool,
    /// When the request's last tail reached the target.
    tail: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Part {
    node: u32,
    /// The part's bytes; the reply carries them back if the transaction reads.
    bytes: u64,
    head: u64,
}

/// What one link carried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinkLoad {
    pub from: u32,
    pub to: u32,
    pub busy_cycles: u64,
    pub bytes: u64,
}

/// The transaction-level network component.
#[derive(Debug)]
pub struct TransactionNetwork {
    cfg: TransactionNetworkConfig,
    attached: BTreeMap<ComponentId, usize>,
    /// Injection ports by router, then ejection ports, then the links.
    channels: Vec<Channel>,
    /// Per router: its outgoing links as (neighbour, channel index).
    links: Vec<Vec<(u32, usize)>>,
    /// The links of the route from node `s` to node `d`, found when first
    /// needed: `route_links[start..start + len]` for `routes[s·nodes + d] = Some((start, len))`.
    routes: Vec<Option<(u32, u32)>>,
    route_links: Vec<u32>,
    pending: Vec<Option<Pending>>,
    free_slots: Vec<usize>,
    spare_parts: Vec<Vec<Part>>,
    messages: u64,
    bit_hops: u64,
    /// Work replayed rather than simulated.
    replayed: Replayed,
}

impl TransactionNetwork {
    pub fn new(cfg: TransactionNetworkConfig) -> TransactionNetwork {
        let t = cfg.topology;
        let routers = t.routers() as usize;
        let ports = match t.kind {
            TopologyKind::Crossbar => t.nodes() as usize,
            _ => routers,
        };
        let mut next = 2 * ports;
        let links: Vec<Vec<(u32, usize)>> = (0..routers as u32)
            .map(|r| {
                let out: Vec<(u32, usize)> = match t.kind {
                    TopologyKind::Crossbar => Vec::new(),
                    _ => t.neighbours(r).into_iter().enumerate().map(|(k, n)| (n, next + k)).collect(),
                };
                next += out.len();
                out
            })
            .collect();
        let attached = cfg.attachments.iter().enumerate().map(|(i, a)| (a.component, i)).collect();
        let pairs = (t.nodes() as usize).pow(2);
        TransactionNetwork {
            routes: vec![None; pairs],
            route_links: Vec::new(),
            channels: vec![Channel::default(); next],
            links,
            attached,
            pending: Vec::new(),
            free_slots: Vec::new(),
            spare_parts: Vec::new(),
            messages: 0,
            bit_hops: 0,
            replayed: Replayed::default(),
            cfg,
        }
    }

    fn attachment(&self, component: ComponentId) -> &Attachment {
        let i = self.attached.get(&component).copied();
        debug_assert!(i.is_some(), "component {component:?} is not attached to the network");
        &self.cfg.attachments[i.unwrap_or(0)]
    }

    /// The nodes (routers, or crossbar ports) through which `component`
    /// moves `bytes` from `address` on, and how many bytes go through each:
    /// consecutive granules go to consecutive ports, so a long transaction
    /// spreads over all of them.
    fn spread(&self, component: ComponentId, address: u64, bytes: u64, out: &mut Vec<Part>) {
        let a = self.attachment(component);
        let (ports, g) = (a.routers.len().max(1) as u64, a.granule.max(1));
        out.clear();
        out.extend(a.routers.iter().map(|&node| Part { node, bytes: 0, head: 0 }));
        if ports == 1 {
            out[0].bytes = bytes;
            return;
        }
        let end = address + bytes.max(1);
        let mut at = address;
        let mut take = |at: &mut u64| {
            let next = end.min((*at / g + 1) * g);
            out[((*at / g) % ports) as usize].bytes += next - *at;
            *at = next;
        };
        // A partial first granule, whole rounds over every port, then the rest.
        take(&mut at);
        let rounds = (end - at) / (g * ports);
        at += rounds * g * ports;
        while at < end {
            take(&mut at);
        }
        for part in out.iter_mut() {
            part.bytes += rounds * g;
        }
        out.retain(|p| p.bytes > 0);
    }

    /// The node of a component with one port.
    fn node_of(&self, component: ComponentId) -> u32 {
        self.attachment(component).routers.first().copied().unwrap_or(0)
    }

    fn flits(&self, bytes: u64) -> u64 {
        bytes.div_ceil(self.cfg.flit_bytes.max(1)).max(1)
    }

    fn occupy(&mut self, channel: usize, ready: u64, flits: u64, bytes: u64) -> u64 {
        let c = &mut self.channels[channel];
        let start = ready.max(c.free);
        c.free = start + flits;
        c.busy_cycles += flits;
        c.bytes += bytes;
        start
    }

    /// Reserve the route from node `src` to node `dst` for `bytes` whose head
    /// is ready at cycle `ready`: when the head reaches the destination, and
    /// when the tail is delivered. A control message (no data: a read
    /// request, an acknowledgement, a signal) is one flit and reserves
    /// nothing: it takes the zero-load latency, as its share of any channel
    /// is small beside the data's.
    fn reserve(&mut self, src: u32, dst: u32, bytes: u64, ready: u64) -> (u64, u64) {
        let flits = self.flits(bytes);
        let (p, l) = (self.cfg.router_cycles as u64, self.cfg.link_cycles as u64);
        let t = self.cfg.topology;
        self.messages += 1;
        let (from, to) = self.route(src, dst);
        if bytes == 0 {
            let hops = (to - from) as u64;
            let head = ready + (hops + 1) * p + hops * l;
            return (head, head);
        }
        let ejection = match t.kind {
            TopologyKind::Crossbar => t.nodes() as usize,
            _ => t.routers() as usize,
        } + dst as usize;
        let mut head = self.occupy(src as usize, ready, flits, bytes);
        for k in from..to {
            let link = self.route_links[k] as usize;
            head = self.occupy(link, head + p, flits, bytes) + l;
        }
        // A crossbar has no router-to-router links, but each message crosses
        // its wires once; those wires span the die, so they cost energy too.
        let crossings = if t.kind == TopologyKind::Crossbar { 1 } else { (to - from) as u64 };
        self.bit_hops += bytes * 8 * crossings;
        let head = self.occupy(ejection, head + p, flits, bytes);
        (head, head + flits - 1)
    }

    /// The range of `route_links` holding the route from `src` to `dst`.
    fn route(&mut self, src: u32, dst: u32) -> (usize, usize) {
        let t = self.cfg.topology;
        let pair = (src * t.nodes() + dst) as usize;
        if let Some((start, len)) = self.routes[pair] {
            return (start as usize, (start + len) as usize);
        }
        let start = self.route_links.len();
        let mut at = src;
        while t.kind != TopologyKind::Crossbar
            && let Port::To(next) = t.route(at, dst)
        {
            let link = self.links[at as usize].iter().find(|&&(n, _)| n == next).map(|&(_, c)| c);
            self.route_links.push(link.expect("routes follow links") as u32);
            at = next;
        }
        self.routes[pair] = Some((start as u32, (self.route_links.len() - start) as u32));
        (start, self.route_links.len())
    }

    fn time(&self, cycle: u64) -> Time {
        self.cfg.clock.duration(Cycles(cycle))
    }

    fn park(&mut self, p: Pending) -> u64 {
        match self.free_slots.pop() {
            Some(slot) => {
                self.pending[slot] = Some(p);
                slot as u64
            }
            None => {
                self.pending.push(Some(p));
                (self.pending.len() - 1) as u64
            }
        }
    }

    /// A message from `from` to `to` enters the network now.
    fn carry(&mut self, from: ComponentId, to: ComponentId, msg: Msg, ctx: &mut Ctx<'_, Msg>) {
        let now = self.cfg.clock.cycles_covering(ctx.now()).0;
        let near = self.node_of(from);
        // The transactions the network proxies: where, how many bytes, and which way the data go.
        let proxied = match &msg {
            Msg::Mem(MemRequest { addr, bytes, write, .. }) => Some((*addr, *bytes, *write)),
            Msg::SpadAccess { bytes, write, .. } => Some((0, *bytes, *write)),
            _ => None,
        };
        let Some((address, bytes, write)) = proxied else {
            let far = self.node_of(to);
            let (_, tail) = self.reserve(near, far, 0, now);
            ctx.send_at(to, self.time(tail), msg);
            return;
        };
        let mut parts = self.spare_parts.pop().unwrap_or_default();
        self.spread(to, address, bytes, &mut parts);
        let (mut head, mut tail) = (now, now);
        for part in parts.iter_mut() {
            let (h, t) = self.reserve(near, part.node, if write { part.bytes } else { 0 }, now);
            part.head = h;
            (head, tail) = (head.max(h), tail.max(t));
        }
        let me = ctx.me();
        let mut pending = Pending { reply_to: me, token: 0, reply_delay: Time::ZERO, near, parts, write, tail };
        let msg = match msg {
            Msg::Mem(mut req) => {
                (pending.reply_to, pending.token, pending.reply_delay) = (req.reply_to, req.token, req.reply_delay);
                req.token = self.park(pending);
                (req.reply_to, req.reply_delay) = (me, Time::ZERO);
                Msg::Mem(req)
            }
            Msg::SpadAccess { bytes, write, reply_to, token, reply_delay } => {
                (pending.reply_to, pending.token, pending.reply_delay) = (reply_to, token, reply_delay);
                let token = self.park(pending);
                Msg::SpadAccess { bytes, write, reply_to: me, token, reply_delay: Time::ZERO }
            }
            other => other,
        };
        ctx.send_at(to, self.time(head), msg);
    }

    /// The target of a proxied transaction replied: carry the reply back.
    fn reply(&mut self, slot: u64, ctx: &mut Ctx<'_, Msg>) {
        let Some(p) = self.pending.get_mut(slot as usize).and_then(Option::take) else {
            debug_assert!(false, "a reply to no pending transaction");
            return;
        };
        self.free_slots.push(slot as usize);
        let done = self.cfg.clock.cycles_covering(ctx.now()).0.max(p.tail);
        let mut tail = done;
        for part in &p.parts {
            let back = if p.write { 0 } else { part.bytes };
            let start = part.head.max(done.saturating_sub(self.flits(back) - 1));
            tail = tail.max(self.reserve(part.node, p.near, back, start).1);
        }
        self.spare_parts.push(p.parts);
        ctx.send_at(p.reply_to, self.time(tail) + p.reply_delay, Msg::Done { token: p.token });
    }

    /// The channels' loads, messages and bit-hops, replayed work included.
    fn totals(&self) -> (Vec<Channel>, u64, u64) {
        let (mut channels, mut messages, mut bit_hops) = (self.channels.clone(), self.messages, self.bit_hops);
        for (name, v) in self.replayed.scalar_sums() {
            {
                match name {
                    "messages" => messages += v,
                    "actions.noc_bits" => bit_hops += v,
                    name => {
                        let Some((index, field)) = name.strip_prefix("channel").and_then(|r| r.split_once('.')) else {
                            continue;
                        };
                        let Some(c) = index.parse::<usize>().ok().and_then(|i| channels.get_mut(i)) else { continue };
                        match field {
                            "busy_cycles" => c.busy_cycles += v,
                            "bytes" => c.bytes += v,
                            _ => {}
                        }
                    }
                }
            }
        }
        (channels, messages, bit_hops)
    }

    /// What each router-to-router link carried, links in router order.
    pub fn link_loads(&self) -> Vec<LinkLoad> {
        Self::loads_of(&self.links, &self.totals().0)
    }

    fn loads_of(links: &[Vec<(u32, usize)>], channels: &[Channel]) -> Vec<LinkLoad> {
        let mut out = Vec::new();
        for (r, links) in links.iter().enumerate() {
            for &(to, c) in links {
                let ch = channels[c];
                out.push(LinkLoad { from: r as u32, to, busy_cycles: ch.busy_cycles, bytes: ch.bytes });
            }
        }
        out
    }
}

impl Component<Msg> for TransactionNetwork {
    fn kind(&self) -> &'static str {
        "noc.network"
    }

    fn handle(&mut self, msg: Msg, ctx: &mut Ctx<'_, Msg>) {
        match msg {
            Msg::Noc { from, to, msg } => self.carry(from, to, *msg, ctx),
            Msg::Done { token } => self.reply(token, ctx),
            Msg::Replay { records } => records.iter().for_each(|(r, n)| self.replayed.add(r, *n)),
            other => debug_assert!(false, "network received {other:?}"),
        }
    }

    fn stats(&self, _now: Time) -> Stats {
        let (channels, messages, bit_hops) = self.totals();
        let loads = Self::loads_of(&self.links, &channels);
        let ports = channels.len() - loads.len();
        let port_busy: u64 = channels[..ports].iter().map(|c| c.busy_cycles).sum();
        let link_busy: u64 = loads.iter().map(|l| l.busy_cycles).sum();
        let busiest = loads.iter().max_by_key(|l| (l.busy_cycles, std::cmp::Reverse((l.from, l.to))));
        let ps = |cycles: u64| self.time(cycles).as_ps();
        let mut s = Stats::new()
            .scalar(
                "busy.noc.link",
                Unit::Picoseconds,
                "time links spent moving flits, summed over links",
                ps(link_busy),
            )
            .count("units.noc.link", "router-to-router links, each direction counted", loads.len() as u64)
            .scalar(
                "busy.noc.port",
                Unit::Picoseconds,
                "time injection and ejection ports spent moving flits, summed",
                ps(port_busy),
            )
            .count("units.noc.port", "injection and ejection ports", ports as u64)
            .count("messages", "messages carried, replies included", messages)
            .bytes("bytes", "bytes delivered", channels[ports / 2..ports].iter().map(|c| c.bytes).sum())
            .count("actions.noc_bits", "bits times links crossed (a crossbar counts one crossing)", bit_hops);
        // Every channel's load, injection ports first, then ejection ports, then the links in router order.
        for (i, c) in channels.iter().enumerate() {
            s = s
                .scalar(
                    format!("channel{i}.busy_cycles"),
                    Unit::Cycles,
                    "cycles the channel moved flits",
                    c.busy_cycles,
                )
                .bytes(format!("channel{i}.bytes"), "bytes the channel carried", c.bytes);
        }
        if let Some(b) = busiest {
            s = s
                .scalar(
                    "busiest_link.busy",
                    Unit::Picoseconds,
                    "time the busiest link spent moving flits",
                    ps(b.busy_cycles),
                )
                .bytes("busiest_link.bytes", "bytes the busiest link carried", b.bytes)
                .count("busiest_link.from", "router the busiest link leaves", b.from.into())
                .count("busiest_link.to", "router the busiest link enters", b.to.into());
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sim_core::SystemBuilder;

    /// What an endpoint sends: a signal, or a read or write of `bytes` under `token`.
    #[derive(Clone, Copy, Debug)]
    enum Send {
        Signal(u8),
        Read(u64, u64),
        Write(u64, u64),
    }

    /// Sends scripted messages through the network and records what reaches it.
    #[derive(Debug)]
    struct Endpoint {
        network: ComponentId,
        sends: Vec<(ComponentId, Send)>,
        arrivals: Vec<(Time, u64)>,
    }

    impl Component<Msg> for Endpoint {
        fn kind(&self) -> &'static str {
            "test.endpoint"
        }
        fn handle(&mut self, msg: Msg, ctx: &mut Ctx<'_, Msg>) {
            match msg {
                Msg::Wake { token } => {
                    let (to, send) = self.sends[token as usize];
                    let mem = |bytes, write, token| {
                        let reply_to = ctx.me();
                        Msg::Mem(MemRequest { addr: 0, bytes, write, reply_to, token, reply_delay: Time::ZERO })
                    };
                    let msg = match send {
                        Send::Signal(sem) => Msg::Signal { sem },
                        Send::Read(bytes, token) => mem(bytes, false, token),
                        Send::Write(bytes, token) => mem(bytes, true, token),
                    };
                    ctx.send(self.network, Time::ZERO, Msg::Noc { from: ctx.me(), to, msg: Box::new(msg) });
                }
                Msg::Done { token } => self.arrivals.push((ctx.now(), token)),
                Msg::Signal { sem } => self.arrivals.push((ctx.now(), sem.into())),
                // A memory that answers at once.
                Msg::Mem(req) => {
                    self.arrivals.push((ctx.now(), req.token));
                    ctx.send(req.reply_to, Time::ZERO, Msg::Done { token: req.token });
                }
                _ => {}
            }
        }
    }

    /// A 4x4 mesh at 1 GHz with 64-byte flits and endpoints at routers 0, 1 and 3;
    /// each sends its scripted messages at time zero. The arrivals at each endpoint, in ns.
    fn run(scripts: [Vec<(usize, Send)>; 3]) -> Vec<Vec<(u64, u64)>> {
        let mut b: SystemBuilder<Msg> = SystemBuilder::new();
        let network = b.reserve("network");
        let ids: Vec<ComponentId> = (0..3).map(|i| b.reserve(format!("endpoint{i}"))).collect();
        let attachments = ids
            .iter()
            .zip([0, 1, 3])
            .map(|(&component, router)| Attachment { component, routers: vec![router], granule: 64 })
            .collect();
        let cfg = TransactionNetworkConfig {
            topology: Topology { kind: TopologyKind::Mesh, columns: 4, rows: 4 },
            router_cycles: 2,
            link_cycles: 1,
            flit_bytes: 64,
            clock: Clock::new(1_000_000_000).expect("nonzero"),
            attachments,
        };
        b.place(network, TransactionNetwork::new(cfg)).expect("placed once");
        for (i, script) in scripts.into_iter().enumerate() {
            let sends: Vec<(ComponentId, Send)> = script.into_iter().map(|(to, m)| (ids[to], m)).collect();
            for token in 0..sends.len() as u64 {
                b.post(Time::ZERO, ids[i], Msg::Wake { token });
            }
            b.place(ids[i], Endpoint { network, sends, arrivals: Vec::new() }).expect("placed once");
        }
        let mut system = b.build().expect("complete");
        system.run_to_end();
        ids.iter()
            .map(|&id| {
                let e = system.get::<Endpoint>(id).expect("an endpoint");
                e.arrivals.iter().map(|&(t, token)| (t.as_ps() / 1000, token)).collect()
            })
            .collect()
    }

    #[test]
    fn a_long_transaction_spreads_over_the_ports() {
        let mut b: SystemBuilder<Msg> = SystemBuilder::new();
        let memory = b.reserve("memory");
        let cfg = TransactionNetworkConfig {
            topology: Topology { kind: TopologyKind::Mesh, columns: 4, rows: 1 },
            router_cycles: 1,
            link_cycles: 1,
            flit_bytes: 16,
            clock: Clock::new(1_000_000_000).expect("nonzero"),
            attachments: vec![Attachment { component: memory, routers: vec![0, 1, 2, 3], granule: 64 }],
        };
        let net = TransactionNetwork::new(cfg);
        // 32 bytes of granule 0, granules 1 to 8 whole (two rounds), 16 bytes of granule 9.
        let mut parts = Vec::new();
        let shares = |parts: &Vec<Part>| parts.iter().map(|p| (p.node, p.bytes)).collect::<Vec<_>>();
        net.spread(memory, 32, 32 + 8 * 64 + 16, &mut parts);
        assert_eq!(shares(&parts), vec![(0, 32 + 128), (1, 128 + 16), (2, 128), (3, 128)]);
        net.spread(memory, 64 * 6, 10, &mut parts);
        assert_eq!(shares(&parts), vec![(2, 10)]);
    }

    #[test]
    fn a_lone_message_takes_the_zero_load_latency() {
        // Router 0 to router 3: 3 links, 4 routers of 2 cycles: 11 cycles for one flit.
        let got = run([vec![(2, Send::Signal(7))], vec![], vec![]]);
        assert_eq!(got[2], vec![(11, 7)]);
    }

    #[test]
    fn a_read_crosses_as_one_flit_and_its_data_stream_back() {
        let got = run([vec![(2, Send::Read(640, 5))], vec![], vec![]]);
        // The request's head reaches the memory at 11; the 10 flits of data take 11 + 9 back.
        assert_eq!(got[2].len(), 1);
        assert_eq!(got[2][0].0, 11);
        assert_eq!(got[0], vec![(11 + 11 + 9, 5)]);
    }

    #[test]
    fn messages_sharing_a_link_queue_behind_each_other() {
        // Both writes cross links 1 -> 2 -> 3 and the ejection port at 3.
        let got = run([vec![(2, Send::Write(640, 1))], vec![(2, Send::Write(640, 2))], vec![]]);
        // Router 0's write goes first: its tail reaches router 3 at 11 + 9 = 20,
        // and its one-flit acknowledgement is back at 20 + 11.
        assert_eq!(got[0], vec![(31, 1)]);
        // Router 1's write would have its tail there at 8 + 9 = 17 alone; it
        // follows the first through the ejection port, tail at 30, and is
        // acknowledged 8 cycles later.
        assert_eq!(got[1], vec![(38, 2)]);
    }
}
