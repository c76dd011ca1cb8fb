//! The NPU core against first principles: closed-form cycle counts, physical
//! bounds, conservation, and the figures the core issue asks of a REBEL-Quad chiplet.

use isa::Dtype;
use models::npu::MatrixShape;
use models::spec::{Dataflow, SystemSpec};
use npusim_tests::hardware;
use workloads::micro::{GemmBench, gemm};

fn with_dataflow(dataflow: Dataflow) -> SystemSpec {
    let mut spec = hardware("rebel-quad");
    spec.node.card.as_mut().expect("rebel-quad has a card").chiplet.core.matrix.dataflow = dataflow;
    spec
}

/// The cycles one core takes for a GEMM in compute-only mode, derived from
/// the pipeline rules of the matrix engine (models::npu::timing) and the
/// order the lowering emits a core's program in: tiles of output blocks of
/// `bm × bn` in row-major order, each block streaming the reduction in tiles
/// of `kt` and ending with a store; two alternating buffers each for inputs,
/// weights and accumulators; each tile's loads emitted before the previous
/// tile's matmul and store (software pipelining).
///
/// - Tile `t` starts streaming at `max(end(t−1), ready(t) + fill)` and
///   streams `tiles · period` cycles.
/// - Loads and stores take no time here. Tile `t`'s loads reuse the buffers
///   tile `t−2` read, so they wait until it has finished reading: `end(t−2)`.
///   In the in-order DMA queue they sit behind tile `t−2`'s store, if it ends
///   a block, which waits for its results: `end(t−2) + drain`. (An
///   accumulator is reused two blocks later, no earlier than that.)
/// - The GEMM ends when the last result is visible: `end(last) + drain`.
fn closed_form(shape: &MatrixShape, m: u64, n: u64, k: u64, bm: u64, bn: u64, kt: u64) -> u64 {
    // Per tile: (timing, whether it ends a block).
    let mut tiles = Vec::new();
    for r0 in (0..m).step_by(bm as usize) {
        for c0 in (0..n).step_by(bn as usize) {
            let (mc, nc) = (bm.min(m - r0), bn.min(n - c0));
            for k0 in (0..k).step_by(kt as usize) {
                let kc = kt.min(k - k0);
                tiles.push((
                    shape.timing(mc as u32, nc as u32, kc as u32, Dtype::Fp8).expect("fp8 is supported"),
                    k0 + kc == k,
                ));
            }
        }
    }
    let mut end: Vec<u64> = Vec::with_capacity(tiles.len());
    for (t, (timing, _)) in tiles.iter().enumerate() {
        let ready = if t >= 2 { end[t - 2] + if tiles[t - 2].1 { timing.drain } else { 0 } } else { 0 };
        let previous = if t >= 1 { end[t - 1] } else { 0 };
        let start = previous.max(ready + timing.fill);
        end.push(start + timing.tiles * timing.period);
    }
    end.last().copied().unwrap_or(0) + tiles.last().map_or(0, |t| t.0.drain)
}

const SHAPES: [(u32, u32, u32); 22] = [
    (1, 64, 128),
    (1, 7168, 512),
    (2, 1536, 7168),
    (3, 100, 300),
    (4, 576, 7168),
    (5, 1000, 1000),
    (7, 4096, 2048),
    (8, 130, 260),
    (12, 2048, 7168),
    (16, 7168, 2048),
    (16, 65, 129),
    (33, 333, 777),
    (64, 64, 64),
    (100, 200, 300),
    (128, 4096, 512),
    (255, 257, 513),
    (256, 256, 8192),
    (512, 7168, 1536),
    (1000, 1000, 1000),
    (1024, 1024, 1024),
    (2048, 2048, 2048),
    (4096, 512, 4096),
];

