//! Semantic checks of a parsed spec: what serde's types alone cannot say.

use super::{CardSpec, ChipletSpec, CpuSpec, D2dTopology, MemorySpec, NocSpec, PcieSpec, SystemSpec};
use crate::input::Invalid;
use crate::noc::TopologyKind;
use sim_core::Time;

/// The longest side of a matrix engine: 1,024 PEs, eight times TPU v4's 128.
const MAX_ARRAY_SIDE: u32 = 1024;

/// Every problem with `spec`, each naming its field path.
pub fn validate(spec: &SystemSpec) -> Vec<Invalid> {
    let mut out = Vec::new();
    let mut at_least_one = |path: &str, value: u64| {
        if value == 0 {
            out.push(Invalid::new(path, "expected at least 1, found 0"));
        }
    };
    at_least_one("nodes", spec.nodes.into());
    let node = &spec.node;
    let cpu = &node.cpu;
    at_least_one("node.cpu.cores", cpu.cores.into());
    at_least_one("node.cpu.issue_width", cpu.issue_width.into());
    at_least_one("node.cpu.vector_pipes", cpu.vector_pipes.into());
    at_least_one("node.cpu.max_outstanding_misses", cpu.max_outstanding_misses.into());
    at_least_one("node.cpu.dram.channels", cpu.dram.channels.into());
    if let Some(card) = &node.card {
        let c = &card.chiplet;
        at_least_one("node.card.chiplets", card.chiplets.into());
        at_least_one("node.card.chiplet.cores", c.cores.into());
        at_least_one("node.card.chiplet.core.matrix.engines", c.core.matrix.engines.into());
        at_least_one("node.card.chiplet.core.matrix.rows", c.core.matrix.rows.into());
        at_least_one("node.card.chiplet.core.matrix.cols", c.core.matrix.cols.into());
        at_least_one("node.card.chiplet.core.vector.lanes", c.core.vector.lanes.into());
        at_least_one("node.card.chiplet.core.vector.transcendental_cycles", c.core.vector.transcendental_cycles.into());
        at_least_one("node.card.chiplet.core.scratchpad.banks", c.core.scratchpad.banks.into());
        at_least_one("node.card.chiplet.core.dma.queue_depth", c.core.dma.queue_depth.into());
        at_least_one("node.card.chiplet.core.queue_depth", c.core.queue_depth.into());
        at_least_one("node.card.chiplet.core.dma.max_outstanding", c.core.dma.max_outstanding.into());
        for (path, n) in [("rows", c.core.matrix.rows), ("cols", c.core.matrix.cols)] {
            if n > MAX_ARRAY_SIDE {
                out.push(Invalid::new(
                    format!("node.card.chiplet.core.matrix.{path}"),
                    format!("expected at most {MAX_ARRAY_SIDE} (a systolic array of a million PEs), found {n}"),
                ));
            }
        }
        if !(1..=2).contains(&c.core.dma.multicast) {
            out.push(Invalid::new(
                "node.card.chiplet.core.dma.multicast",
                format!("expected 1 (none) or 2 (pairs of cores), found {}", c.core.dma.multicast),
            ));
        }
    }
    pcie(&mut out, "node.host_link", &node.host_link);
    cpu_checks(&mut out, cpu);
    if let Some(card) = &node.card {
        let cores = [u64::from(node.cards), card.chiplets.into(), card.chiplet.cores.into()]
            .iter()
            .try_fold(u64::from(spec.nodes), |n, &k| n.checked_mul(k));
        let limit = spec.simulation.max_cores;
        if cores.is_none_or(|c| c > limit) {
            let found = cores.map_or("more than 2^64".to_string(), |c| c.to_string());
            // Blame the node count where one node alone fits.
            let per_node = u64::from(node.cards) * u64::from(card.chiplets) * u64::from(card.chiplet.cores);
            let field = if spec.nodes > 1 && per_node <= limit { "nodes" } else { "node.cards" };
            out.push(Invalid::new(
                field,
                format!(
                    "{} nodes x {} cards x {} chiplets x {} cores is {found} NPU cores, more than the {limit} a run \
                     allows (raise simulation.max_cores for a larger system)",
                    spec.nodes, node.cards, card.chiplets, card.chiplet.cores
                ),
            ));
        }
    }
    cost_checks(&mut out, &spec.cost);
    if spec.nodes > 1 && spec.network.is_none() {
        out.push(Invalid::new("network", format!("a system of {} nodes needs a [network] table", spec.nodes)));
    }
    match (&node.card, node.cards) {
        (None, n) if n > 0 => {
            out.push(Invalid::new("node.card", format!("node.cards = {n} but no [node.card] table describes the card")))
        }
        (Some(card), _) => card_checks(&mut out, card),
        _ => {}
    }
    if spec.simulation.fabric_chunk.get() < 64 {
        out.push(Invalid::new(
            "simulation.fabric_chunk",
            format!("expected at least 64 B, found {}", spec.simulation.fabric_chunk),
        ));
    }
    out
}

