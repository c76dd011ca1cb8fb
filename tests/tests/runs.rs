//! Whole runs: determinism, and the hardware changes a decode step must feel.

use isa::Dtype;
use npusim_tests::{axk1_decode, file, hardware, mean_step, npusim};
use reports::Report;

#[test]
fn the_same_inputs_and_seed_give_byte_identical_json() {
    let (hw, w) = (hardware("sovereign-node"), axk1_decode(2));
    let a = Report::new(&workloads::run(&hw, &w, 11).unwrap(), 0.0).to_json();
    let b = Report::new(&workloads::run(&hw, &w, 11).unwrap(), 0.0).to_json();
    assert_eq!(a, b);
    // And a different seed routes tokens differently, which shows.
    let c = Report::new(&workloads::run(&hw, &w, 12).unwrap(), 0.0).to_json();
    assert_ne!(a, c);
}

#[test]
fn the_command_line_json_is_byte_identical_between_runs() {
    let workload = file("w.toml", "base = \"axk1-decode\"\n[scenario]\noutput_tokens = 1\n");
    let a = npusim(&["run", "--json", "--workload", &workload]);
    let b = npusim(&["run", "--json", "--workload", &workload]);
    assert_eq!(a.status, 0, "{}", a.stderr);
    assert!(a.stdout == b.stdout, "two runs of the same inputs and seed differ");
}

#[test]
fn halving_hbm_bandwidth_lengthens_the_decode_step() {
    let w = axk1_decode(1);
    let base = hardware("sovereign-node");
    let mut slow = base.clone();
    let memory = &mut slow.node.card.as_mut().unwrap().chiplet.memory;
    memory.pin_rate = models::units::Bandwidth::from_bits_per_s(memory.pin_rate.bits_per_s() / 2);
    let fast_step = mean_step(&workloads::run(&base, &w, 1).unwrap());
    let slow_step = mean_step(&workloads::run(&slow, &w, 1).unwrap());
    // Decode streams weights: with half the bandwidth a step takes far longer (not
    // quite twice: host work and latencies do not stretch).
    assert!(slow_step > 1.6 * fast_step, "{fast_step} s -> {slow_step} s");
}

#[test]
fn doubling_the_npus_at_fixed_batch_shortens_the_decode_step() {
    let w = axk1_decode(1);
    let base = hardware("sovereign-node");
    let mut big = base.clone();
    big.node.cards *= 2;
    let small_step = mean_step(&workloads::run(&base, &w, 1).unwrap());
    let big_step = mean_step(&workloads::run(&big, &w, 1).unwrap());
    assert!(big_step < 0.9 * small_step, "{small_step} s -> {big_step} s");
}

#[test]
fn each_energy_part_is_the_specs_price_times_what_the_run_did() {
    let (hw, w) = (hardware("sovereign-node"), axk1_decode(2));
    let result = workloads::run(&hw, &w, 3).unwrap();
    let report = Report::new(&result, 0.0);
    assert_eq!(report.tokens_generated, 64 * 2);
    let part = |name: &str| report.energy_j.breakdown[name];
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs().max(1e-30);
    // Idle power is drawn for the whole simulated time, by every card, every
    // HBM stack and the host CPU.
    let seconds = report.simulated_seconds;
    let card = hw.node.card.as_ref().unwrap();
    let cards = hw.node.cards as f64;
    let stacks = cards * (card.chiplets * card.chiplet.memory.stacks) as f64;
    assert!(close(part("static.npu"), cards * card.power.idle.watts() * seconds));
    assert!(close(part("static.memory"), stacks * card.chiplet.memory.energy.background_per_stack.watts() * seconds));
    assert!(close(part("static.cpu"), hw.node.cpu.power.idle.watts() * seconds));
    // HBM: the bits read and written at their prices, plus row activations
    // and refreshes, which a decode step's streaming keeps small.
    let e = &card.chiplet.memory.energy;
    let bits = |key: &str| report.traffic_bytes[key] as f64 * 8.0;
    let moved = (bits("hbm_read") * e.read.pj_per_bit() + bits("hbm_write") * e.write.pj_per_bit()) * 1e-12;
    assert!(part("memory.hbm") >= moved && part("memory.hbm") < 1.5 * moved, "{} J vs {moved} J", part("memory.hbm"));
    // The accelerators' share is the parts on the cards.
    let on_cards: f64 =
        report.energy_j.breakdown.iter().filter(|(name, _)| models::energy::is_accelerator(name)).map(|(_, j)| j).sum();
    assert!(close(report.energy_j.accelerators, on_cards));
    assert!(close(report.joules_per_token, report.energy_j.total / 128.0));
}