#[test]
fn compute_only_cycles_equal_the_closed_form_for_every_dataflow() {
    for dataflow in [Dataflow::WeightStationary, Dataflow::OutputStationary, Dataflow::InputStationary] {
        let spec = with_dataflow(dataflow);
        let shape = MatrixShape::from_spec(&spec.node.card.as_ref().unwrap().chiplet.core.matrix);
        for (m, n, k) in SHAPES {
            let run =
                gemm(&spec, GemmBench { m, n, k, dtype: Dtype::Fp8, cores: Some(1), compute_only: true }).unwrap();
            let p = run.plan;
            let expected = closed_form(&shape, m as u64, n as u64, k as u64, p.block_m, p.block_n, p.tile_k);
            assert_eq!(
                run.run.cycles, expected,
                "{dataflow:?} {m}x{n}x{k} tiled {}x{}x{}",
                p.block_m, p.block_n, p.tile_k
            );
            // And the closed form itself never beats the array's peak.
            let peak_cycles = (m as u64 * n as u64 * k as u64).div_ceil(64 * 64 * 2);
            assert!(expected >= peak_cycles);
        }
    }
}

/// A few dozen shapes from a fixed pseudo-random sequence.
fn shapes(count: usize) -> Vec<(u32, u32, u32)> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = |lo: u32, hi: u32| {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        lo + ((state >> 33) % (hi - lo + 1) as u64) as u32
    };
    (0..count).map(|_| (next(1, 1500), next(16, 6000), next(16, 6000))).collect()
}

#[test]
fn no_gemm_beats_its_physical_bounds_and_everything_is_conserved() {
    let spec = hardware("rebel-quad");
    let chiplet = &spec.node.card.as_ref().unwrap().chiplet;
    let peak_flops = chiplet.peak_flops(Dtype::Fp8);
    let peak_bytes = chiplet.memory.peak_bandwidth().bytes_per_s();
    let target = workloads::micro::core_target(&spec, None).unwrap();
    for (m, n, k) in shapes(12) {
        let run = gemm(&spec, GemmBench { m, n, k, dtype: Dtype::Fp8, cores: None, compute_only: false }).unwrap();
        let r = &run.run;
        let flops = 2.0 * m as f64 * n as f64 * k as f64;
        assert!(r.seconds >= flops / peak_flops, "{m}x{n}x{k} beat the compute peak");
        let moved = (r.memory_read_bytes + r.memory_write_bytes) as f64;
        assert!(r.seconds >= moved / peak_bytes, "{m}x{n}x{k} beat the memory peak");
        // Every instruction of the lowered programs retired, and memory served exactly the bytes they asked for.
        let kernel =
            workloads::graph::Kernel::Gemm { rows: vec![m], n, k, weight_dtype: Dtype::Fp8, dtype: Dtype::Fp8 };
        let programs = workloads::kernels::KernelCompiler::new(target.clone())
            .lower(&kernel, workloads::kernels::Tensors { weights: 0, activations: 1 << 40 })
            .unwrap();
        let issued: u64 = programs.iter().map(|(_, p)| p.instrs.len() as u64).sum();
        let retired: u64 = r.engines.instructions_retired.values().sum();
        assert_eq!(retired, issued, "{m}x{n}x{k}");
        // Device memory and the shared SRAM each served exactly the bytes the programs asked of them.
        let moved = |shared: bool, load: bool| -> u64 {
            programs
                .iter()
                .flat_map(|(_, p)| &p.instrs)
                .filter(|i| match i {
                    isa::Instr::Load { src, .. } => load && matches!(src, isa::MemRef::Shared(_)) == shared,
                    isa::Instr::Store { dst, .. } => !load && matches!(dst, isa::MemRef::Shared(_)) == shared,
                    _ => false,
                })
                .map(|i| i.dma_bytes())
                .sum()
        };
        assert_eq!(
            (r.memory_read_bytes, r.memory_write_bytes),
            (moved(false, true), moved(false, false)),
            "{m}x{n}x{k}"
        );
        assert_eq!((r.shared_read_bytes, r.shared_write_bytes), (moved(true, true), moved(true, false)), "{m}x{n}x{k}");
        // The GEMM did all its multiply-accumulates.
        let macs: u64 = programs.iter().flat_map(|(_, p)| &p.instrs).map(|i| i.macs()).sum();
        assert_eq!(macs, m as u64 * n as u64 * k as u64);
    }
}

