//! Assembles the components of a whole system from its spec: hosts (CPU
//! cluster and DRAM), chiplets (sequencer, cores, memory controller), and the
//! links between them, with the routes transfers take and the energy table.
//!
//! The host's serving runtime is not a hardware model: `build` reserves a slot
//! for it per node ([`HostIds::runtime`]) and the caller places it there.

use crate::cpu::{CacheLevel, CpuCluster, CpuConfig};
use crate::energy::{ActionEnergy, EnergyModel};
use crate::fabric::{Endpoint, Link, LinkConfig, Routes, RoutesBuilder};
use crate::memory::{ChannelMemory, ChannelMemoryConfig, Hbm, HbmConfig, Refresh};
use crate::msg::Msg;
use crate::noc::{Attachment, TransactionNetwork, TransactionNetworkConfig};
use crate::npu::{ComputeMemo, Core, CoreConfig, MatrixShape, Sequencer, SequencerConfig, VectorShape};
use crate::spec::{CacheSpec, CardSpec, ChipletSpec, CpuSpec, D2dTopology, MemoryModel, MemorySpec, SystemSpec};
use crate::units::Bandwidth;
use isa::Dtype;
use sim_core::{ComponentId, SystemBuilder, Time};
use std::sync::Arc;

/// The components of one chiplet.
#[derive(Clone, Debug)]
pub struct DeviceIds {
    pub node: u32,
    pub card: u32,
    pub chiplet: u32,
    pub sequencer: ComponentId,
    pub cores: Vec<ComponentId>,
    pub memory: ComponentId,
    pub shared: ComponentId,
    pub network: ComponentId,
}

/// The components of one node's host.
#[derive(Clone, Debug)]
pub struct HostIds {
    /// Reserved for the serving runtime, which the caller places.
    pub runtime: ComponentId,
    pub cpu: ComponentId,
    pub dram: ComponentId,
}

/// A system's components, addressed by what they are.
#[derive(Debug)]
pub struct Machine {
    /// Chiplets in system order: node, then card, then chiplet.
    pub devices: Vec<DeviceIds>,
    pub hosts: Vec<HostIds>,
    pub routes: Arc<Routes>,
    pub energy: EnergyModel,
    /// The kernel-replay memo the sequencers share (`simulation.replay_kernels`).
    pub memo: Option<Arc<ComputeMemo>>,
}

/// Bytes the DRAM of a host interleaves and opens per row (DDR5 class).
const HOST_DRAM_INTERLEAVE: u64 = 256;
const HOST_DRAM_PAGE: u64 = 8 << 10;

/// Bytes of the shared SRAM's address space per bank, in turn.
const SHARED_SRAM_INTERLEAVE: u64 = 256;

/// Choices about how the machine is modelled, beyond its spec.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// Cores time only their engines: memory and scratchpad ports take no time.
    pub compute_only: bool,
    /// The device-memory model (the spec's `simulation.memory_model` by default).
    pub memory_model: MemoryModel,
}

/// Register the components of one chiplet of `spec` alone, its sequencer
/// included (with no routes: it can run compute commands, not transfers).
pub fn build_chiplet(spec: &ChipletSpec, builder: &mut SystemBuilder<Msg>, options: Options) -> DeviceIds {
    let mut energy = EnergyModel::default();
    let sequencer = builder.reserve("chiplet.sequencer");
    let ids = chiplet(builder, &mut energy, spec, "chiplet", sequencer, (0, 0, 0), options);
    let cfg = SequencerConfig {
        device: 0,
        cores: ids.cores.clone(),
        routes: Arc::new(RoutesBuilder::default().build()),
        chunk: 1 << 16,
        memory: ids.memory,
        shared: ids.shared,
        network: ids.network,
        memo: None,
    };
    builder.place(sequencer, Sequencer::new(cfg)).expect("the sequencer slot is placed once");
    ids
}

/// Register every component of `spec` with `builder`.
pub fn build(spec: &SystemSpec, builder: &mut SystemBuilder<Msg>) -> Machine {
    build_with(spec, builder, Options { compute_only: false, memory_model: spec.simulation.memory_model })
}

