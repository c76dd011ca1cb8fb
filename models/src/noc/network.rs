//! A cycle-stepped on-chip network in the manner of BookSim: input-buffered
//! routers with virtual channels and credit-based flow control, wormhole
//! switching, a router pipeline of `router_cycles`, links of `link_cycles`,
//! one flit per link per cycle (die-to-die links may be slower and longer).
//!
//! The whole network is one component and one event advances it one cycle:
//! a router's state changes every cycle under load, so per-router events
//! would cost more than they save.
//!
//! Per cycle: flits and credits in flight arrive; new packets are created and
//! each node injects at most one flit; head flits at the front of a virtual
//! channel compute their route and claim a virtual channel downstream that
//! no other packet holds (it may still buffer the tail of the packet before;
//! on a ring, in the upper class once past the dateline, which keeps the
//! ring free of deadlock); each output grants, round robin, one flit that has
//! spent the pipeline's cycles in its router and has a credit downstream,
//! each input sending at most one flit; granted flits cross their link and
//! their credits travel back.
//!
//! A packet of `F` flits crossing `H` links (so `H + 1` routers, ejection
//! included) at zero load takes `(H + 1)·router + H·link + (F − 1)` cycles
//! from the injection of its head to the ejection of its tail: each router
//! holds the head `router` cycles, each link `link` cycles, and the other
//! flits follow one per cycle.

use super::topology::{Port, Topology, TopologyKind};
use crate::msg::Msg;
use sim_core::{Clock, Component, Ctx, Cycles, Histogram, Stats, Time, Unit};
use std::collections::VecDeque;

/// The network's parameters, in cycles of its clock.
#[derive(Clone, Debug, PartialEq)]
pub struct NetworkConfig {
    pub topology: Topology,
    pub virtual_channels: u32,
    /// Flits each virtual channel's input buffer holds.
    pub buffer_flits: u32,
    pub router_cycles: u32,
    pub link_cycles: u32,
    /// Chiplets joined into one mesh: links between them are die-to-die links.
    pub die_to_die: Option<DieToDie>,
    pub clock: Clock,
}

impl NetworkConfig {
    /// The latency in cycles of the link from router `from` to its neighbour
    /// `to`, and the thousandths of a cycle between its flits.
    pub fn link_timing(&self, from: u32, to: u32) -> (u64, u64) {
        let t = self.topology;
        match self.die_to_die {
            Some(d) if t.tile(from, d.tile_columns, d.tile_rows) != t.tile(to, d.tile_columns, d.tile_rows) => {
                let across_columns = t.tile(from, d.tile_columns, 1).0 != t.tile(to, d.tile_columns, 1).0;
                let gap = if across_columns { d.millicycles_per_flit_x } else { d.millicycles_per_flit_y };
                (d.latency_cycles.max(1) as u64, gap.max(1000))
            }
            _ => (self.link_cycles.max(1) as u64, 1000),
        }
    }

    /// Cycles from the injection of a lone packet's head at node `src` to the
    /// ejection of its tail at `dst`: each router's pipeline and each link's
    /// latency for the head, and the slowest link's pace for the other flits.
    pub fn zero_load_latency(&self, src: u32, dst: u32, flits: u32) -> u64 {
        let t = self.topology;
        let p = self.router_cycles as u64;
        let (mut head, mut gap, mut at) = (p, 1000, t.router_of(src));
        while t.kind != TopologyKind::Crossbar
            && let Port::To(next) = t.route(at, dst)
        {
            let (latency, millicycles) = self.link_timing(at, next);
            head += latency + p;
            gap = gap.max(millicycles);
            at = next;
        }
        head + (flits.max(1) as u64 - 1) * gap.div_ceil(1000)
    }
}

/// The die-to-die links of a mesh joined from chiplets' meshes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DieToDie {
    /// Routers per chiplet in each direction.
    pub tile_columns: u32,
    pub tile_rows: u32,
    pub latency_cycles: u32,
    /// Thousandths of a cycle between flits on one link (1000: one flit per
    /// cycle), on the links that cross from one column of chiplets to the
    /// next, and from one row to the next.
    pub millicycles_per_flit_x: u64,
    pub millicycles_per_flit_y: u64,
}

