//! Collectives run as transfers on the links, against the bandwidth bound.

use npusim_tests::{hardware, npusim};
use workloads::collective::{Algorithm, CollectiveOp};
use workloads::micro::{CollectiveBench, CollectiveRun, collective};

fn all_reduce(hw: &str, devices: Option<Vec<u32>>, bytes: u64) -> CollectiveRun {
    let bench = CollectiveBench { op: CollectiveOp::AllReduce, algorithm: Some(Algorithm::Ring), bytes, devices };
    collective(&hardware(hw), &bench).expect("the collective runs")
}

/// A ring all-reduce sends 2(P - 1)/P of the buffer out of every device, so
/// over links of bandwidth B it takes at least 2(P - 1)/P · N / B; for a
/// large buffer the links' latency and the first chunk's store-and-forward
/// are small beside it.
#[test]
fn a_ring_all_reduce_takes_its_bandwidth_bound_and_little_more() {
    let cases: [(&str, Option<Vec<u32>>, f64); 3] = [
        // The four chiplets of a card, around their 2 x 2 die-to-die mesh.
        ("rebel-quad", Some(vec![0, 1, 3, 2]), 1e12),
        // One chiplet per card, through each card's PCIe 5.0 x16 port and the
        // switch: 32 GT/s a lane, 16 lanes, 128b/130b encoding, one direction.
        ("sovereign-node", Some(vec![0, 4, 8, 12, 16, 20, 24, 28]), 32e9 * 16.0 * 128.0 / 130.0 / 8.0),
        // Eight GPUs through the NVLink switch.
        ("h100-node", None, 450e9),
    ];
    for (hw, devices, link) in cases {
        let p = devices.as_ref().map_or(8, Vec::len) as f64;
        for bytes in [1u64 << 10, 1 << 20, 256 << 20] {
            let run = all_reduce(hw, devices.clone(), bytes);
            // Rates are kept in whole bits per second (a lane's, for PCIe).
            assert!(
                (run.link_bandwidth_bytes_per_s - link).abs() <= 1e-9 * link,
                "{hw}: {}",
                run.link_bandwidth_bytes_per_s
            );
            let bound = 2.0 * (p - 1.0) / p * bytes as f64 / run.link_bandwidth_bytes_per_s;
            assert!((run.lower_bound_seconds - bound).abs() <= 1e-12 * bound.max(1.0), "{hw}");
            assert!(run.seconds >= bound, "{hw}, {bytes} B: {} s beats the bound {bound} s", run.seconds);
            if bytes >= 256 << 20 {
                assert!(run.seconds <= 1.15 * bound, "{hw}: {} s against a bound of {bound} s", run.seconds);
            }
        }
    }
}

#[test]
fn a_ring_whose_hops_share_links_is_slower() {
    // One chiplet of each of four cards: each hop has its card's PCIe port
    // to itself. Two chiplets of each of two cards: two hops leave each card
    // through the same port, which then carries twice the bytes.
    let apart = all_reduce("sovereign-node", Some(vec![0, 4, 8, 12]), 64 << 20);
    let shared = all_reduce("sovereign-node", Some(vec![0, 4, 1, 5]), 64 << 20);
    assert!(shared.seconds > 1.8 * apart.seconds, "{} s against {} s", shared.seconds, apart.seconds);
    let busiest = |r: &CollectiveRun| r.links.iter().map(|l| l.bytes).max().unwrap_or(0);
    assert_eq!(busiest(&shared), 2 * busiest(&apart));
}

#[test]
fn every_collective_moves_the_bytes_it_must() {
    for (op, name) in [
        (CollectiveOp::AllReduce, "allreduce"),
        (CollectiveOp::AllGather, "allgather"),
        (CollectiveOp::ReduceScatter, "reducescatter"),
        (CollectiveOp::AllToAll, "alltoall"),
    ] {
        let out = npusim(&["micro", "collective", "--hw", "rebel-quad", "--op", name, "--bytes", "4 MiB", "--json"]);
        assert_eq!(out.status, 0, "{}", out.stderr);
        let run: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
        // Every device sends the op's share of the buffer; on one-hop routes each byte crosses one link.
        let carried: u64 =
            run["links"].as_array().expect("links").iter().map(|l| l["bytes"].as_u64().unwrap_or(0)).sum();
        let expected = op.bus_factor(4) * (4 << 20) as f64 * 4.0;
        if op != CollectiveOp::AllToAll {
            assert_eq!(carried as f64, expected, "{name}");
        } else {
            // Diagonal transfers cross two links.
            assert!(carried as f64 > expected, "{name}");
        }
    }
    let out = npusim(&[
        "micro",
        "collective",
        "--hw",
        "rebel-quad",
        "--op",
        "allreduce",
        "--bytes",
        "1 MiB",
        "--devices",
        "0,9",
    ]);
    assert_eq!(out.status, 2);
    assert!(out.stderr.contains("device 9 does not exist"), "{}", out.stderr);
}

#[test]
fn nodes_talk_through_their_network_interfaces() {
    let dir = npusim_tests::scratch("pod");
    let path = dir.join("pod.toml");
    let text = "base = \"rebel-quad\"\nname = \"two-quads\"\nnodes = 2\n\n[network]\nbandwidth = \"50 GB/s\"\n\
                nic_latency = \"1 us\"\nhops = 3\nswitch_latency = \"500 ns\"\nenergy_per_bit = \"10 pJ/bit\"\n";
    std::fs::write(&path, text).expect("writes");
    let spec = models::presets::load_system(path.to_str().expect("utf-8"), text).expect("the spec loads");
    let mut builder = sim_core::SystemBuilder::new();
    let machine = models::machine::build(&spec, &mut builder);
    // Chiplet 0 of each node: down PCIe, out the NIC, three switches, in the far NIC, up PCIe.
    let route = machine.routes.get(models::fabric::Endpoint::Device(0), models::fabric::Endpoint::Device(4));
    let pcie = spec.node.card.as_ref().expect("a card").host_link.latency.time();
    let expected = sim_core::Time::from_ns(1000 + 3 * 500 + 1000) + pcie + pcie;
    assert!(route.is_some_and(|r| r.latency == expected && r.links.len() == 4), "{route:?}");
    let bench = CollectiveBench {
        op: CollectiveOp::AllReduce,
        algorithm: Some(Algorithm::Ring),
        bytes: 64 << 20,
        devices: Some(vec![0, 4]),
    };
    let run = collective(&spec, &bench).expect("runs");
    assert_eq!(run.link_bandwidth_bytes_per_s, 50e9);
    let bound = (64u64 << 20) as f64 / 50e9;
    assert!(run.seconds >= bound && run.seconds <= 1.15 * bound, "{} s against {bound} s", run.seconds);
    assert!(run.links.iter().any(|l| l.class == "link.network" && l.busy_fraction > 0.9));
}