#[test]
fn axk1_in_fp8_fits_the_sovereign_node_with_its_cache() {
    // A.X K1's 519 B parameters (docs/reference.md C) at one byte each, spread over
    // 32 chiplets with the default workload's KV cache (64 x 2,048 tokens of
    // MLA latent), within each chiplet's 36 GB.
    let report = Report::new(&workloads::run(&hardware("sovereign-node"), &axk1_decode(1), 1).unwrap(), 0.0);
    let m = &report.memory_per_chiplet_bytes;
    assert_eq!(m.capacity, 36_000_000_000);
    assert!(m.weights * 32 >= 519_000_000_000, "{} B of weights a chiplet", m.weights);
    assert!(m.weights + m.kv_cache <= m.capacity, "{m:?}");
    let model = workloads::model::model_preset("axk1").unwrap();
    let per_token = model.kv_bytes_per_token(isa::Dtype::Bf16);
    assert!(m.kv_cache >= 64 * 2049 * per_token / 32, "{} B of cache a chiplet", m.kv_cache);
}

#[test]
fn the_report_accounts_for_every_memory_channel_and_link() {
    let (hw, w) = (hardware("sovereign-node"), axk1_decode(1));
    let report = Report::new(&workloads::run(&hw, &w, 3).unwrap(), 0.0);
    let c = &report.components;
    // Every chiplet's memory, channel by channel, adds up to the traffic.
    assert_eq!(c.memories.len(), 32);
    let channel_bytes: u64 = c.memories.iter().flat_map(|m| &m.channel_bytes).sum();
    assert_eq!(channel_bytes, report.traffic_bytes["hbm_read"] + report.traffic_bytes["hbm_write"]);
    assert!(c.memories.iter().all(|m| m.channel_bytes.len() == 32 && m.channel_busy_fraction.len() == 32));
    // Every link, one by one, adds up to its class's traffic.
    for (class, key) in [("link.d2d", "d2d"), ("link.pcie", "pcie")] {
        let bytes: u64 = c.links.iter().filter(|l| l.class == class).map(|l| l.bytes).sum();
        assert_eq!(bytes, report.traffic_bytes[key], "{class}");
    }
    // Every chiplet's network carried what its memory moved, and more (activations between cores).
    assert_eq!(c.networks.len(), 32);
    for (n, m) in c.networks.iter().zip(&c.memories) {
        assert!(n.bytes >= m.read_bytes + m.write_bytes, "{} carried {} B", n.path, n.bytes);
        assert!(n.link_busy_max >= n.link_busy_mean && n.link_busy_max <= 1.0);
    }
    let fractions = c
        .links
        .iter()
        .map(|l| l.busy_fraction)
        .chain(c.memories.iter().flat_map(|m| m.channel_busy_fraction.iter().copied()));
    assert!(fractions.into_iter().all(|f| (0.0..=1.0).contains(&f)));
}

#[test]
fn sampling_on_the_device_sends_only_the_candidates_to_the_host() {
    let hw = hardware("sovereign-node");
    let mut host = axk1_decode(1);
    host.spec.scenario.batch = 1;
    let mut device = host.clone();
    device.spec.scenario.sampling = workloads::workload::Sampling::Device;
    let pcie = |w: &workloads::Workload| Report::new(&workloads::run(&hw, w, 5).unwrap(), 0.0).traffic_bytes["pcie"];
    // Host sampling ships the whole vocabulary in BF16; device sampling 50 candidates
    // of 8 bytes from each of 32 chiplets. Each byte crosses two PCIe links (card, host).
    let logits = 163_840 * 2;
    let candidates = 32 * 50 * 8;
    assert_eq!(pcie(&host) - pcie(&device), 2 * (logits - candidates));
}

/// Kernel replay (the default) against simulating every kernel in place, on
/// A.X K1 cut to 6 layers (1 dense, 5 MoE) so that the full simulation stays
/// short. Replay starts each kernel from idle hardware and runs a chiplet's
/// kernels one after another, and stands decode's expert GEMMs for each
/// other by their count of experts and most rows; the bound below is what
/// that costs.
#[test]
fn replaying_kernels_stays_close_to_simulating_them_all() {
    let mut w = axk1_decode(2);
    w.model.layers = 6;
    let replayed = hardware("sovereign-node");
    let mut full = replayed.clone();
    full.simulation.replay_kernels = false;
    let a = workloads::run(&replayed, &w, 4).unwrap();
    let b = workloads::run(&full, &w, 4).unwrap();
    let (ra, rb) = (Report::new(&a, 0.0), Report::new(&b, 0.0));
    let close = |x: f64, y: f64, within: f64| (x - y).abs() <= within * y;
    assert!(
        close(mean_step(&a), mean_step(&b), 0.03),
        "step {} s replayed, {} s in full",
        mean_step(&a),
        mean_step(&b)
    );
    assert!(
        close(ra.energy_j.total, rb.energy_j.total, 0.02),
        "{} J against {} J",
        ra.energy_j.total,
        rb.energy_j.total
    );
    let hbm = |r: &Report| (r.traffic_bytes["hbm_read"] + r.traffic_bytes["hbm_write"]) as f64;
    assert!(close(hbm(&ra), hbm(&rb), 0.01), "{} B against {} B of HBM traffic", hbm(&ra), hbm(&rb));
    for class in ["npu.matrix", "npu.dma", "memory.hbm", "noc.link"] {
        assert!(
            close(ra.utilization[class], rb.utilization[class], 0.05),
            "{class}: {} against {}",
            ra.utilization[class],
            rb.utilization[class]
        );
    }
    // Replay runs far fewer events.
    assert!(a.events * 5 < b.events, "{} events replayed, {} in full", a.events, b.events);
}