/// What to measure, as BookSim does: packets created during the measurement
/// window, after a warm-up, each followed to its ejection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// Cycles before measuring, to reach steady state.
    pub warmup: u64,
    /// Cycles whose packets are measured.
    pub measure: u64,
    /// The cycle at which to give up waiting for the measured packets: the
    /// network is saturated.
    pub limit: u64,
}

/// Where packets come from: each cycle, each node may create one.
pub trait Traffic: std::fmt::Debug {
    /// A packet created at `node` in `cycle`: its destination node and its length in flits.
    fn create(&mut self, cycle: u64, node: u32) -> Option<(u32, u32)>;
}

#[derive(Clone, Copy, Debug)]
struct Flit {
    packet: u32,
    head: bool,
    tail: bool,
    dest: u32,
    /// The cycle it entered its current router.
    arrived: u64,
    /// Past the ring's dateline: uses the upper virtual-channel class.
    upper: bool,
}

#[derive(Clone, Copy, Debug)]
struct Packet {
    created: u64,
    injected: u64,
    dest: u32,
    flits: u32,
    measured: bool,
}

#[derive(Clone, Debug, Default)]
struct InputVc {
    buffer: VecDeque<Flit>,
    /// The output and downstream virtual channel held by the packet at the front.
    route: Option<(usize, usize)>,
}

/// An output of a router: ejection to its node, or a link to another router.
#[derive(Clone, Debug)]
struct Output {
    /// The router and input port the link leads to; `None` for ejection.
    to: Option<(usize, usize)>,
    latency: u64,
    /// Thousandths of a cycle between flits, and when the link may next send.
    millicycles_per_flit: u64,
    next_free_millicycle: u64,
    /// Crossing the link moves a ring packet to the upper virtual-channel class.
    dateline: bool,
    /// Per downstream virtual channel: free buffer slots, and whether a packet holds it.
    credits: Vec<u32>,
    held: Vec<bool>,
    /// Round-robin pointer over the router's (input, virtual channel) pairs.
    next: usize,
    flits: u64,
}

#[derive(Clone, Debug)]
struct Router {
    inputs: Vec<Vec<InputVc>>,
    /// For each input, the router and output feeding it; `None` for a node's injection.
    feeders: Vec<Option<(usize, usize)>>,
    outputs: Vec<Output>,
    /// Flits buffered in the router, to skip idle routers.
    buffered: u32,
}

/// Something due in a later cycle.
#[derive(Clone, Copy, Debug)]
enum Due {
    Flit { router: usize, input: usize, vc: usize, flit: Flit },
    Credit { router: usize, output: usize, vc: usize },
}

/// What a run of the network measured.
#[derive(Clone, Debug, PartialEq)]
pub struct NetworkFigures {
    pub nodes: u32,
    /// Cycles simulated.
    pub cycles: u64,
    /// Flits created and ejected per node per cycle during the measurement window.
    pub offered: f64,
    pub accepted: f64,
    /// Creation to ejection of the tail, in cycles, of the measured packets.
    pub latency: sim_core::Summary,
    /// Injection of the head to ejection of the tail.
    pub network_latency: sim_core::Summary,
    /// The measured packets did not all arrive before the window's limit.
    pub saturated: bool,
    /// Over the measurement window, the most any source's queue grew, as a
    /// share of the packets it created: near zero while the network keeps up.
    pub backlog_growth: f64,
    /// Flits that crossed the busiest link per cycle, and the mean over links.
    pub link_utilization_max: f64,
    pub link_utilization_mean: f64,
}

/// The network component.
#[derive(Debug)]
pub struct Network {
    cfg: NetworkConfig,
    window: Window,
    traffic: Box<dyn Traffic>,
    routers: Vec<Router>,
    /// `route[router][destination]`: the output to take.
    route: Vec<Vec<usize>>,
    /// Pending arrivals by cycle, modulo its length.
    wheel: Vec<Vec<Due>>,
    sources: Vec<VecDeque<u32>>,
    /// Per node: the packet being injected, its virtual channel, and flits left.
    injecting: Vec<Option<(u32, usize, u32)>>,
    packets: Vec<Packet>,
    cycle: u64,
    measured_left: u64,
    created_in_window: u64,
    ejected_in_window: u64,
    latency: Histogram,
    network_latency: Histogram,
    saturated: bool,
    /// Per node: packets waiting at the start of the window, and packets created in it.
    backlog_at_start: Vec<usize>,
    created_per_node: Vec<u64>,
    backlog_growth: f64,
}

