//! Wall time of `npusim micro gemm` on one REBEL-Quad chiplet: the issue asks
//! 2048 x 7168 x 7168 FP8 to simulate in under a second.
use criterion::{Criterion, criterion_group, criterion_main};
use isa::Dtype;
use workloads::micro::{GemmBench, gemm};

fn micro_gemm(c: &mut Criterion) {
    let spec = models::presets::load_preset("rebel-quad").expect("the preset loads");
    let mut group = c.benchmark_group("micro_gemm");
    group.sample_size(10);
    for (m, n, k) in [(2048, 7168, 7168), (1, 7168, 7168), (4096, 4096, 4096)] {
        let bench = GemmBench { m, n, k, dtype: Dtype::Fp8, cores: None, compute_only: false };
        group.bench_function(format!("{m}x{n}x{k}_fp8_rebel_quad_chiplet"), |b| {
            b.iter(|| gemm(&spec, bench).expect("the GEMM runs"))
        });
    }
    group.finish();
}

criterion_group!(benches, micro_gemm);
criterion_main!(benches);
