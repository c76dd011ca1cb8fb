//! Events per second of the engine on a fixed synthetic system.
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sim_core::bench_system;

fn engine(c: &mut Criterion) {
    let mut group = c.benchmark_group("engine");
    let events = 1_000_000;
    group.throughput(Throughput::Elements(events));
    group.bench_function("ring_of_64_components_1M_events", |b| {
        b.iter(|| {
            let mut system = bench_system::ring(64, 16, events);
            system.run_to_end();
            assert_eq!(system.events(), events);
        })
    });
    group.finish();
}

criterion_group!(benches, engine);
criterion_main!(benches);
