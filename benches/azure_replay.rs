//! Wall time of a serving run: the first 1,000 requests of the sample
//! Azure-format trace (`traces/examples/azure-sample.csv`) served by A.X K1
//! on `sovereign-node` with step replay, on one core, as `npusim run` does
//! it. The issue asks for under 60 s. Prints the wall time and what the run
//! gave; `NPUSIM_BENCH_REQUESTS=N` serves the first N instead, and
//! `NPUSIM_BENCH_FULL=1` also simulates every step, to compare.
//!
//! `cargo bench --bench azure_replay`

use std::time::Instant;

fn main() {
    let requests: u32 = std::env::var("NPUSIM_BENCH_REQUESTS").ok().and_then(|n| n.parse().ok()).unwrap_or(1000);
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("traces/examples");
    let dir = std::env::temp_dir().join(format!("npusim-azure-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    std::fs::copy(examples.join("azure-sample.csv"), dir.join("azure-sample.csv")).expect("the sample trace");
    let workload = std::fs::read_to_string(examples.join("axk1-azure.toml")).expect("the sample workload");
    let workload = workload.replace("count = 100\n", &format!("count = {requests}\n"));
    std::fs::write(dir.join("workload.toml"), workload).expect("write the workload");
    let replayed = "base = \"sovereign-node\"\n[simulation]\nreplay_steps = true\n";
    std::fs::write(dir.join("replayed.toml"), replayed).expect("write the hardware");

    let mut runs = vec![("step replay", "replayed.toml")];
    if std::env::var_os("NPUSIM_BENCH_FULL").is_some() {
        runs.push(("every step simulated", "sovereign-node"));
    }
    for (name, hw) in runs {
        let hw = if hw.ends_with(".toml") { dir.join(hw).display().to_string() } else { hw.to_string() };
        let workload = dir.join("workload.toml").display().to_string();
        let (mut out, mut err) = (Vec::new(), Vec::new());
        let start = Instant::now();
        let status = npusim::run(["npusim", "run", "--hw", &hw, "--workload", &workload, "--json"], &mut out, &mut err);
        let wall = start.elapsed().as_secs_f64();
        assert_eq!(status, 0, "{}", String::from_utf8_lossy(&err));
        let r: serde_json::Value = serde_json::from_slice(&out).expect("a JSON report");
        let f = |path: &[&str]| path.iter().fold(&r, |v, k| &v[*k]).as_f64().unwrap_or(f64::NAN);
        println!(
            "{requests} requests, {name}: {wall:.1} s of wall time; {} steps ({} replayed), {:.2} s simulated, \
             {:.0} tok/s, TTFT mean {:.1} ms, TPOT mean {:.2} ms, {:.3} J/token",
            f(&["steps", "count"]),
            f(&["steps", "replayed"]),
            f(&["simulated_seconds"]),
            f(&["throughput_tokens_per_s"]),
            f(&["latency", "ttft_s", "mean"]) * 1e3,
            f(&["latency", "tpot_s", "mean"]) * 1e3,
            f(&["joules_per_token"]),
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