fn cpu_checks(out: &mut Vec<Invalid>, cpu: &CpuSpec) {
    if cpu.vector_bits < 64 || !cpu.vector_bits.is_power_of_two() {
        out.push(Invalid::new(
            "node.cpu.vector_bits",
            format!("expected a power of two of at least 64, found {}", cpu.vector_bits),
        ));
    }
    if cpu.power.idle > cpu.power.tdp {
        out.push(Invalid::new(
            "node.cpu.power.idle",
            format!("idle power {} exceeds the TDP {}", cpu.power.idle, cpu.power.tdp),
        ));
    }
}

fn pcie(out: &mut Vec<Invalid>, path: &str, link: &PcieSpec) {
    if !(3..=6).contains(&link.generation) {
        out.push(Invalid::new(
            format!("{path}.generation"),
            format!("expected a PCIe generation from 3 to 6, found {}", link.generation),
        ));
    }
    if ![1, 2, 4, 8, 16].contains(&link.lanes) {
        out.push(Invalid::new(
            format!("{path}.lanes"),
            format!("expected 1, 2, 4, 8 or 16 lanes, found {}", link.lanes),
        ));
    }
    if link.ports == 0 {
        out.push(Invalid::new(format!("{path}.ports"), "expected at least 1, found 0"));
    }
}

fn card_checks(out: &mut Vec<Invalid>, card: &CardSpec) {
    pcie(out, "node.card.host_link", &card.host_link);
    if card.host_link.ports > card.chiplets {
        out.push(Invalid::new(
            "node.card.host_link.ports",
            format!(
                "{} PCIe ports cannot attach to {} chiplets (one port per chiplet at most)",
                card.host_link.ports, card.chiplets
            ),
        ));
    }
    match &card.d2d {
        None if card.chiplets > 1 => out.push(Invalid::new(
            "node.card.d2d",
            format!("a card of {} chiplets needs a [node.card.d2d] table", card.chiplets),
        )),
        Some(d2d)
            if d2d.topology == D2dTopology::Mesh
                && (d2d.columns == 0 || !card.chiplets.is_multiple_of(d2d.columns)) =>
        {
            out.push(Invalid::new(
                "node.card.d2d.columns",
                format!("a mesh of {} chiplets needs columns dividing it, found {}", card.chiplets, d2d.columns),
            ))
        }
        _ => {}
    }
    if card.power.idle > card.power.tdp {
        out.push(Invalid::new(
            "node.card.power.idle",
            format!("idle power {} exceeds the TDP {}", card.power.idle, card.power.tdp),
        ));
    }
    chiplet_checks(out, &card.chiplet);
}

