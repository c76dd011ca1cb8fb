//! The short human summary printed after a run: the few numbers that matter
//! and the bottleneck.

use crate::report::Report;
use std::fmt::Write;
use workloads::lengths::Length;

pub(crate) fn time(seconds: f64) -> String {
    if seconds >= 1.0 {
        format!("{seconds:.3} s")
    } else if seconds >= 1e-3 {
        format!("{:.2} ms", seconds * 1e3)
    } else {
        format!("{:.1} us", seconds * 1e6)
    }
}

fn percent(fraction: f64) -> String {
    format!("{:.0}%", fraction * 100.0)
}

/// Groups digits in threes: 12345.6 -> "12,346".
pub(crate) fn grouped(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

pub fn summary(r: &Report) -> String {
    let mut s = String::new();
    let w = &r.workload;
    let _ = writeln!(
        s,
        "npusim {} | {} on {} ({} chiplets), seed {}",
        r.npusim_version, w.name, r.hardware.name, r.hardware.chiplets, r.seed
    );
    let _ = writeln!(
        s,
        "  {} {}: batch {}, {}; weights {}, KV {}; {}DP {} x TP {}, EP {}",
        w.model,
        w.phase,
        w.batch,
        served(w),
        w.weight_dtype,
        w.kv_dtype,
        if w.pipeline_parallel > 1 { format!("PP {} x ", w.pipeline_parallel) } else { String::new() },
        w.data_parallel,
        w.attention_tensor_parallel,
        w.expert_parallel
    );
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "  simulated time     {} ({} steps, {} each on average)",
        time(r.simulated_seconds),
        r.steps.count,
        time(r.steps.mean_s)
    );
    let _ = writeln!(
        s,
        "  throughput         {} tokens/s, {:.2} requests/s ({} requests)",
        grouped(r.throughput_tokens_per_s),
        r.throughput_requests_per_s,
        r.requests
    );
    let windows = [
        ("steady state", &r.steady_state, "the batch full and turning over"),
        ("full batch  ", &r.full_batch, "every request running, before the first finished"),
    ];
    for (label, window, what) in windows {
        if let Some(w) = window {
            let (rate, from, to) = (grouped(w.tokens_per_s), time(w.from_s), time(w.to_s));
            let _ = writeln!(s, "  {label}       {rate} tokens/s from {from} to {to} ({what})");
        }
    }
    if let Some(g) = &r.goodput {
        let _ = writeln!(
            s,
            "  goodput            {:.2} requests/s: {} of requests met TTFT <= {} and TPOT <= {}",
            g.requests_per_s,
            percent(g.fraction),
            time(g.slo_ttft_s),
            time(g.slo_tpot_s)
        );
    }
    if let Some(w) = r.latency.window {
        let _ = writeln!(
            s,
            "  latencies          of the {} requests arriving from {} to {}",
            w.requests,
            time(w.from_s),
            time(w.until_s)
        );
    }
    for (name, d) in [("TTFT", r.latency.ttft_s), ("TPOT", r.latency.tpot_s), ("ITL ", r.latency.itl_s)] {
        if let Some(d) = d {
            let _ = writeln!(
                s,
                "  {name} mean / p50 / p90 / p99   {} / {} / {} / {}",
                time(d.mean),
                time(d.p50),
                time(d.p90),
                time(d.p99)
            );
        }
    }
    if r.preemptions > 0 {
        let _ = writeln!(s, "  preemptions        {} (KV cache full; requests recomputed)", r.preemptions);
    }
    let _ = writeln!(
        s,
        "  energy             {:.1} J: {:.3} J/token, {} W on average",
        r.energy_j.total,
        r.joules_per_token,
        grouped(r.average_power_w)
    );
    if let Some(cost) = &r.cost {
        let _ = writeln!(s, "  cost               {}", cost_line(cost));
    }
    if let Some(card) = &r.card_power {
        let _ = writeln!(
            s,
            "  accelerators       {:.1} J: {:.3} J/token, {} W per card on average of its {} W TDP",
            r.energy_j.accelerators,
            r.accelerator_joules_per_token,
            grouped(card.average_w),
            grouped(card.tdp_w)
        );
        if card.over_tdp {
            let _ = writeln!(
                s,
                "  warning            a card draws {} W on average, over its {} W TDP: the spec's energy figures overstate the load",
                grouped(card.average_w),
                grouped(card.tdp_w)
            );
        }
    }
    if let Some(b) = &r.bottleneck {
        let _ = writeln!(
            s,
            "  bottleneck         {} (busiest one {} busy): {}",
            b.class,
            percent(b.utilization),
            b.explanation
        );
    }
    // Each part as a share and as time per step: the host's part is small but on every token's path.
    let sh = &r.steps.share;
    let part = |share: f64| format!("{:.1}% ({})", share * 100.0, time(share * r.steps.mean_s));
    let _ = writeln!(
        s,
        "  step time          host before launch {} | devices {} | host sampling {}",
        part(sh.host_before_launch),
        part(sh.devices),
        part(sh.host_after_logits)
    );
    let util: Vec<String> = r
        .utilization
        .iter()
        .map(|(k, v)| format!("{k} {}/{}", percent(*v), percent(r.utilization_max.get(k).copied().unwrap_or(0.0))))
        .collect();
    let _ = writeln!(s, "  utilisation        {} (mean/busiest)", util.join(" | "));
    hot_spots(&mut s, r);
    let mut parts: Vec<(&String, &f64)> = r.energy_j.breakdown.iter().collect();
    parts.sort_by(|a, b| b.1.total_cmp(a.1).then(a.0.cmp(b.0)));
    let parts: Vec<String> = parts
        .iter()
        .take(5)
        .map(|(k, v)| format!("{k} {}", percent(**v / r.energy_j.total.max(f64::MIN_POSITIVE))))
        .collect();
    let _ = writeln!(s, "  energy breakdown   {}", parts.join(" | "));
    let _ = writeln!(s, "  ({} events in {:.2} s of wall time)", grouped(r.events as f64), r.wall_seconds);
    s
}