/// [`build`], with modelling options.
pub fn build_with(spec: &SystemSpec, builder: &mut SystemBuilder<Msg>, options: Options) -> Machine {
    let mut energy = EnergyModel::default();
    let mut fabric = RoutesBuilder::default();
    let chunk = spec.simulation.fabric_chunk.get();
    let mut hosts = Vec::new();
    let mut devices = Vec::new();
    let mut sequencers = Vec::new();
    let mut add_link = |builder: &mut SystemBuilder<Msg>,
                        fabric: &mut RoutesBuilder,
                        energy: &mut EnergyModel,
                        path: String,
                        class: &'static str,
                        bandwidth: Bandwidth,
                        latency: Time,
                        pj_per_bit: f64,
                        from: usize,
                        to: usize| {
        let id = builder.add(path.clone(), Link::new(LinkConfig { class, bandwidth, latency }));
        fabric.link(from, to, id, latency, bandwidth.time_for(chunk));
        energy.actions(&path, vec![ActionEnergy::new("actions.bits", class, pj_per_bit * 1e-12)]);
    };
    let network = (spec.nodes > 1).then(|| fabric.vertex());

    for n in 0..spec.nodes {
        let node = &spec.node;
        let runtime = builder.reserve(format!("node{n}.host"));
        let host_v = fabric.endpoint(Endpoint::Host(n), runtime);
        let cpu_spec = &node.cpu;
        let dram_path = format!("node{n}.dram");
        let dram = builder.add(
            dram_path.clone(),
            ChannelMemory::new(ChannelMemoryConfig {
                class: "cpu.dram",
                channels: cpu_spec.dram.channels,
                channel_bandwidth: cpu_spec.dram.channel_bandwidth,
                interleave: HOST_DRAM_INTERLEAVE,
                page_size: HOST_DRAM_PAGE,
                latency: cpu_spec.dram.latency.time(),
                refresh: None,
            }),
        );
        let dram_pj = cpu_spec.dram.energy_per_bit.pj_per_bit() * 1e-12;
        energy.actions(
            &dram_path,
            vec![
                ActionEnergy::new("actions.read_bits", "cpu.dram", dram_pj),
                ActionEnergy::new("actions.write_bits", "cpu.dram", dram_pj),
            ],
        );
        let cpu_path = format!("node{n}.cpu");
        let lanes = cpu_spec.vector_bits / 32;
        let line_bytes = 64;
        let core_bandwidth = Bandwidth::from_bits_per_s(
            (cpu_spec.max_outstanding_misses as u128 * line_bytes * 8 * 1_000_000_000_000
                / cpu_spec.dram.latency.time().as_ps().max(1) as u128) as u64,
        );
        let cpu = builder.add(
            cpu_path.clone(),
            CpuCluster::new(CpuConfig {
                cores: cpu_spec.cores,
                clock: cpu_spec.clock.clock(),
                issue_width: cpu_spec.issue_width,
                vector_flops_per_cycle: lanes * cpu_spec.vector_pipes * 2,
                dram,
                core_bandwidth,
                dram_latency: cpu_spec.dram.latency.time(),
                caches: cache_levels(cpu_spec),
            }),
        );
        energy.actions(
            &cpu_path,
            vec![ActionEnergy::new("actions.core_active_ps", "cpu.cores", cpu_spec.power.core_active.watts() * 1e-12)],
        );
        energy.static_power("static.cpu", cpu_spec.power.idle.watts());
        hosts.push(HostIds { runtime, cpu, dram });

        let switch = fabric.vertex();
        let host_link = &node.host_link;
        let host_bw = host_link.port_bandwidth().times(host_link.ports as u64);
        let pj = host_link.energy_per_bit.pj_per_bit();
        let lat = host_link.latency.time() + node.pcie_switch_latency.time();
        add_link(
            builder,
            &mut fabric,
            &mut energy,
            format!("node{n}.host_link.down"),
            "link.pcie",
            host_bw,
            lat,
            pj,
            host_v,
            switch,
        );
        add_link(
            builder,
            &mut fabric,
            &mut energy,
            format!("node{n}.host_link.up"),
            "link.pcie",
            host_bw,
            lat,
            pj,
            switch,
            host_v,
        );

        if let (Some(net), Some(ns)) = (network, &spec.network) {
            // Out through the NIC and the switches; in through the far NIC.
            let out = ns.latency() - ns.nic_latency.time();
            // A bit crosses both links: each charges half its energy.
            let pj = ns.energy_per_bit.pj_per_bit() / 2.0;
            add_link(
                builder,
                &mut fabric,
                &mut energy,
                format!("node{n}.network.out"),
                "link.network",
                ns.bandwidth,
                out,
                pj,
                switch,
                net,
            );
            add_link(
                builder,
                &mut fabric,
                &mut energy,
                format!("node{n}.network.in"),
                "link.network",
                ns.bandwidth,
                ns.nic_latency.time(),
                pj,
                net,
                switch,
            );
        }

        let Some(card) = &node.card else { continue };
        let peer_switch = card.peer_link.as_ref().map(|_| fabric.vertex());
        for c in 0..node.cards {
            let first_device = devices.len();
            let mut vertices = Vec::new();
            for k in 0..card.chiplets {
                let prefix = format!("node{n}.card{c}.chiplet{k}");
                let device = devices.len() as u32;
                let sequencer = builder.reserve(format!("{prefix}.sequencer"));
                let active_j_per_ps = card.power.active.watts() / card.chiplets as f64 * 1e-12;
                energy.actions(
                    &format!("{prefix}.sequencer"),
                    vec![ActionEnergy::new("busy", "npu.active", active_j_per_ps)],
                );
                vertices.push(fabric.endpoint(Endpoint::Device(device), sequencer));
                let ids = chiplet(builder, &mut energy, &card.chiplet, &prefix, sequencer, (n, c, k), options);
                sequencers.push((sequencer, device as usize));
                devices.push(ids);
            }
            card_links(builder, &mut fabric, &mut energy, card, (n, c), &vertices, switch, peer_switch, &mut add_link);
            energy.static_power("static.npu", card.power.idle.watts());
            let stacks = card.chiplet.memory.stacks as f64 * card.chiplets as f64;
            energy.static_power("static.memory", card.chiplet.memory.energy.background_per_stack.watts() * stacks);
            debug_assert_eq!(devices.len() - first_device, card.chiplets as usize);
        }
    }

    let routes = Arc::new(fabric.build());
    let memo = match &spec.node.card {
        Some(card) if spec.simulation.replay_kernels => Some(Arc::new(ComputeMemo::new(&card.chiplet, options))),
        _ => None,
    };
    for (id, d) in sequencers {
        let ids: &DeviceIds = &devices[d];
        let cfg = SequencerConfig {
            device: d as u32,
            cores: ids.cores.clone(),
            routes: Arc::clone(&routes),
            chunk,
            memory: ids.memory,
            shared: ids.shared,
            network: ids.network,
            memo: memo.clone(),
        };
        builder.place(id, Sequencer::new(cfg)).expect("each sequencer slot is placed once");
    }
    Machine { devices, hosts, routes, energy, memo }
}