#[test]
fn a_decode_gemv_streams_at_the_bandwidth_the_memory_model_allows() {
    let spec = hardware("rebel-quad");
    let run =
        gemm(&spec, GemmBench { m: 1, n: 7168, k: 7168, dtype: Dtype::Fp8, cores: None, compute_only: false }).unwrap();
    let r = &run.run;
    // The model's own ceiling: the peak less what refresh takes (tRFC / tREFI).
    let deliverable = r.memory_peak_bytes_per_s * r.memory_model_efficiency;
    let achieved = r.memory_bandwidth_bytes_per_s;
    assert!(achieved >= 0.9 * deliverable && achieved <= deliverable * 1.001, "{achieved} of {deliverable}");
    // Every core loads the input vector; the weights are read once.
    assert_eq!(r.memory_read_bytes, 7168 * 7168 + 16 * 7168);
}

#[test]
fn a_4096_cubed_gemm_keeps_the_matrix_engines_busy() {
    let spec = hardware("rebel-quad");
    let run = gemm(&spec, GemmBench { m: 4096, n: 4096, k: 4096, dtype: Dtype::Fp8, cores: None, compute_only: false })
        .unwrap();
    let busy = run.run.engines.busy_fraction["matrix"];
    assert!(busy > 0.85, "matrix engines {:.1}% busy", busy * 100.0);
    assert!(run.utilization > 0.85 && run.utilization <= 1.0, "{}", run.utilization);
}

#[test]
fn hand_written_programs_synchronise_across_cores() {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../isa/examples/two_core_pipeline.s")).unwrap();
    let asm = isa::asm::parse(&text).unwrap();
    let programs: Vec<(u32, isa::Program)> = asm.programs.into_iter().map(|(c, p)| (c as u32, p)).collect();
    let run = workloads::micro::run_programs(&hardware("rebel-quad"), &programs, false).unwrap();
    // Both cores leave the barrier together and ring their doorbells then.
    let (d0, d1) = (run.doorbells[&0][0], run.doorbells[&1][0]);
    assert_eq!((d0.1, d1.1), (1, 2));
    assert_eq!(d0.0, d1.0);
    // Core 1 waited for core 0's signal: its vector work could not start before the matmul and the send.
    assert!(run.engines.stall_cycles.get("vector.sync").copied().unwrap_or(0) > 0);
    assert_eq!(run.engines.instructions_retired.values().sum::<u64>(), 13);
}

#[test]
fn a_wait_that_is_never_signalled_is_reported_at_its_line() {
    let asm = isa::asm::parse(".buffer a 64\nwait s3\n").unwrap();
    let programs: Vec<(u32, isa::Program)> = asm.programs.into_iter().map(|(c, p)| (c as u32, p)).collect();
    let e = workloads::micro::run_programs(&hardware("rebel-quad"), &programs, false).unwrap_err();
    assert_eq!(e.held, [(0, 0)], "{e}");
    // On the command line: the pipeline example with core 0 signalling the
    // wrong semaphore holds core 1 at its wait and core 0 at the barrier.
    let example = include_str!("../../isa/examples/two_core_pipeline.s");
    let wrong = example.replace("signal  s0, core1", "signal  s1, core1");
    assert_ne!(wrong, example);
    let path = npusim_tests::file("wrong.s", &wrong);
    npusim_tests::refused(
        &["asm", "run", &path],
        &["wrong.s:12:1: core 0 is held at `barrier`", "wrong.s:18:1: core 1 is held at `wait s0`", "never satisfied"],
    );
}

