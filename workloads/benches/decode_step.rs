//! Wall time of one A.X K1 decode step (batch 64, 2,048-token context) on
//! `sovereign-node`, from an empty start (machine built, kernels lowered and,
//! with replay, each distinct kernel simulated once): the issue asks for
//! under one second on one core. `full` simulates every kernel in place.
use criterion::{Criterion, criterion_group, criterion_main};

fn decode_step(c: &mut Criterion) {
    let replayed = models::presets::load_preset("sovereign-node").expect("the preset loads");
    let mut full = replayed.clone();
    full.simulation.replay_kernels = false;
    let mut w = workloads::workload_preset("axk1-decode").expect("the workload loads");
    w.spec.scenario.output_tokens = workloads::lengths::Length::Fixed(1);
    let mut group = c.benchmark_group("axk1_decode_step");
    group.sample_size(10);
    group.bench_function("replayed", |b| b.iter(|| workloads::run(&replayed, &w, 1).expect("runs")));
    group.bench_function("full", |b| b.iter(|| workloads::run(&full, &w, 1).expect("runs")));
    group.finish();
}

criterion_group!(benches, decode_step);
criterion_main!(benches);