fn chiplet_checks(out: &mut Vec<Invalid>, c: &ChipletSpec) {
    let m = &c.core.matrix;
    if m.macs_per_pe.is_empty() {
        out.push(Invalid::new(
            "node.card.chiplet.core.matrix.macs_per_pe",
            "expected at least one dtype the matrix engine supports",
        ));
    }
    for (dtype, rate) in &m.macs_per_pe {
        if *rate == 0 {
            out.push(Invalid::new(
                format!("node.card.chiplet.core.matrix.macs_per_pe.{dtype}"),
                "expected at least 1 (leave a dtype out if it is unsupported)",
            ));
        }
        if !c.energy.mac.contains_key(dtype) {
            out.push(Invalid::new(
                "node.card.chiplet.energy.mac",
                format!("the matrix engine supports {dtype} but no MAC energy is given for it"),
            ));
        }
    }
    if let Some(b) = m.operand_block
        && (b.rows == 0 || b.cols == 0 || b.rows > 1 << 16 || b.cols > 1 << 16)
    {
        out.push(Invalid::new(
            "node.card.chiplet.core.matrix.operand_block",
            format!("expected rows and cols from 1 to 65,536, found {} x {}", b.rows, b.cols),
        ));
    }
    if let Some(a) = m.accumulators
        && a.get() > 1 << 40
    {
        out.push(Invalid::new(
            "node.card.chiplet.core.matrix.accumulators",
            format!("expected at most 1 TiB of accumulator storage per core, found {a}"),
        ));
    }
    noc_checks(out, "node.card.chiplet.noc", &c.noc, Some(c.cores));
    if c.core.scratchpad.size.get() < 4096 {
        out.push(Invalid::new(
            "node.card.chiplet.core.scratchpad.size",
            format!("expected at least 4 KiB, found {}", c.core.scratchpad.size),
        ));
    }
    let dma = &c.core.dma;
    if dma.transaction_size.get() < 64 || dma.transaction_size.get() > c.core.scratchpad.size.get() {
        out.push(Invalid::new(
            "node.card.chiplet.core.dma.transaction_size",
            format!("expected from 64 B up to the scratchpad size, found {}", dma.transaction_size),
        ));
    }
    memory_checks(out, "node.card.chiplet.memory", &c.memory);
}

/// Checks of a chiplet's memory, whose fields sit under `path`.
pub fn memory_checks(out: &mut Vec<Invalid>, path: &str, m: &MemorySpec) {
    for (field, value) in [
        ("stacks", m.stacks),
        ("channels_per_stack", m.channels_per_stack),
        ("pseudo_channels", m.pseudo_channels),
        ("bus_width_bits", m.bus_width_bits),
    ] {
        if value == 0 {
            out.push(Invalid::new(format!("{path}.{field}"), "expected at least 1, found 0"));
        }
    }
    if !m.page_size.get().is_power_of_two() {
        out.push(Invalid::new(format!("{path}.page_size"), format!("expected a power of two, found {}", m.page_size)));
    }
    let pcs = m.channels_per_stack as u64 * m.pseudo_channels as u64;
    if pcs > 0 && !(m.bus_width_bits as u64).is_multiple_of(pcs) {
        out.push(Invalid::new(
            format!("{path}.bus_width_bits"),
            format!("{} pins do not divide evenly over {pcs} pseudo-channels", m.bus_width_bits),
        ));
    }
    let timing = match m.timing.resolve() {
        Ok(t) => t,
        Err(e) => {
            out.push(Invalid::new(format!("{path}.timing"), e));
            return;
        }
    };
    if timing.t_rc < timing.t_ras + timing.t_rp {
        out.push(Invalid::new(
            format!("{path}.timing.tRC"),
            format!("tRC ({}) must be at least tRAS + tRP ({} + {})", timing.t_rc, timing.t_ras, timing.t_rp),
        ));
    }
    if timing.t_refi <= timing.t_rfc {
        out.push(Invalid::new(
            format!("{path}.timing.tREFI"),
            format!("tREFI ({}) must exceed tRFC ({})", timing.t_refi, timing.t_rfc),
        ));
    }
    if timing.t_ck == sim_core::Time::ZERO || timing.burst_length == 0 {
        out.push(Invalid::new(format!("{path}.timing"), "tCK and burst_length must be positive"));
    }
    if pcs > 0 && !m.page_size.get().is_multiple_of(m.burst_bytes().max(1)) {
        out.push(Invalid::new(
            format!("{path}.page_size"),
            format!("a page of {} is not a whole number of {}-byte bursts", m.page_size, m.burst_bytes()),
        ));
    } else if let Err(e) = m.address_mapping.resolve(&m.organization()) {
        out.push(Invalid::new(format!("{path}.address_mapping"), e));
    }
    let c = &m.controller;
    if c.read_queue == 0 || c.write_queue == 0 {
        out.push(Invalid::new(format!("{path}.controller"), "read_queue and write_queue must be at least 1"));
    }
    if !(c.write_drain_low < c.write_drain_high && c.write_drain_high <= c.write_queue) {
        out.push(Invalid::new(
            format!("{path}.controller.write_drain_high"),
            format!(
                "expected write_drain_low < write_drain_high <= write_queue, found {} < {} <= {}",
                c.write_drain_low, c.write_drain_high, c.write_queue
            ),
        ));
    }
    // A controller's pipeline is nanoseconds; a millisecond is a unit slip.
    if c.latency.time() > Time::from_ns(1_000_000) {
        out.push(Invalid::new(
            format!("{path}.controller.latency"),
            format!("expected at most 1 ms, found {} ns", c.latency.time().as_ps() / 1000),
        ));
    }
}