impl Network {
    /// Build the routers and links of `cfg`'s topology.
    pub fn new(cfg: NetworkConfig, window: Window, traffic: Box<dyn Traffic>) -> Network {
        let t = cfg.topology;
        let vcs = cfg.virtual_channels.max(1) as usize;
        let nodes = t.nodes() as usize;
        let mut routers: Vec<Router> = (0..t.routers())
            .map(|r| {
                let targets: Vec<Port> = match t.kind {
                    TopologyKind::Crossbar => (0..nodes as u32).map(|_| Port::Local).collect(),
                    _ => std::iter::once(Port::Local).chain(t.neighbours(r).into_iter().map(Port::To)).collect(),
                };
                let outputs = targets
                    .iter()
                    .map(|&port| {
                        let (latency, millicycles_per_flit) = match port {
                            Port::To(n) => cfg.link_timing(r, n),
                            Port::Local => (0, 1000),
                        };
                        Output {
                            to: None,
                            latency,
                            millicycles_per_flit,
                            next_free_millicycle: 0,
                            dateline: matches!(port, Port::To(n) if t.crosses_dateline(r, n)),
                            credits: vec![cfg.buffer_flits; vcs],
                            held: vec![false; vcs],
                            next: 0,
                            flits: 0,
                        }
                    })
                    .collect::<Vec<_>>();
                let inputs = match t.kind {
                    TopologyKind::Crossbar => nodes,
                    _ => outputs.len(),
                };
                Router {
                    inputs: vec![vec![InputVc::default(); vcs]; inputs],
                    feeders: vec![None; inputs],
                    outputs,
                    buffered: 0,
                }
            })
            .collect();
        // Wire each link: output `1 + k` of a router feeds the input of its
        // k-th neighbour that faces back.
        if t.kind != TopologyKind::Crossbar {
            for r in 0..routers.len() {
                for (k, n) in t.neighbours(r as u32).into_iter().enumerate() {
                    let back = t.neighbours(n).iter().position(|&x| x == r as u32);
                    let input = 1 + back.expect("links are bidirectional");
                    routers[r].outputs[1 + k].to = Some((n as usize, input));
                    routers[n as usize].feeders[input] = Some((r, 1 + k));
                }
            }
        }
        let route = (0..routers.len() as u32)
            .map(|r| {
                (0..nodes as u32)
                    .map(|dest| match (t.kind, t.route(r, dest)) {
                        (TopologyKind::Crossbar, _) => dest as usize,
                        (_, Port::Local) => 0,
                        (_, Port::To(n)) => {
                            1 + t.neighbours(r).iter().position(|&x| x == n).expect("routes follow links")
                        }
                    })
                    .collect()
            })
            .collect();
        let longest = routers.iter().flat_map(|r| r.outputs.iter().map(|o| o.latency)).max().unwrap_or(1);
        Network {
            window,
            traffic,
            routers,
            route,
            wheel: vec![Vec::new(); longest as usize + 1],
            sources: vec![VecDeque::new(); nodes],
            injecting: vec![None; nodes],
            packets: Vec::new(),
            cycle: 0,
            measured_left: 0,
            created_in_window: 0,
            ejected_in_window: 0,
            latency: Histogram::new(),
            network_latency: Histogram::new(),
            saturated: false,
            backlog_at_start: vec![0; nodes],
            created_per_node: vec![0; nodes],
            backlog_growth: 0.0,
            cfg,
        }
    }

    fn in_window(&self, cycle: u64) -> bool {
        (self.window.warmup..self.window.warmup + self.window.measure).contains(&cycle)
    }

    /// Whether the run is over: the measured packets all arrived, or the limit passed.
    pub fn finished(&self) -> bool {
        self.cycle >= self.window.limit
            || (self.cycle >= self.window.warmup + self.window.measure && self.measured_left == 0)
    }