/// The busiest memory channel, on-chip link and chip-to-chip link.
fn hot_spots(s: &mut String, r: &Report) {
    let c = &r.components;
    let channel = c
        .memories
        .iter()
        .flat_map(|m| m.channel_busy_fraction.iter().enumerate().map(move |(i, b)| (*b, &m.path, i)))
        .max_by(|a, b| a.0.total_cmp(&b.0));
    if let Some((busy, path, i)) = channel {
        let least = c.memories.iter().flat_map(|m| m.channel_busy_fraction.iter().copied()).fold(f64::MAX, f64::min);
        let _ = writeln!(
            s,
            "  memory channels    busiest {path} channel {i} {} (least busy {})",
            percent(busy),
            percent(least)
        );
    }
    let noc = c.networks.iter().max_by(|a, b| a.link_busy_max.total_cmp(&b.link_busy_max));
    if let Some(n) = noc {
        let link = n.busiest_link.map_or(String::new(), |(a, b)| format!(" link {a}->{b}"));
        let _ = writeln!(
            s,
            "  on-chip network    busiest {}{link} {}; links {} busy on average",
            n.path,
            percent(n.link_busy_max),
            percent(c.networks.iter().map(|n| n.link_busy_mean).sum::<f64>() / c.networks.len() as f64)
        );
    }
    if let Some(l) = c.links.iter().filter(|l| l.bytes > 0).max_by(|a, b| a.busy_fraction.total_cmp(&b.busy_fraction)) {
        let _ = writeln!(
            s,
            "  chip-to-chip       busiest {} ({}) {}, {:.1} MB",
            l.path,
            l.class,
            percent(l.busy_fraction),
            l.bytes as f64 / 1e6
        );
    }
}

/// A fixed count with thousands separators, or the distribution it was drawn from.
/// The lengths of the requests served: "context 2,048 tokens, 4 output tokens
/// each" where they are all alike, else their spread.
fn served(w: &crate::report::WorkloadSummary) -> String {
    let (Some(prompt), Some(output)) = (&w.served_prompt_tokens, &w.served_output_tokens) else {
        return format!(
            "context {} tokens, {} output tokens each",
            length(&w.context_tokens),
            length(&w.output_tokens)
        );
    };
    if prompt.min == prompt.max && output.min == output.max {
        return format!(
            "context {} tokens, {} output tokens each",
            grouped(prompt.min as f64),
            grouped(output.min as f64)
        );
    }
    let spread = |c: &crate::report::Counts| {
        format!(
            "mean {} (p50 {}, p99 {}, max {})",
            grouped(c.mean),
            grouped(c.p50 as f64),
            grouped(c.p99 as f64),
            grouped(c.max as f64)
        )
    };
    format!("prompts {} tokens, outputs {} tokens", spread(prompt), spread(output))
}

fn length(l: &Length) -> String {
    match l {
        Length::Fixed(n) => grouped(*n as f64),
        Length::Drawn(spread) => spread.to_string(),
    }
}

/// `$0.42 per million tokens ($12.3/h of purchase, $1.05/h of power); 1.23 J/token at the wall`.
fn cost_line(c: &crate::cost::Cost) -> String {
    let mut parts = Vec::new();
    match c.usd_per_million_tokens {
        Some(usd) => parts.push(format!("${usd:.3} per million tokens")),
        None => parts.push(format!("per token: needs {}", c.missing.join(", "))),
    }
    let hourly: Vec<String> = [("purchase", c.capital_usd_per_hour), ("power", c.power_usd_per_hour)]
        .iter()
        .filter_map(|(what, usd)| usd.map(|u| format!("${u:.2}/h of {what}")))
        .collect();
    if !hourly.is_empty() {
        parts[0] = format!("{} ({})", parts[0], hourly.join(", "));
    }
    if let Some(j) = c.wall_joules_per_token {
        parts.push(format!("{j:.3} J/token at the wall"));
    }
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn digits_are_grouped() {
        assert_eq!(super::grouped(1234567.4), "1,234,567");
        assert_eq!(super::grouped(999.0), "999");
        assert_eq!(super::grouped(1000.0), "1,000");
    }
}