/// Checks of a network, whose fields sit under `path`; `cores`, when the
/// network belongs to a chiplet, must each find a router.
pub fn noc_checks(out: &mut Vec<Invalid>, path: &str, noc: &NocSpec, cores: Option<u32>) {
    for (field, value) in [
        ("columns", noc.columns),
        ("rows", noc.rows),
        ("router_latency_cycles", noc.router_latency_cycles),
        ("link_latency_cycles", noc.link_latency_cycles),
        ("virtual_channels", noc.virtual_channels),
        ("buffer_flits", noc.buffer_flits),
    ] {
        if value == 0 {
            out.push(Invalid::new(format!("{path}.{field}"), "expected at least 1, found 0"));
        }
    }
    if noc.link_width.get() == 0 {
        out.push(Invalid::new(format!("{path}.link_width"), "expected at least 1 B, found 0 B"));
    }
    if noc.topology == TopologyKind::Ring && noc.virtual_channels < 2 {
        out.push(Invalid::new(
            format!("{path}.virtual_channels"),
            format!(
                "a ring needs at least 2 virtual channels (one per side of its dateline), found {}",
                noc.virtual_channels
            ),
        ));
    }
    let routers = u64::from(noc.columns) * u64::from(noc.rows);
    if routers > 4096 {
        out.push(Invalid::new(path, format!("expected at most 4096 routers, found {routers}")));
        return;
    }
    let mut placed = |field: &str, list: &Option<Vec<u32>>, expected_len: Option<u32>| {
        let Some(list) = list else { return };
        if list.is_empty() {
            out.push(Invalid::new(format!("{path}.{field}"), "expected at least one router"));
        }
        if let Some(&bad) = list.iter().find(|&&r| u64::from(r) >= routers) {
            out.push(Invalid::new(
                format!("{path}.{field}"),
                format!(
                    "router {bad} does not exist: a {}x{} network has routers 0 to {}",
                    noc.columns,
                    noc.rows,
                    routers.saturating_sub(1)
                ),
            ));
        }
        if let Some(n) = expected_len.filter(|&n| n as usize != list.len()) {
            out.push(Invalid::new(
                format!("{path}.{field}"),
                format!("expected one router per core ({n}), found {}", list.len()),
            ));
        }
    };
    placed("core_routers", &noc.core_routers, cores);
    placed("memory_routers", &noc.memory_routers, None);
    placed("sram_routers", &noc.sram_routers, None);
    if let Some(cores) = cores.filter(|&c| u64::from(c) > routers && noc.core_routers.is_none()) {
        out.push(Invalid::new(
            path,
            format!("a {}x{} network has too few routers for {cores} cores", noc.columns, noc.rows),
        ));
    }
}

fn cost_checks(out: &mut Vec<Invalid>, cost: &super::CostSpec) {
    let fields = [("card_usd", cost.card_usd), ("host_usd", cost.host_usd), ("usd_per_kwh", cost.usd_per_kwh)];
    for (name, value) in fields {
        if value.is_some_and(|v| !(v.is_finite() && v >= 0.0)) {
            out.push(Invalid::new(
                format!("cost.{name}"),
                format!("expected 0 or more, found {}", value.unwrap_or(0.0)),
            ));
        }
    }
    if let Some(years) = cost.years.filter(|y| !(y.is_finite() && *y > 0.0 && *y <= 100.0)) {
        out.push(Invalid::new("cost.years", format!("expected more than 0 and at most 100 years, found {years}")));
    }
    if let Some(pue) = cost.pue.filter(|p| !(p.is_finite() && (1.0..=10.0).contains(p))) {
        out.push(Invalid::new("cost.pue", format!("expected a power usage effectiveness from 1 to 10, found {pue}")));
    }
}