#[test]
fn the_asm_command_line_runs_checks_and_round_trips_programs() {
    use npusim_tests::{file, npusim, scratch};
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../isa/examples/two_core_pipeline.s");
    let out = npusim(&["asm", "run", path, "--hw", "rebel-quad"]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert!(out.stdout.contains("doorbells core 1"), "{}", out.stdout);
    let bad = file("bad.s", ".buffer x 64\nload x, hbm:0x0, 128\n");
    let out = npusim(&["asm", "check", &bad, "--hw", "rebel-quad"]);
    assert_eq!(out.status, 2);
    assert!(
        out.stderr.contains("bad.s:2:1: core 0: `load x, hbm:0x0, 128`: needs 128 bytes of buffer `x`, which holds 64"),
        "{}",
        out.stderr
    );
    let dir = scratch("image");
    let image = dir.join("p.bin");
    assert_eq!(npusim(&["asm", "encode", path, image.to_str().unwrap()]).status, 0);
    let decoded = npusim(&["asm", "decode", image.to_str().unwrap()]);
    let original = isa::asm::parse(&std::fs::read_to_string(path).unwrap()).unwrap().programs;
    assert_eq!(isa::asm::parse(&decoded.stdout).unwrap().programs, original);
}

#[test]
fn micro_gemm_and_lower_on_the_command_line() {
    use npusim_tests::npusim;
    let out = npusim(&["micro", "gemm", "--m", "64", "--n", "512", "--k", "1024", "--hw", "rebel-quad", "--json"]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let number = |key: &str| json[key].as_f64().unwrap_or_else(|| panic!("{key} in {}", out.stdout));
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b;
    // 2 m n k FLOPs over the simulated time, against one chiplet's 500 TFLOP/s
    // of FP8 (a quarter of the card's 2 PFLOPS, docs/reference.md A1).
    assert!(close(number("achieved_flops"), 2.0 * 64.0 * 512.0 * 1024.0 / number("seconds")));
    assert!((number("peak_flops") - 500e12).abs() < 0.001 * 500e12, "{}", number("peak_flops"));
    assert!(close(number("utilization"), number("achieved_flops") / number("peak_flops")));
    // Each FP8 input read at least once.
    assert!(number("memory_read_bytes") >= (64 * 1024 + 1024 * 512) as f64);
    assert!(number("cycles") > 0.0 && number("seconds") > 0.0);
    let out = npusim(&[
        "micro",
        "gemm",
        "--m",
        "16",
        "--n",
        "64",
        "--k",
        "64",
        "--array",
        "128x128",
        "--dataflow",
        "os",
        "--compute-only",
        "--cores",
        "1",
    ]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    let out = npusim(&["micro", "gemm", "--m", "1", "--n", "64", "--k", "64", "--hw", "atom"]);
    assert_eq!(out.status, 2, "ATOM has no FP8");
    let out = npusim(&["lower", "--op", "l1.attn.q_b"]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert!(out.stdout.contains("GEMM") && out.stdout.contains("core 15"), "{}", out.stdout);
}

#[test]
fn micro_attention_on_the_command_line() {
    use npusim_tests::npusim;
    let args =
        ["micro", "attention", "--hw", "rebel-quad", "--batch", "4", "--context", "1024", "--heads", "16", "--json"];
    let out = npusim(&args);
    assert_eq!(out.status, 0, "{}", out.stderr);
    let json: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    // The latent cache (576 BF16 values per token) is read once at the least.
    let cache = 4 * 1024 * 576 * 2;
    assert!(json["memory_read_bytes"].as_u64().unwrap() >= cache, "{}", out.stdout);
    assert!(json["compulsory_bytes"].as_u64().unwrap() >= cache);
    let prefill = ["micro", "attention", "--hw", "rebel-quad", "--form", "mha", "--queries", "256", "--context", "256"];
    assert_eq!(npusim(&prefill).status, 0);
    for (bad, says) in [
        (&["micro", "attention", "--form", "gqa"][..], "--form gqa"),
        (&["micro", "attention", "--queries", "8", "--context", "4"][..], "exceed the context"),
        (&["micro", "attention", "--form", "mha", "--heads", "12", "--kv-heads", "8"][..], "multiple of the KV heads"),
        (&["micro", "attention", "--batch", "0"][..], "requests must be at least 1"),
    ] {
        let out = npusim(bad);
        assert_eq!(out.status, 2, "{bad:?}");
        assert!(out.stderr.contains(says), "{bad:?}: {}", out.stderr);
    }
}

#[test]
fn a_vector_op_too_large_for_u64_bytes_is_refused_not_wrapped() {
    // Found by the fuzz corpus test: 1.6e19 FP32 elements overflowed the
    // byte count (a panic with overflow checks, a wrong size without).
    let found = concat!(env!("CARGO_MANIFEST_DIR"), "/../fuzz/regressions/assembler/vector-size-overflow.s");
    npusim_tests::refused(&["asm", "check", found], &["vector-size-overflow.s:", "buffer `y`"]);
}
