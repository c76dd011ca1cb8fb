//! `npusim compare` and cost per token: the same workload on several
//! systems gives each system's own run, to the byte, with ratios to the
//! first; a `[cost]` table gives dollars per million tokens.

use npusim_tests::{file, npusim, refused};
use serde_json::Value;

const WORKLOAD: &str = "base = \"axk1-decode\"\nname = \"short\"\n[scenario]\noutput_tokens = 1\n";

#[test]
fn compare_gives_each_systems_own_run_and_the_ratios_to_the_first() {
    let workload = file("w.toml", WORKLOAD);
    let out = npusim(&["compare", "--hw", "sovereign-node", "--hw", "h100-node", "--workload", &workload, "--json"]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    let json: Value = serde_json::from_str(&out.stdout).unwrap();
    // Run in parallel, each report is the one `run` gives alone.
    for (i, hw) in ["sovereign-node", "h100-node"].iter().enumerate() {
        let alone = npusim(&["run", "--hw", hw, "--workload", &workload, "--json"]);
        let alone: Value = serde_json::from_str(&alone.stdout).unwrap();
        assert!(json["reports"][i] == alone, "{hw}: the compared run differs from the run alone");
    }
    let figures = json["figures"].as_array().unwrap();
    let figure = |name: &str| figures.iter().find(|f| f["figure"] == name).unwrap_or_else(|| panic!("{name}"));
    let throughput = figure("throughput");
    let (a, b) = (throughput["values"][0].as_f64().unwrap(), throughput["values"][1].as_f64().unwrap());
    assert_eq!(a, json["reports"][0]["throughput_tokens_per_s"].as_f64().unwrap());
    assert_eq!(throughput["ratios"][0], 1.0);
    assert!((throughput["ratios"][1].as_f64().unwrap() - b / a).abs() < 1e-12);
    // Tokens per joule is throughput over average power.
    let per_joule = figure("tokens per joule")["values"][1].as_f64().unwrap();
    let power = json["reports"][1]["average_power_w"].as_f64().unwrap();
    assert!((per_joule - b / power).abs() < 1e-12 * per_joule);
    // Without a [cost] table there is no cost, and the table says what it needs.
    assert!(figure("cost per million tokens")["values"][0].is_null());
    let table = npusim(&["compare", "--hw", "sovereign-node", "--hw", "h100-node", "--workload", &workload]);
    assert!(table.stdout.contains("| figure | sovereign-node | h100-node |"), "{}", table.stdout);
    assert!(table.stdout.contains("sovereign-node: a [cost] table"), "{}", table.stdout);
    refused(&["compare", "--hw", "sovereign-node"], &["--hw", "two systems or more"]);
    let many: Vec<&str> = std::iter::repeat_n(["--hw", "atom"], 17).flatten().collect();
    refused(&[&["compare"], &many[..]].concat(), &["--hw", "at most 16 systems", "found 17"]);
    refused(&["compare", "--hw", "sovereign-node", "--hw", "no-such-preset"], &["no-such-preset"]);
}

#[test]
fn cost_per_token_is_the_purchase_over_its_years_plus_power_at_the_wall() {
    let priced = file(
        "priced.toml",
        "base = \"h100-node\"\nname = \"priced\"\n[cost]\ncard_usd = 27500.0\nhost_usd = 100000.0\nyears = 4.0\n\
         usd_per_kwh = 0.08\npue = 1.3\n",
    );
    let out = npusim(&["run", "--hw", &priced, "--workload", &file("w.toml", WORKLOAD), "--json"]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    let r: Value = serde_json::from_str(&out.stdout).unwrap();
    let number = |v: &Value| v.as_f64().unwrap();
    let cost = &r["cost"];
    // 8 cards and a host over 4 years of 365.25 days.
    let capital_per_hour = (8.0 * 27500.0 + 100000.0) / (4.0 * 365.25 * 24.0);
    assert!((number(&cost["capital_usd_per_hour"]) - capital_per_hour).abs() < 1e-9);
    // The run's average power, times the PUE, at 8 cents a kWh.
    let power_per_hour = number(&r["average_power_w"]) * 1.3 / 1000.0 * 0.08;
    assert!((number(&cost["power_usd_per_hour"]) - power_per_hour).abs() < 1e-12);
    let tokens_per_hour = number(&r["throughput_tokens_per_s"]) * 3600.0;
    let per_million = (capital_per_hour + power_per_hour) / tokens_per_hour * 1e6;
    assert!((number(&cost["usd_per_million_tokens"]) - per_million).abs() < 1e-9 * per_million);
    assert!((number(&cost["wall_joules_per_token"]) - 1.3 * number(&r["joules_per_token"])).abs() < 1e-12);
    assert_eq!(cost["missing"], serde_json::json!([]));
    // A partial table gives what it can and names what it lacks.
    let partial = file("partial.toml", "base = \"h100-node\"\nname = \"p\"\n[cost]\ncard_usd = 27500.0\n");
    let out = npusim(&["run", "--hw", &partial, "--workload", &file("w.toml", WORKLOAD)]);
    assert!(out.stdout.contains("needs cost.host_usd, cost.years, cost.usd_per_kwh, cost.pue"), "{}", out.stdout);
    for (field, value) in [("pue", "0.5"), ("years", "-1.0"), ("card_usd", "nan"), ("usd_per_kwh", "-0.1")] {
        let bad = file("bad.toml", &format!("base = \"h100-node\"\nname = \"b\"\n[cost]\n{field} = {value}\n"));
        refused(&["validate", &bad], &[&format!("cost.{field}")]);
    }
}

const CHAT: &str = "base = \"llama3.1-70b-decode\"\nname = \"chat\"\nmodel = \"llama3.1-8b\"\n[scenario]\nbatch = 16\n\
    weight_dtype = \"int8\"\nactivation_dtype = \"fp16\"\nkv_dtype = \"fp16\"\n\
    context_tokens = { distribution = \"lognormal\", mean = 512.0, std_dev = 256.0, min = 32, max = 2048 }\n\
    output_tokens = { distribution = \"lognormal\", mean = 16.0, std_dev = 8.0, min = 2, max = 64 }\n\
    [plan]\nattention_tensor_parallel = 1\n[requests]\narrivals = \"poisson\"\nrate = RATE\ncount = 32\n\
    [serving]\nslo = { ttft = \"200 ms\", tpot = \"40 ms\" }\n";

#[test]
fn the_slo_search_finds_each_systems_highest_rate_that_meets_the_objective() {
    let chat = file("chat.toml", &CHAT.replace("RATE", "4.0"));
    let out = npusim(&["compare", "--hw", "rebel-quad", "--hw", "atom", "--workload", &chat, "--slo", "--json"]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    let json: Value = serde_json::from_str(&out.stdout).unwrap();
    let best = json["slo"].as_array().unwrap();
    assert_eq!(best.len(), 2);
    for b in best {
        let rate = b["rate_per_s"].as_f64().unwrap_or_else(|| panic!("{b}"));
        let (ttft, tpot) = (b["ttft_p99_s"].as_f64().unwrap(), b["tpot_p99_s"].as_f64().unwrap());
        assert!(ttft <= 0.2 && tpot <= 0.04, "{b}");
        // The figures are a real run's at that rate.
        let at = file("at.toml", &CHAT.replace("RATE", &format!("{rate:?}")));
        let run = npusim(&["run", "--hw", b["hardware"].as_str().unwrap(), "--workload", &at, "--json"]);
        let run: Value = serde_json::from_str(&run.stdout).unwrap();
        assert_eq!(run["latency"]["ttft_s"]["p99"].as_f64().unwrap(), ttft, "{b}");
        assert_eq!(run["throughput_tokens_per_s"], b["throughput_tokens_per_s"], "{b}");
    }
    // ATOM (FP16 at 32 TFLOP/s, 256 GB/s) meets it at a lower rate than a REBEL-Quad.
    assert!(best[1]["rate_per_s"].as_f64().unwrap() < best[0]["rate_per_s"].as_f64().unwrap());
    let table = npusim(&["compare", "--hw", "rebel-quad", "--hw", "atom", "--workload", &chat, "--slo"]);
    assert!(table.stdout.contains("Highest request rate meeting p99 TTFT <= 200 ms"), "{}", table.stdout);
    // Without an objective, or without a rate to vary, there is nothing to search.
    let no_slo = file("plain.toml", WORKLOAD);
    refused(&["compare", "--hw", "rebel-quad", "--hw", "atom", "--workload", &no_slo, "--slo"], &["serving.slo"]);
}
