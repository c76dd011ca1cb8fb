//! The serving runtime end to end: arrival processes and request traces,
//! continuous batching with chunked prefill, KV-cache blocks and
//! preemption, per-request output and goodput.

use npusim_tests::{file, hardware, npusim, scratch};
use workloads::workload::{Requests, TraceRequest};
use workloads::{Workload, load_workload, run};

/// Llama-3.1-8B on a REBEL-Quad (4 chiplets, TP 4): small enough to serve
/// dozens of requests in a test.
fn small(extra: &str) -> Workload {
    let text = format!(
        "base = \"llama3.1-70b-decode\"\nname = \"llama8b-serve\"\nmodel = \"llama3.1-8b\"\n{extra}\n\
         [plan]\nattention_tensor_parallel = 4\n"
    );
    load_workload("serve.toml", &text).unwrap_or_else(|e| panic!("{e}"))
}

fn poisson(rate: f64) -> Workload {
    small(&format!(
        "[scenario]\nphase = \"prefill\"\nbatch = 32\n\
         context_tokens = {{ distribution = \"lognormal\", mean = 400.0, std_dev = 200.0, max = 2048 }}\n\
         output_tokens = {{ distribution = \"uniform\", min = 8, max = 24 }}\n\
         [requests]\narrivals = \"poisson\"\nrate = {rate}\ncount = 40\n\
         [serving]\ntoken_budget = 2048\n"
    ))
}

#[test]
fn throughput_follows_the_offered_load_until_saturation_then_latency_climbs() {
    let hw = hardware("rebel-quad");
    let rates = [4.0, 16.0, 64.0, 256.0, 1024.0];
    let mut served = Vec::new();
    for rate in rates {
        let r = run(&hw, &poisson(rate), 1).unwrap();
        let report = reports::Report::new(&r, 0.0);
        assert_eq!(r.requests.len(), 40);
        served.push((
            report.throughput_tokens_per_s,
            report.throughput_requests_per_s,
            report.latency.ttft_s.unwrap().mean,
        ));
    }
    // Up to saturation, more offered load gives more tokens/s.
    for pair in served[..4].windows(2) {
        assert!(pair[1].0 > pair[0].0, "more offered load, more tokens/s: {served:?}");
    }
    // Below saturation the requests are served as fast as they come.
    assert!((served[0].1 / rates[0] - 1.0).abs() < 0.25, "{served:?}");
    // Past it (all 40 requests arrive at once either way) the machine serves
    // what it can: throughput stays where it was, far below what is offered ...
    assert!(served[4].1 < 0.25 * rates[4], "{served:?}");
    assert!((served[4].0 / served[3].0 - 1.0).abs() < 0.05, "{served:?}");
    // ... and latency climbs at every step of the sweep.
    for pair in served.windows(2) {
        assert!(pair[1].2 > pair[0].2, "latency rises with load: {served:?}");
    }
}

#[test]
fn an_overfull_kv_cache_preempts_and_still_serves_every_request() {
    // 24 requests of 300 + 64 tokens at once; 40 MB of KV cache per chiplet holds about a third of them.
    let w = small(
        "[scenario]\nphase = \"prefill\"\nbatch = 24\ncontext_tokens = 300\noutput_tokens = 64\n\
         [serving]\nkv_memory = \"40 MB\"\n",
    );
    let r = run(&hardware("rebel-quad"), &w, 1).unwrap();
    assert_eq!(r.requests.len(), 24, "requests in");
    assert!(r.requests.iter().all(|q| q.tokens == 64), "requests out, each with all its tokens");
    let preemptions: u32 = r.requests.iter().map(|q| q.preemptions).sum();
    assert!(preemptions > 0, "the cache is too small for the whole batch");
    let roomy = run(
        &hardware("rebel-quad"),
        &small("[scenario]\nphase = \"prefill\"\nbatch = 24\ncontext_tokens = 300\noutput_tokens = 64\n"),
        1,
    )
    .unwrap();
    assert!(roomy.requests.iter().all(|q| q.preemptions == 0));
    assert!(r.simulated > roomy.simulated, "recomputing preempted requests costs time");
}