    /// Advance the network by one cycle.
    pub fn step(&mut self) {
        let c = self.cycle;
        if c == self.window.warmup {
            self.backlog_at_start = self.sources.iter().map(VecDeque::len).collect();
        }
        if c == self.window.warmup + self.window.measure {
            self.backlog_growth = self
                .sources
                .iter()
                .zip(&self.backlog_at_start)
                .zip(&self.created_per_node)
                .map(|((q, &start), &created)| q.len().saturating_sub(start) as f64 / created.max(1) as f64)
                .fold(0.0, f64::max);
        }
        let slot = (c % self.wheel.len() as u64) as usize;
        for due in std::mem::take(&mut self.wheel[slot]) {
            match due {
                Due::Flit { router, input, vc, mut flit } => {
                    flit.arrived = c;
                    self.routers[router].inputs[input][vc].buffer.push_back(flit);
                    self.routers[router].buffered += 1;
                }
                Due::Credit { router, output, vc } => self.routers[router].outputs[output].credits[vc] += 1,
            }
        }
        self.create(c);
        for node in 0..self.sources.len() {
            self.inject(node, c);
        }
        for r in 0..self.routers.len() {
            if self.routers[r].buffered > 0 {
                self.allocate_channels(r);
                self.traverse(r, c);
            }
        }
        self.cycle += 1;
        if self.cycle >= self.window.limit && self.measured_left > 0 {
            self.saturated = true;
        }
    }

    fn create(&mut self, c: u64) {
        for node in 0..self.sources.len() as u32 {
            let Some((dest, flits)) = self.traffic.create(c, node) else { continue };
            let measured = self.in_window(c);
            if measured {
                self.measured_left += 1;
                self.created_per_node[node as usize] += 1;
                self.created_in_window += flits.max(1) as u64;
            }
            let dest = dest % self.sources.len() as u32;
            self.packets.push(Packet { created: c, injected: c, dest, flits: flits.max(1), measured });
            self.sources[node as usize].push_back((self.packets.len() - 1) as u32);
        }
    }

    /// The router and input a node injects into.
    fn injection_port(&self, node: usize) -> (usize, usize) {
        match self.cfg.topology.kind {
            TopologyKind::Crossbar => (0, node),
            _ => (node, 0),
        }
    }

    fn inject(&mut self, node: usize, c: u64) {
        let (r, i) = self.injection_port(node);
        if self.injecting[node].is_none() {
            let Some(&id) = self.sources[node].front() else { return };
            // A new packet starts in a virtual channel holding no part-injected packet.
            let idle = self.routers[r].inputs[i].iter().position(|vc| vc.buffer.back().is_none_or(|f| f.tail));
            let Some(vc) = idle else { return };
            self.sources[node].pop_front();
            self.packets[id as usize].injected = c;
            self.injecting[node] = Some((id, vc, self.packets[id as usize].flits));
        }
        let Some((id, vc, left)) = self.injecting[node] else { return };
        if self.routers[r].inputs[i][vc].buffer.len() >= self.cfg.buffer_flits as usize {
            return;
        }
        let packet = self.packets[id as usize];
        let flit = Flit {
            packet: id,
            head: left == packet.flits,
            tail: left == 1,
            dest: packet.dest,
            arrived: c,
            upper: false,
        };
        self.routers[r].inputs[i][vc].buffer.push_back(flit);
        self.routers[r].buffered += 1;
        self.injecting[node] = (left > 1).then_some((id, vc, left - 1));
    }

    /// Route computation and virtual-channel allocation for the head flits at
    /// the front of the router's virtual channels.
    fn allocate_channels(&mut self, r: usize) {
        let vcs = self.cfg.virtual_channels.max(1) as usize;
        let router = &mut self.routers[r];
        for i in 0..router.inputs.len() {
            for v in 0..vcs {
                let vc = &router.inputs[i][v];
                let Some(front) = vc.buffer.front() else { continue };
                if vc.route.is_some() || !front.head {
                    continue;
                }
                let o = self.route[r][front.dest as usize];
                let output = &mut router.outputs[o];
                if output.to.is_none() {
                    router.inputs[i][v].route = Some((o, 0));
                    continue;
                }
                let class = if self.cfg.topology.kind == TopologyKind::Ring && vcs >= 2 {
                    if front.upper || output.dateline { vcs / 2..vcs } else { 0..vcs / 2 }
                } else {
                    0..vcs
                };
                if let Some(w) = class.into_iter().find(|&w| !output.held[w]) {
                    output.held[w] = true;
                    router.inputs[i][v].route = Some((o, w));
                }
            }
        }
    }