/// The CPU's cache levels as its model takes them, each with what one core
/// streams from it: the spec's figure, or its misses in flight over its
/// latency (Little's law), at most a line per cycle.
pub fn cache_levels(cpu: &CpuSpec) -> Vec<CacheLevel> {
    const LINE: u64 = 64;
    let hz = cpu.clock.hz();
    let level = |name: &'static str, c: &CacheSpec, shared: bool| {
        let little = cpu.max_outstanding_misses as u64 * LINE * hz / c.latency_cycles.max(1) as u64;
        let bandwidth = c.bandwidth.unwrap_or(Bandwidth::from_bytes_per_s(little.min(LINE * hz)));
        CacheLevel { name, size: c.size.get(), shared, bandwidth }
    };
    let mut levels = vec![level("l1d", &cpu.l1d, false), level("l2", &cpu.l2, false)];
    levels.extend(cpu.llc.as_ref().map(|c| level("llc", c, true)));
    levels
}

type AddLink<'a> = dyn FnMut(
        &mut SystemBuilder<Msg>,
        &mut RoutesBuilder,
        &mut EnergyModel,
        String,
        &'static str,
        Bandwidth,
        Time,
        f64,
        usize,
        usize,
    ) + 'a;

#[allow(clippy::too_many_arguments)]
fn card_links(
    builder: &mut SystemBuilder<Msg>,
    fabric: &mut RoutesBuilder,
    energy: &mut EnergyModel,
    card: &CardSpec,
    (n, c): (u32, u32),
    chiplets: &[usize],
    switch: usize,
    peer_switch: Option<usize>,
    add_link: &mut AddLink<'_>,
) {
    let pcie = &card.host_link;
    let lat = pcie.latency.time();
    for p in 0..pcie.ports {
        let at = chiplets[(p * card.chiplets / pcie.ports) as usize];
        let pj = pcie.energy_per_bit.pj_per_bit();
        add_link(
            builder,
            fabric,
            energy,
            format!("node{n}.card{c}.pcie{p}.up"),
            "link.pcie",
            pcie.port_bandwidth(),
            lat,
            pj,
            at,
            switch,
        );
        add_link(
            builder,
            fabric,
            energy,
            format!("node{n}.card{c}.pcie{p}.down"),
            "link.pcie",
            pcie.port_bandwidth(),
            lat,
            pj,
            switch,
            at,
        );
    }
    if let (Some(peer), Some(ps)) = (&card.peer_link, peer_switch) {
        let pj = peer.energy_per_bit.pj_per_bit();
        add_link(
            builder,
            fabric,
            energy,
            format!("node{n}.card{c}.peer.up"),
            "link.peer",
            peer.bandwidth,
            peer.latency.time(),
            pj,
            chiplets[0],
            ps,
        );
        add_link(
            builder,
            fabric,
            energy,
            format!("node{n}.card{c}.peer.down"),
            "link.peer",
            peer.bandwidth,
            peer.latency.time(),
            pj,
            ps,
            chiplets[0],
        );
    }
    let Some(d2d) = &card.d2d else { return };
    let count = chiplets.len() as u32;
    let mut pairs: Vec<(u32, u32)> = Vec::new();
    match d2d.topology {
        D2dTopology::Mesh => {
            let cols = d2d.columns.max(1);
            for k in 0..count {
                if (k + 1) % cols != 0 && k + 1 < count {
                    pairs.push((k, k + 1));
                }
                if k + cols < count {
                    pairs.push((k, k + cols));
                }
            }
        }
        D2dTopology::Ring => {
            pairs.extend((0..count).filter(|_| count > 1).map(|k| (k, (k + 1) % count)).filter(|(a, b)| a != b))
        }
        D2dTopology::AllToAll => {
            for a in 0..count {
                pairs.extend((a + 1..count).map(|b| (a, b)));
            }
        }
    }
    pairs.sort_unstable();
    pairs.dedup();
    let pj = d2d.energy_per_bit.pj_per_bit();
    for (a, b) in pairs {
        let (va, vb) = (chiplets[a as usize], chiplets[b as usize]);
        add_link(
            builder,
            fabric,
            energy,
            format!("node{n}.card{c}.d2d.{a}-{b}"),
            "link.d2d",
            d2d.bandwidth,
            d2d.latency.time(),
            pj,
            va,
            vb,
        );
        add_link(
            builder,
            fabric,
            energy,
            format!("node{n}.card{c}.d2d.{b}-{a}"),
            "link.d2d",
            d2d.bandwidth,
            d2d.latency.time(),
            pj,
            vb,
            va,
        );
    }
}