#[test]
fn chunked_prefill_keeps_every_step_within_the_token_budget() {
    let w = poisson(64.0);
    let step = workloads::record_step(&hardware("rebel-quad"), &w, 1, 3).unwrap();
    let tokens: u32 = step.requests.iter().map(|r| r.new_tokens).sum();
    assert!(tokens <= 2048, "{tokens}");
    let r = run(&hardware("rebel-quad"), &w, 1).unwrap();
    assert!(r.steps.iter().any(|s| s.prefill), "prompts are prefilled");
}

#[test]
fn a_request_trace_in_the_azure_form_is_served_and_each_request_written_out() {
    let dir = scratch("azure");
    let trace = "TIMESTAMP,ContextTokens,GeneratedTokens\n\
                 2023-11-16 18:15:46.6805900,374,12\n\
                 2023-11-16 18:15:46.7005900,396,9\n\
                 2023-11-16 18:15:47.0000000,120,20\n";
    std::fs::write(dir.join("trace.csv"), trace).unwrap();
    let workload = dir.join("w.toml");
    std::fs::write(
        &workload,
        "base = \"llama3.1-70b-decode\"\nmodel = \"llama3.1-8b\"\n[scenario]\nphase = \"prefill\"\n\
         [plan]\nattention_tensor_parallel = 4\n\
         [requests]\narrivals = \"trace\"\nfile = \"trace.csv\"\n\
         [serving]\nslo = { ttft = \"1 s\", tpot = \"50 ms\" }\n",
    )
    .unwrap();
    let out = dir.join("results");
    let o = npusim(&[
        "run",
        "--hw",
        "rebel-quad",
        "--workload",
        workload.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status, 0, "{}", o.stderr);
    assert!(o.stdout.contains("goodput"), "{}", o.stdout);
    let csv = std::fs::read_to_string(out.join("requests.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 4, "a header and one line per request:\n{csv}");
    assert!(lines[0].starts_with("id,arrival_s,first_scheduled_s,first_token_s,finish_s,prompt_tokens,output_tokens"));
    let second: Vec<&str> = lines[2].split(',').collect();
    assert_eq!(second[1], "0.020000000", "arrival 20 ms after the first");
    assert_eq!((second[5], second[6]), ("396", "9"));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(report["requests"], 3);
    assert_eq!(report["tokens_generated"], 41);

    // A bad row is named by line and column.
    std::fs::write(dir.join("trace.csv"), "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46,many,3\n")
        .unwrap();
    let o = npusim(&["run", "--hw", "rebel-quad", "--workload", workload.to_str().unwrap()]);
    assert_eq!(o.status, 2);
    assert!(o.stderr.contains("trace.csv:2:21") && o.stderr.contains("ContextTokens"), "{}", o.stderr);
}

#[test]
fn the_shipped_sample_trace_reads_and_matches_its_generator() {
    let text = include_str!("../../traces/examples/azure-sample.csv");
    let (form, rows) = traces::requests::parse("azure-sample.csv", text).unwrap();
    assert_eq!(form, traces::requests::Form::Azure);
    assert_eq!(rows.len(), 1000);
    let dir = scratch("sample");
    let out = dir.join("again.csv");
    let o = npusim(&[
        "requests",
        "--workload",
        concat!(env!("CARGO_MANIFEST_DIR"), "/../traces/examples/azure-sample.toml"),
        "--azure",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status, 0, "{}", o.stderr);
    assert_eq!(std::fs::read_to_string(out).unwrap(), text, "regenerate it with the command in azure-sample.toml");
}

#[test]
fn bad_serving_inputs_are_located() {
    let o = npusim(&[
        "validate",
        &file("w.toml", "base = \"axk1-decode\"\n[requests]\narrivals = \"poisson\"\nrate = 0.0\ncount = 3\n"),
    ]);
    assert_eq!(o.status, 2);
    assert!(o.stderr.contains("requests.rate"), "{}", o.stderr);
    let o = npusim(&[
        "run",
        "--workload",
        &file("w.toml", "base = \"axk1-decode\"\n[requests]\narrivals = \"trace\"\nfile = \"none.csv\"\n"),
    ]);
    assert_eq!(o.status, 2);
    assert!(o.stderr.contains("none.csv"), "{}", o.stderr);
}

#[test]
fn a_step_mixing_decoders_and_a_prompt_runs_each_attention_in_its_own_form() {
    // A.X K1's MLA: decoders attend over the latent cache (absorbed), a prompt decompresses keys and values.
    // 40 requests over 32 data-parallel replicas: some replicas serve two,
    // one decoding while the other's prompt is prefilled.
    let w = load_workload(
        "mixed.toml",
        "base = \"axk1-decode\"\n[scenario]\nphase = \"prefill\"\nbatch = 40\ncontext_tokens = 600\noutput_tokens = 4\n\
         [serving]\ntoken_budget = 512\n",
    )
    .unwrap();
    let hw = hardware("sovereign-node");
    let step = (0..6)
        .map(|i| workloads::record_step(&hw, &w, 1, i).unwrap())
        .find(|s| {
            s.requests.iter().any(|r| r.cached > 0 && r.new_tokens == 1) && s.requests.iter().any(|r| r.new_tokens > 1)
        })
        .expect("a step with a decoder and a prompt chunk");
    let names: Vec<&str> = step.graph.ops.iter().map(|o| o.name.as_str()).collect();
    for op in ["l0.attn.absorb_q", "l0.attn.kv_b", "l0.attn.absorb_v", "l0.attn.o"] {
        assert!(names.contains(&op), "{op} missing");
    }
    assert_eq!(names.iter().filter(|n| **n == "l0.attn.core").count(), 2);
}

#[test]
fn replaying_step_shapes_stays_close_to_simulating_every_step() {
    let full = hardware("rebel-quad");
    let mut fast = full.clone();
    fast.simulation.replay_steps = true;
    let w = poisson(16.0);
    let (a, b) = (run(&full, &w, 1).unwrap(), run(&fast, &w, 1).unwrap());
    assert_eq!(a.replayed_steps, 0);
    assert!(b.replayed_steps > b.steps.len() as u64 / 2, "{} of {} steps replayed", b.replayed_steps, b.steps.len());
    let tokens = |r: &workloads::RunResult| r.requests.iter().map(|q| q.tokens).sum::<u32>();
    assert_eq!(tokens(&a), tokens(&b));
    let time = b.simulated.as_secs_f64() / a.simulated.as_secs_f64() - 1.0;
    let energy = b.energy.total() / a.energy.total() - 1.0;
    // Step shapes bucket decoders, contexts and prompt tokens to 6-25 %, and replay the first step of each bucket.
    assert!(time.abs() < 0.01, "simulated time {:+.3} %", time * 100.0);
    assert!(energy.abs() < 0.02, "energy {:+.3} %", energy * 100.0);
}

#[test]
fn at_batch_one_the_host_share_shows_and_a_faster_cpu_lowers_tpot() {
    let mut w = workloads::workload_preset("axk1-decode").unwrap();
    (w.spec.scenario.batch, w.spec.scenario.output_tokens) = (1, workloads::lengths::Length::Fixed(4));
    let base = hardware("sovereign-node");
    let fast = models::presets::load_system(
        "fast-cpu.toml",
        "base = \"sovereign-node\"\nname = \"fast-cpu\"\n[node.cpu]\nclock = \"6.4 GHz\"\n",
    )
    .unwrap();
    let host_per_step = |r: &workloads::RunResult| {
        let share = reports::Report::new(r, 0.0).steps.share;
        (share.host_before_launch + share.host_after_logits) * npusim_tests::mean_step(r)
    };
    let tpot = |r: &workloads::RunResult| reports::Report::new(r, 0.0).latency.tpot_s.unwrap().mean;
    let (slow, quick) = (run(&base, &w, 1).unwrap(), run(&fast, &w, 1).unwrap());
    // Scheduling, launch and sampling take their time on every step.
    assert!(host_per_step(&slow) > 20e-6, "{} s of host work a step", host_per_step(&slow));
    // Twice the clock: the host's part shrinks, and so does the time per token.
    assert!(
        host_per_step(&quick) < 0.7 * host_per_step(&slow),
        "{} vs {}",
        host_per_step(&quick),
        host_per_step(&slow)
    );
    assert!(tpot(&quick) < tpot(&slow), "{} vs {}", tpot(&quick), tpot(&slow));
    let summary = reports::summary(&reports::Report::new(&slow, 0.0));
    assert!(summary.contains("host before launch 0.") && summary.contains(" us)"), "{summary}");
}

#[test]
fn sampling_methods_cost_the_host_their_own_work() {
    let hw = hardware("sovereign-node");
    let at = |decoding: workloads::workload::Decoding| {
        let mut w = workloads::workload_preset("axk1-decode").unwrap();
        (w.spec.scenario.batch, w.spec.scenario.output_tokens) = (1, workloads::lengths::Length::Fixed(3));
        w.spec.scenario.decoding = decoding;
        let r = run(&hw, &w, 1).unwrap();
        let report = reports::Report::new(&r, 0.0);
        (report.steps.share.host_after_logits * npusim_tests::mean_step(&r), report.latency.tpot_s.unwrap().mean)
    };
    use workloads::workload::Decoding::{Greedy, TopK, TopP};
    let [(greedy, greedy_tpot), (top_k, top_k_tpot), (top_p, top_p_tpot)] = [Greedy, TopK, TopP].map(at);
    // Reading 163,840 logits bounds greedy and top-k alike; top-p's softmax and sort take far longer.
    assert!(greedy <= top_k, "{greedy} vs {top_k}");
    assert!(top_p > 10.0 * top_k, "top-p {top_p} s against top-k {top_k} s a step");
    assert!(top_p_tpot > top_k_tpot && top_k_tpot >= greedy_tpot, "{greedy_tpot} {top_k_tpot} {top_p_tpot}");
}

#[test]
fn offline_requests_draw_their_lengths_from_a_length_file_and_show_a_steady_state() {
    let dir = scratch("lengths");
    let rows = [(120u32, 6u32), (300, 12), (48, 20)];
    let mut text = String::from("prompt_tokens,output_tokens\n");
    for (p, o) in rows {
        text.push_str(&format!("{p},{o}\n"));
    }
    std::fs::write(dir.join("lengths.csv"), text).unwrap();
    let workload = dir.join("w.toml");
    std::fs::write(
        &workload,
        "base = \"llama3.1-70b-decode\"\nmodel = \"llama3.1-8b\"\n[scenario]\nphase = \"prefill\"\nbatch = 8\n\
         [plan]\nattention_tensor_parallel = 4\n\
         [requests]\narrivals = \"offline\"\ncount = 40\nlengths = \"lengths.csv\"\n\
         [serving]\ntoken_budget = 1024\n",
    )
    .unwrap();
    let w = workload.to_str().unwrap();
    // Every request arrives at time zero with the lengths of one of the file's lines.
    let written = dir.join("requests.csv");
    let o = npusim(&["requests", "--workload", w, "--out", written.to_str().unwrap()]);
    assert_eq!(o.status, 0, "{}", o.stderr);
    let (_, requests) = traces::requests::parse("requests.csv", &std::fs::read_to_string(&written).unwrap()).unwrap();
    assert_eq!(requests.len(), 40);
    assert!(requests.iter().all(|r| r.arrival == sim_core::Time::ZERO));
    assert!(requests.iter().all(|r| rows.contains(&(r.prompt_tokens, r.output_tokens))), "{requests:?}");
    for row in rows {
        assert!(requests.iter().any(|r| (r.prompt_tokens, r.output_tokens) == row), "{row:?} is drawn");
    }
    // Forty requests through a batch of eight: the batch fills, turns over,
    // then drains, and the steady state runs faster than the whole run.
    let o = npusim(&["run", "--hw", "rebel-quad", "--workload", w, "--json"]);
    assert_eq!(o.status, 0, "{}", o.stderr);
    let report: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    let steady = &report["steady_state"];
    assert!(steady["from_s"].as_f64().unwrap() < steady["to_s"].as_f64().unwrap(), "{steady}");
    assert!(steady["tokens"].as_u64().unwrap() > 0);
    let whole = report["throughput_tokens_per_s"].as_f64().unwrap();
    assert!(steady["tokens_per_s"].as_f64().unwrap() > whole, "steady {steady} against {whole}");

    // A length file with a bad line is named by line and column.
    std::fs::write(dir.join("lengths.csv"), "prompt_tokens,output_tokens\n12,3\n40,x\n").unwrap();
    let o = npusim(&["run", "--hw", "rebel-quad", "--workload", w]);
    assert_eq!(o.status, 2);
    assert!(o.stderr.contains("lengths.csv:3:4") && o.stderr.contains("output_tokens"), "{}", o.stderr);
}

#[test]
fn independent_replicas_keep_decoding_while_another_replica_prefills() {
    // Llama-3.1-8B at TP 1 on a REBEL-Quad: four data-parallel replicas, one a chiplet.
    // Four requests decode, one on each; then a 4,000-token prompt arrives and
    // goes to one replica. Only that replica's decoder waits for the prefill,
    // unless the plan holds the replicas in lockstep.
    let mut w = small("[scenario]\nphase = \"prefill\"\n[requests]\narrivals = \"trace\"\nfile = \"t.csv\"\n");
    w.spec.plan.attention_tensor_parallel = 1;
    let ms = |t: u64| sim_core::Time::from_ps(t * 1_000_000_000);
    let mut trace: Vec<TraceRequest> =
        (0..4).map(|_| TraceRequest { arrival: ms(0), prompt_tokens: 64, output_tokens: 40 }).collect();
    trace.push(TraceRequest { arrival: ms(60), prompt_tokens: 4000, output_tokens: 2 });
    let Some(Requests::Trace { rows, .. }) = &mut w.spec.requests else { unreachable!() };
    *rows = trace;
    // Per decoder: whether its longest gap between tokens is over 3x its median gap.
    let stalled = |w: &Workload| {
        let r = run(&hardware("rebel-quad"), w, 1).unwrap();
        let tokens: Vec<u32> = r.requests.iter().map(|q| q.tokens).collect();
        assert_eq!(tokens, [40, 40, 40, 40, 2], "every request finished");
        let stalled: Vec<bool> = r.requests[..4]
            .iter()
            .map(|q| {
                let mut gaps: Vec<u64> = q.token_times.windows(2).map(|p| (p[1] - p[0]).as_ps()).collect();
                gaps.sort();
                gaps[gaps.len() - 1] > gaps[gaps.len() / 2] * 3
            })
            .collect();
        (stalled.iter().filter(|&&s| s).count(), r.steps.len())
    };
    let (apart, apart_steps) = stalled(&w);
    // Replicas stepping on their own interleave their events; the run is still the same run.
    let once = reports::Report::new(&run(&hardware("rebel-quad"), &w, 1).unwrap(), 0.0).to_json();
    let again = reports::Report::new(&run(&hardware("rebel-quad"), &w, 1).unwrap(), 0.0).to_json();
    assert_eq!(once, again, "the same inputs and seed give the same report");
    assert_eq!(apart, 1, "one decoder shares the prompt's replica");
    w.spec.plan.lockstep_replicas = true;
    let (together, together_steps) = stalled(&w);
    assert_eq!(together, 4, "in lockstep every decoder waits for the prompt");
    // Apart, each replica's steps are steps of their own.
    assert_eq!(together_steps, 40, "a step per token; the prompt joins one of them");
    assert!(apart_steps >= 4 * 40, "{apart_steps} steps");
}

#[test]
fn latencies_count_only_the_requests_arriving_between_the_warmup_and_the_cooldown() {
    let mut w = poisson(64.0);
    let r = run(&hardware("rebel-quad"), &w, 1).unwrap();
    let all = reports::Report::new(&r, 0.0);
    assert!(all.latency.window.is_none());
    // A warm-up between the arrivals: the later requests alone are timed.
    let middle = r.requests[20].arrival;
    w.spec.serving.warmup = Some(models::units::Duration(middle));
    let r = run(&hardware("rebel-quad"), &w, 1).unwrap();
    let warm = reports::Report::new(&r, 0.0);
    let after = r.requests.iter().filter(|q| q.arrival >= middle).count() as u64;
    assert_eq!(warm.latency.window.map(|a| a.requests), Some(after));
    assert!(after < 40 && after > 0);
    assert_eq!(warm.tokens_generated, all.tokens_generated, "every request is still served");
    assert_ne!(warm.latency.ttft_s, all.latency.ttft_s);
    // A cool-down as well leaves out the requests arriving near the end, as
    // the batch empties: those up to the 31st arrival are timed.
    let last = r.requests.iter().map(|q| q.arrival).max().unwrap();
    let until = r.requests[30].arrival;
    w.spec.serving.cooldown = Some(models::units::Duration(last - until));
    let r = run(&hardware("rebel-quad"), &w, 1).unwrap();
    let windowed = reports::Report::new(&r, 0.0);
    let between = r.requests.iter().filter(|q| q.arrival >= middle && q.arrival <= until).count() as u64;
    assert!(between > 0 && between < after, "{between} of {after}");
    let window = windowed.latency.window.unwrap();
    assert_eq!(window.requests, between);
    assert_eq!((window.from_s, window.until_s), (middle.as_secs_f64(), until.as_secs_f64()));
    assert_ne!(windowed.latency.tpot_s, warm.latency.tpot_s);
    // A warm-up after the last arrival would time nothing: refused, by its field.
    let text = "base = \"llama3.1-70b-decode\"\nmodel = \"llama3.1-8b\"\n[scenario]\nphase = \"prefill\"\nbatch = 8\n\
                [plan]\nattention_tensor_parallel = 4\n[requests]\narrivals = \"poisson\"\nrate = 10.0\ncount = 4\n\
                [serving]\nwarmup = \"1000 s\"\n";
    let o = npusim(&["run", "--hw", "rebel-quad", "--workload", &file("w.toml", text)]);
    assert_eq!(o.status, 2, "{}", o.stderr);
    assert!(o.stderr.contains("serving.warmup = 1000 s"), "{}", o.stderr);
    // So would a cool-down as long as the arrivals.
    let text = text.replace("warmup = \"1000 s\"", "cooldown = \"1000 s\"");
    let o = npusim(&["run", "--hw", "rebel-quad", "--workload", &file("w.toml", &text)]);
    assert_eq!(o.status, 2, "{}", o.stderr);
    assert!(o.stderr.contains("serving.cooldown = 1000 s"), "{}", o.stderr);
}

#[test]
fn the_summary_describes_the_requests_served_not_the_scenarios_defaults() {
    let dir = scratch("served");
    std::fs::write(dir.join("r.csv"), "arrival_s,prompt_tokens,output_tokens\n0,100,2\n0.01,300,4\n0.02,200,6\n")
        .unwrap();
    std::fs::write(
        dir.join("w.toml"),
        "base = \"axk1-decode\"\nname = \"t\"\n[requests]\narrivals = \"trace\"\nfile = \"r.csv\"\n",
    )
    .unwrap();
    let w = dir.join("w.toml");
    let out = npusim(&["run", "--workload", w.to_str().unwrap()]);
    assert_eq!(out.status, 0, "{}", out.stderr);
    assert!(
        out.stdout
            .contains("prompts mean 200 (p50 200, p99 300, max 300) tokens, outputs mean 4 (p50 4, p99 6, max 6)"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("2,048"), "the scenario's default context is not what was served: {}", out.stdout);
    let json: serde_json::Value =
        serde_json::from_str(&npusim(&["run", "--workload", w.to_str().unwrap(), "--json"]).stdout).unwrap();
    assert_eq!(json["workload"]["served_output_tokens"]["mean"], 4.0);
    assert_eq!(json["workload"]["served_prompt_tokens"]["min"], 100);
}
