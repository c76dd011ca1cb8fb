//! Card power: the TDP bounds the busiest load, and the power a card draws
//! beyond idle while it runs kernels is charged over that time only.

use npusim_tests::hardware;
use reports::Report;

/// One H100 of h100-node, as the validation cases run it.
fn one_h100() -> models::spec::SystemSpec {
    let mut hw = hardware("h100-node");
    hw.node.cards = 1;
    hw
}

fn workload(text: &str) -> workloads::Workload {
    workloads::load_workload("workload.toml", text).expect("the test's workload is valid")
}

#[test]
fn the_busiest_load_keeps_an_h100_within_its_tdp() {
    // FP8 prefill of four 2,048-token prompts: the matrix engines are the
    // busiest they get in a step, and the datasheet's 700 W bounds the card.
    let w = workload(
        r#"
name = "prefill"
model = "llama3.1-8b"
[scenario]
phase = "prefill"
batch = 4
context_tokens = 2048
output_tokens = 1
weight_dtype = "fp8"
activation_dtype = "fp8"
kv_dtype = "fp8"
"#,
    );
    let report = Report::new(&workloads::run(&one_h100(), &w, 1).unwrap(), 0.0);
    let card = report.card_power.clone().unwrap();
    let matrix = report.utilization["npu.matrix"];
    assert!(matrix > 0.5, "the prefill keeps the matrix engines {matrix} busy");
    assert!(!card.over_tdp && card.average_w > 0.6 * card.tdp_w, "{card:?}");
}

#[test]
fn active_power_is_charged_while_kernels_run_and_idle_power_throughout() {
    // Three short requests about 10 s apart: the card decodes for a fraction
    // of the run and waits the rest, when it draws its idle power alone.
    let w = workload(
        r#"
name = "sparse"
model = "llama3.1-8b"
[scenario]
phase = "prefill"
batch = 1
context_tokens = 128
output_tokens = 16
weight_dtype = "bf16"
activation_dtype = "bf16"
kv_dtype = "bf16"
[requests]
arrivals = "poisson"
rate = 0.1
count = 3
"#,
    );
    let hw = one_h100();
    let power = &hw.node.card.as_ref().unwrap().power;
    let (idle, active) = (power.idle.watts(), power.active.watts());
    assert!(active > 0.0, "h100-node names its active power");
    let run = workloads::run(&hw, &w, 1).unwrap();
    let report = Report::new(&run, 0.0);
    let elapsed = run.simulated.as_secs_f64();
    let parts = &report.energy_j.breakdown;
    assert!((parts["static.npu"] - idle * elapsed).abs() < 1e-9 * idle * elapsed);
    let busy: f64 = run.steps.iter().map(|s| (s.end - s.start).as_secs_f64()).sum();
    assert!(busy < 0.25 * elapsed, "the card waits most of the run: {busy} s busy of {elapsed} s");
    // Charged over the kernels' time: no more than the steps last, and most of it.
    let charged = parts["npu.active"] / active;
    assert!(charged <= busy * (1.0 + 1e-9) && charged > 0.5 * busy, "{charged} s charged, {busy} s of steps");
}