/// Add a chiplet's device memory, modelled as `model` says, at `path`.
pub fn add_memory(builder: &mut SystemBuilder<Msg>, path: &str, mem: &MemorySpec, model: MemoryModel) -> ComponentId {
    let timing = mem.timing.resolve().expect("validated specs resolve their timing");
    let organization = mem.organization();
    let mapping = mem.address_mapping.resolve(&organization).expect("validated specs resolve their mapping");
    match model {
        MemoryModel::Channel => {
            let pcs = mem.pseudo_channel_count();
            builder.add(
                path,
                ChannelMemory::new(ChannelMemoryConfig {
                    class: "memory.hbm",
                    channels: pcs,
                    channel_bandwidth: mem.peak_bandwidth().divided(pcs as u64),
                    interleave: mapping.interleave_bursts * mem.burst_bytes(),
                    page_size: mem.page_size.get(),
                    // An access to a closed row: activate, then the read command's
                    // latency, behind the controller's own pipeline.
                    latency: mem.controller.latency.time() + timing.t_rcd + timing.t_cl,
                    refresh: Some(Refresh { interval: timing.t_refi, duration: timing.t_rfc }),
                }),
            )
        }
        MemoryModel::Detailed => builder.add(
            path,
            Hbm::new(HbmConfig {
                class: "memory.hbm",
                timing,
                mapping,
                organization,
                burst_bytes: mem.burst_bytes(),
                controller: mem.controller.clone(),
            }),
        ),
    }
}