    /// Switch allocation and traversal: each output sends at most one flit, each input at most one.
    fn traverse(&mut self, r: usize, c: u64) {
        let vcs = self.cfg.virtual_channels.max(1) as usize;
        let pipeline = self.cfg.router_cycles as u64;
        let pairs = self.routers[r].inputs.len() * vcs;
        let outputs = self.routers[r].outputs.len();
        let mut input_used = vec![false; self.routers[r].inputs.len()];
        // Rotate which output chooses first, so no output is always last to pick.
        for k in 0..outputs {
            let o = (k + c as usize) % outputs;
            let router = &self.routers[r];
            let output = &router.outputs[o];
            if output.next_free_millicycle > c * 1000 {
                continue;
            }
            let granted = (0..pairs).map(|n| (output.next + n) % pairs).find(|&pair| {
                let (i, v) = (pair / vcs, pair % vcs);
                let vc = &router.inputs[i][v];
                !input_used[i]
                    && vc.route.is_some_and(|(ro, rv)| ro == o && (output.to.is_none() || output.credits[rv] > 0))
                    && vc.buffer.front().is_some_and(|f| f.arrived + pipeline <= c)
            });
            let Some(pair) = granted else { continue };
            let (i, v) = (pair / vcs, pair % vcs);
            input_used[i] = true;
            self.send(r, i, v, o, c);
            self.routers[r].outputs[o].next = (pair + 1) % pairs;
        }
    }

    fn send(&mut self, r: usize, i: usize, v: usize, o: usize, c: u64) {
        let router = &mut self.routers[r];
        let vc = &mut router.inputs[i][v];
        let mut flit = vc.buffer.pop_front().expect("a granted flit is buffered");
        router.buffered -= 1;
        let (_, w) = vc.route.expect("a granted flit has a route");
        if flit.tail {
            vc.route = None;
        }
        if let Some((up, up_output)) = router.feeders[i] {
            let latency = self.routers[up].outputs[up_output].latency;
            self.schedule(c + latency, Due::Credit { router: up, output: up_output, vc: v });
        }
        let output = &mut self.routers[r].outputs[o];
        output.flits += 1;
        output.next_free_millicycle = c * 1000 + output.millicycles_per_flit;
        match output.to {
            Some((next, input)) => {
                output.credits[w] -= 1;
                if flit.tail {
                    output.held[w] = false;
                }
                flit.upper |= output.dateline;
                let at = c + output.latency;
                self.schedule(at, Due::Flit { router: next, input, vc: w, flit });
            }
            None => self.eject(flit, c),
        }
    }

    fn schedule(&mut self, cycle: u64, due: Due) {
        let slot = (cycle % self.wheel.len() as u64) as usize;
        self.wheel[slot].push(due);
    }

    fn eject(&mut self, flit: Flit, c: u64) {
        if self.in_window(c) {
            self.ejected_in_window += 1;
        }
        let packet = self.packets[flit.packet as usize];
        if flit.tail && packet.measured {
            self.latency.record(c - packet.created);
            self.network_latency.record(c - packet.injected);
            self.measured_left -= 1;
        }
    }

    /// What the run measured so far.
    pub fn figures(&self) -> NetworkFigures {
        let nodes = self.sources.len() as u32;
        let per_node_cycle = |flits: u64| flits as f64 / (nodes as f64 * self.window.measure.max(1) as f64);
        let links: Vec<u64> =
            self.routers.iter().flat_map(|r| r.outputs.iter().filter(|o| o.to.is_some()).map(|o| o.flits)).collect();
        let cycles = self.cycle.max(1) as f64;
        NetworkFigures {
            nodes,
            cycles: self.cycle,
            offered: per_node_cycle(self.created_in_window),
            accepted: per_node_cycle(self.ejected_in_window),
            latency: self.latency.summary(),
            network_latency: self.network_latency.summary(),
            saturated: self.saturated,
            backlog_growth: self.backlog_growth,
            link_utilization_max: links.iter().copied().max().unwrap_or(0) as f64 / cycles,
            link_utilization_mean: links.iter().sum::<u64>() as f64 / (links.len().max(1) as f64 * cycles),
        }
    }
}