#[test]
fn accelerator_energy_is_the_cards_and_a_card_over_its_tdp_is_reported() {
    let w = axk1_decode(1);
    let report = Report::new(&workloads::run(&hardware("sovereign-node"), &w, 3).unwrap(), 0.0);
    // The host's parts are the rest: its idle power and cores, DRAM, PCIe.
    let host: f64 = ["static.cpu", "cpu.cores", "cpu.dram", "link.pcie"]
        .iter()
        .filter_map(|p| report.energy_j.breakdown.get(*p))
        .sum();
    assert!(host > 0.0);
    assert!((report.energy_j.accelerators + host - report.energy_j.total).abs() < 1e-9 * report.energy_j.total);
    let card = report.card_power.clone().unwrap();
    assert!(card.average_w > 0.0 && !card.over_tdp, "{card:?}");
    // A spec whose MAC energy is 100 times too high draws more than the TDP, and the summary says so.
    let mut hot = hardware("sovereign-node");
    let mac = &mut hot.node.card.as_mut().unwrap().chiplet.energy.mac;
    *mac = mac.iter().map(|(d, e)| (*d, models::units::Energy::from_pj(e.pj() * 100.0))).collect();
    let hot_report = Report::new(&workloads::run(&hot, &w, 3).unwrap(), 0.0);
    let hot_card = hot_report.card_power.clone().unwrap();
    assert!(hot_card.over_tdp && hot_card.average_w > card.average_w, "{hot_card:?}");
    assert!(reports::summary(&hot_report).contains("over its 600 W TDP"));
}

#[test]
fn op_dtypes_set_the_gemms_and_the_attention_apart() {
    // FP8 GEMMs beside BF16 attention, as DeepSeek serves: A.X K1's step on sovereign-node.
    let mut w = axk1_decode(1);
    w.spec.scenario.activation_dtype = Dtype::Bf16;
    w.spec.scenario.op_dtypes = workloads::workload::OpDtypes { gemm: Some(Dtype::Fp8), attention: None };
    let hw = hardware("sovereign-node");
    let step = workloads::record_step(&hw, &w, 1, 0).unwrap();
    let kernels: Vec<&workloads::graph::Kernel> = step
        .graph
        .ops
        .iter()
        .filter_map(|o| match &o.body {
            workloads::graph::OpBody::Compute(shards) => shards.first().map(|s| &s.kernel),
            _ => None,
        })
        .collect();
    use workloads::graph::Kernel::{Attention, Gemm};
    assert!(kernels.iter().any(|k| matches!(k, Gemm { .. })));
    for k in &kernels {
        match k {
            Gemm { dtype, .. } => assert_eq!(*dtype, Dtype::Fp8, "{k:?}"),
            Attention { dtype, .. } => assert_eq!(*dtype, Dtype::Bf16, "{k:?}"),
            _ => {}
        }
    }
    // FP8 inputs halve the GEMMs' input bytes: the step is no slower than all-BF16.
    let (mixed, bf16) = (workloads::run(&hw, &w, 1).unwrap(), {
        w.spec.scenario.op_dtypes = Default::default();
        workloads::run(&hw, &w, 1).unwrap()
    });
    assert!(mixed.simulated <= bf16.simulated, "{} against {}", mixed.simulated, bf16.simulated);
    // A dtype the hardware lacks is named by its field.
    let spec = file("w.toml", "base = \"axk1-decode\"\n[scenario]\nop_dtypes = { attention = \"int32\" }\n");
    let o = npusim(&["run", "--workload", &spec]);
    assert_eq!(o.status, 2, "{}", o.stderr);
    assert!(o.stderr.contains("scenario.op_dtypes.attention = int32"), "{}", o.stderr);
}