/// The energy of a chiplet memory's actions (background power is static, charged separately).
pub fn memory_energy(mem: &MemorySpec) -> Vec<ActionEnergy> {
    let e = &mem.energy;
    vec![
        ActionEnergy::new("actions.read_bits", "memory.hbm", e.read.pj_per_bit() * 1e-12),
        ActionEnergy::new("actions.write_bits", "memory.hbm", e.write.pj_per_bit() * 1e-12),
        ActionEnergy::new("actions.activate", "memory.hbm", e.activate.pj() * 1e-12),
        ActionEnergy::new("actions.refresh", "memory.hbm", e.refresh.pj() * 1e-12),
    ]
}

fn chiplet(
    builder: &mut SystemBuilder<Msg>,
    energy: &mut EnergyModel,
    spec: &ChipletSpec,
    prefix: &str,
    sequencer: ComponentId,
    (node, card, chiplet): (u32, u32, u32),
    options: Options,
) -> DeviceIds {
    let memory_path = format!("{prefix}.memory");
    let memory = add_memory(builder, &memory_path, &spec.memory, options.memory_model);
    energy.actions(&memory_path, memory_energy(&spec.memory));

    let sram = &spec.shared_sram;
    let shared_path = format!("{prefix}.shared_sram");
    let shared = builder.add(
        shared_path.clone(),
        ChannelMemory::new(ChannelMemoryConfig {
            class: "memory.sram",
            channels: spec.cores,
            channel_bandwidth: sram.bandwidth.divided(spec.cores as u64),
            interleave: SHARED_SRAM_INTERLEAVE,
            page_size: 4096,
            latency: sram.latency.time(),
            refresh: None,
        }),
    );
    let sram_pj = sram.energy_per_bit.pj_per_bit() * 1e-12;
    energy.actions(
        &shared_path,
        vec![
            ActionEnergy::new("actions.read_bits", "npu.shared_sram", sram_pj),
            ActionEnergy::new("actions.write_bits", "npu.shared_sram", sram_pj),
        ],
    );

    let core_ids: Vec<ComponentId> = (0..spec.cores).map(|i| builder.reserve(format!("{prefix}.core{i}"))).collect();
    let peers: std::sync::Arc<[ComponentId]> = core_ids.clone().into();
    let network = network(builder, energy, spec, prefix, (&core_ids, memory, shared));
    let core = &spec.core;
    let cfg = CoreConfig {
        clock: spec.clock.clock(),
        matrix: MatrixShape::from_spec(&spec.core.matrix),
        vector: VectorShape {
            lanes: core.vector.lanes,
            transcendental_cycles: core.vector.transcendental_cycles,
            pipeline_cycles: core.vector.pipeline_cycles,
        },
        scratchpad_bytes: core.scratchpad.size.get(),
        accumulator_bytes: core.matrix.accumulators.map_or(0, |a| a.get()),
        port_bytes_per_cycle: core.scratchpad.banks as u64 * core.scratchpad.bank_width.get(),
        queue_depth: [core.dma.queue_depth, core.queue_depth, core.queue_depth, core.queue_depth],
        dma_max_outstanding: core.dma.max_outstanding,
        dma_transaction: core.dma.transaction_size.get(),
        memory,
        shared,
        peers,
        index: 0,
        network,
        compute_only: options.compute_only,
    };
    let en = &spec.energy;
    let mut core_energy: Vec<ActionEnergy> = Dtype::ALL
        .iter()
        .filter_map(|d| {
            en.mac.get(d).map(|pj| ActionEnergy::new(format!("actions.mac.{d}"), "npu.matrix", pj.pj() * 1e-12))
        })
        .collect();
    core_energy.push(ActionEnergy::new("actions.vector_op", "npu.vector", en.vector_op.pj() * 1e-12));
    core_energy.push(ActionEnergy::new("actions.sram_bits", "npu.sram", en.sram.pj_per_bit() * 1e-12));
    for (i, &id) in core_ids.iter().enumerate() {
        energy.actions(&format!("{prefix}.core{i}"), core_energy.clone());
        let mut cfg = cfg.clone();
        cfg.index = i as u16;
        builder.place(id, Core::new(cfg)).expect("each core slot is placed once");
    }
    let cores = core_ids;
    DeviceIds { node, card, chiplet, sequencer, cores, memory, shared, network }
}