impl Component<Msg> for Network {
    fn kind(&self) -> &'static str {
        "noc.network"
    }

    fn handle(&mut self, msg: Msg, ctx: &mut Ctx<'_, Msg>) {
        if !matches!(msg, Msg::Wake { .. }) {
            debug_assert!(false, "network received {msg:?}");
            return;
        }
        self.step();
        if !self.finished() {
            ctx.send_at(ctx.me(), self.cfg.clock.duration(Cycles(self.cycle)), Msg::Wake { token: 0 });
        }
    }

    fn stats(&self, _now: Time) -> Stats {
        let flits: u64 =
            self.routers.iter().flat_map(|r| r.outputs.iter().filter(|o| o.to.is_some())).map(|o| o.flits).sum();
        Stats::new()
            .scalar("cycles", Unit::Cycles, "cycles simulated", self.cycle)
            .count("packets", "packets created", self.packets.len() as u64)
            .count("link_flits", "flits that crossed a router-to-router link", flits)
            .distribution("latency", Unit::Cycles, "packet latency, creation to tail ejection", &self.latency)
            .distribution(
                "network_latency",
                Unit::Cycles,
                "packet latency, head injection to tail ejection",
                &self.network_latency,
            )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Given packets at given cycles: (cycle, source, destination, flits).
    #[derive(Debug)]
    struct Script(Vec<(u64, u32, u32, u32)>);

    impl Traffic for Script {
        fn create(&mut self, cycle: u64, node: u32) -> Option<(u32, u32)> {
            let k = self.0.iter().position(|&(c, s, _, _)| c == cycle && s == node)?;
            let (_, _, d, f) = self.0.remove(k);
            Some((d, f))
        }
    }

    fn config(kind: TopologyKind, columns: u32, rows: u32) -> NetworkConfig {
        NetworkConfig {
            topology: Topology { kind, columns, rows },
            virtual_channels: 2,
            buffer_flits: 8,
            router_cycles: 2,
            link_cycles: 1,
            die_to_die: None,
            clock: Clock::new(1_000_000_000).expect("nonzero"),
        }
    }

    fn run(cfg: NetworkConfig, packets: Vec<(u64, u32, u32, u32)>) -> NetworkFigures {
        let last = packets.iter().map(|p| p.0).max().unwrap_or(0);
        let window = Window { warmup: 0, measure: last + 1, limit: 100_000 };
        let mut net = Network::new(cfg, window, Box::new(Script(packets)));
        while !net.finished() {
            net.step();
        }
        net.figures()
    }

    #[test]
    fn a_lone_packet_takes_the_zero_load_latency() {
        for (kind, columns, rows) in
            [(TopologyKind::Mesh, 4, 4), (TopologyKind::Ring, 8, 1), (TopologyKind::Crossbar, 6, 1)]
        {
            let cfg = config(kind, columns, rows);
            let (p, l) = (cfg.router_cycles as u64, cfg.link_cycles as u64);
            let nodes = cfg.topology.nodes();
            for (src, dst, flits) in [(0, nodes - 1, 1), (1, nodes / 2, 5), (2, 2, 3)] {
                let h = cfg.topology.hops(src, dst) as u64;
                let got = run(cfg.clone(), vec![(0, src, dst, flits)]);
                assert_eq!(got.latency.max, (h + 1) * p + h * l + flits as u64 - 1, "{kind:?} {src}->{dst}");
                assert_eq!(cfg.zero_load_latency(src, dst, flits), got.latency.max);
            }
        }
    }

    #[test]
    fn die_to_die_links_add_their_latency_and_pace_the_flits() {
        let mut cfg = config(TopologyKind::Mesh, 4, 2);
        cfg.die_to_die = Some(DieToDie {
            tile_columns: 2,
            tile_rows: 2,
            latency_cycles: 10,
            millicycles_per_flit_x: 2000,
            millicycles_per_flit_y: 1000,
        });
        // Node 0 to node 3 crosses one die-to-die link (1 -> 2) and two mesh links.
        let got = run(cfg.clone(), vec![(0, 0, 3, 4)]);
        // Head: 4 routers of 2, links of 1 + 10 + 1; the tail is paced at 2 cycles per flit on the slow link.
        assert_eq!(got.latency.max, 4 * 2 + 12 + 3 * 2);
        assert_eq!(cfg.zero_load_latency(0, 3, 4), got.latency.max);
    }

    #[test]
    fn two_packets_on_one_link_queue_behind_each_other() {
        let cfg = config(TopologyKind::Mesh, 4, 1);
        // Both cross link 1 -> 2; the second waits for the first's flits.
        let got = run(cfg, vec![(0, 0, 3, 8), (0, 1, 2, 8)]);
        let alone = 4 * 2 + 3 + 7;
        assert!(got.latency.max > alone as u64, "{got:?}");
        assert_eq!(got.latency.count, 2);
    }
}