/// The chiplet's network, with its cores, memory ports and shared SRAM attached where the spec places them.
fn network(
    builder: &mut SystemBuilder<Msg>,
    energy: &mut EnergyModel,
    spec: &ChipletSpec,
    prefix: &str,
    (cores, memory, shared): (&[ComponentId], ComponentId, ComponentId),
) -> ComponentId {
    let noc = &spec.noc;
    let mem = &spec.memory;
    let mapping = mem.address_mapping.resolve(&mem.organization()).expect("validated specs resolve their mapping");
    let mut attachments: Vec<Attachment> = cores
        .iter()
        .zip(noc.core_routers(spec.cores))
        .map(|(&component, router)| Attachment { component, routers: vec![router], granule: 1 })
        .collect();
    attachments.push(Attachment {
        component: memory,
        routers: noc.memory_routers(),
        granule: mapping.interleave_bursts * mem.burst_bytes(),
    });
    attachments.push(Attachment { component: shared, routers: noc.sram_routers(), granule: SHARED_SRAM_INTERLEAVE });
    let path = format!("{prefix}.noc");
    let id = builder.add(
        path.clone(),
        TransactionNetwork::new(TransactionNetworkConfig {
            topology: noc.topology(),
            router_cycles: noc.router_latency_cycles,
            link_cycles: noc.link_latency_cycles,
            flit_bytes: noc.link_width.get(),
            clock: noc.clock.clock(),
            attachments,
        }),
    );
    let pj = spec.energy.noc_hop.pj_per_bit() * 1e-12;
    energy.actions(&path, vec![ActionEnergy::new("actions.noc_bits", "npu.noc", pj)]);
    id
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::presets::load_preset;

    #[test]
    fn the_default_node_is_fully_connected() {
        let spec = load_preset("sovereign-node").unwrap();
        let mut b = SystemBuilder::new();
        let m = build(&spec, &mut b);
        assert_eq!(m.devices.len(), 32);
        assert_eq!(m.devices[5].cores.len(), 16);
        for d in 0..32 {
            assert!(m.routes.get(Endpoint::Host(0), Endpoint::Device(d)).is_some());
            assert!(m.routes.get(Endpoint::Device(d), Endpoint::Host(0)).is_some());
            for e in 0..32 {
                assert_eq!(m.routes.get(Endpoint::Device(d), Endpoint::Device(e)).is_some(), d != e);
            }
        }
        // Within a card chiplets talk over UCIe (one hop in the 2x2 mesh, two diagonally).
        assert_eq!(m.routes.get(Endpoint::Device(0), Endpoint::Device(1)).unwrap().links.len(), 1);
        assert_eq!(m.routes.get(Endpoint::Device(0), Endpoint::Device(3)).unwrap().links.len(), 2);
        // Between cards through the PCIe switch.
        let r = m.routes.get(Endpoint::Device(0), Endpoint::Device(4)).unwrap();
        assert_eq!(r.links.len(), 2);
    }

    #[test]
    fn gpus_talk_over_nvlink() {
        let spec = load_preset("h100-node").unwrap();
        let mut b = SystemBuilder::new();
        let m = build(&spec, &mut b);
        assert_eq!(m.devices.len(), 8);
        let r = m.routes.get(Endpoint::Device(0), Endpoint::Device(7)).unwrap();
        assert_eq!(r.latency, Time::from_ns(1000), "two NVLink hops of 500 ns");
    }
}
