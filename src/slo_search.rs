//! `compare --slo`: each system's highest request rate whose p99 TTFT and
//! p99 TPOT meet the workload's `serving.slo`, found by doubling (or
//! halving) the workload's rate until the objective flips, then bisecting.

use crate::{Failure, on_system};
use serde::Serialize;
use workloads::Workload;
use workloads::workload::{Requests, Slo};

/// Bisections after the bracket is found: the rate is known to within 2^-6 of it.
const BISECTIONS: u32 = 6;
/// Doublings or halvings tried before giving up on a bracket.
const STEPS: u32 = 10;

/// A system's best rate under the objective, and what it served there.
#[derive(Clone, Debug, Serialize)]
pub struct Best {
    pub hardware: String,
    /// The highest arrival rate found that meets the objective (requests/s); null if none does.
    pub rate_per_s: Option<f64>,
    pub throughput_tokens_per_s: Option<f64>,
    pub ttft_p99_s: Option<f64>,
    pub tpot_p99_s: Option<f64>,
    /// Simulations the search ran.
    pub runs: u32,
}

/// The workload's objective and its rate, or why it cannot be searched.
pub fn objective(workload: &Workload) -> Result<(Slo, f64), Failure> {
    let slo = workload.spec.serving.slo.ok_or_else(|| {
        Failure::Input(format!(
            "--slo: workload `{}` sets no serving.slo; add slo = {{ ttft = \"2 s\", tpot = \"50 ms\" }} to [serving]",
            workload.spec.name
        ))
    })?;
    match &workload.spec.requests {
        Some(Requests::Poisson { rate, .. } | Requests::Gamma { rate, .. }) if *rate > 0.0 => Ok((slo, *rate)),
        _ => Err(Failure::Input(format!(
            "--slo: workload `{}` needs [requests] with arrivals = \"poisson\" or \"gamma\" and a rate above 0, \
             whose rate the search varies",
            workload.spec.name
        ))),
    }
}

fn at_rate(workload: &Workload, rate: f64) -> Workload {
    let mut w = workload.clone();
    if let Some(Requests::Poisson { rate: r, .. } | Requests::Gamma { rate: r, .. }) = &mut w.spec.requests {
        *r = rate;
    }
    w
}

/// The search on one system (`name` for errors).
pub fn best(
    system: &models::spec::SystemSpec,
    name: &str,
    workload: &Workload,
    (slo, start): (&Slo, f64),
    seed: u64,
    source: &str,
) -> Result<Best, Failure> {
    let mut runs = 0;
    let mut measure = |rate: f64| -> Result<(bool, reports::Report), Failure> {
        runs += 1;
        let result = workloads::run(system, &at_rate(workload, rate), seed).map_err(|e| on_system(source, name, e))?;
        let report = reports::Report::new(&result, 0.0);
        let p99 = |d: &Option<reports::metrics::Distribution>| d.as_ref().map_or(f64::INFINITY, |d| d.p99);
        let meets = p99(&report.latency.ttft_s) <= slo.ttft.time().as_secs_f64()
            && p99(&report.latency.tpot_s) <= slo.tpot.time().as_secs_f64();
        Ok((meets, report))
    };
    let (first, report) = measure(start)?;
    // (rate, report) that meets, and a rate that does not.
    let (mut good, mut bad) = (first.then_some((start, report)), None);
    let mut rate = start;
    for _ in 0..STEPS {
        if good.is_some() && bad.is_some() {
            break;
        }
        rate = if good.is_some() { rate * 2.0 } else { rate / 2.0 };
        let (meets, report) = measure(rate)?;
        if meets {
            good = Some((rate, report));
        } else {
            bad = Some(rate);
        }
    }
    if let (Some((mut lo, mut report)), Some(mut hi)) = (good.take(), bad) {
        for _ in 0..BISECTIONS {
            let mid = (lo + hi) / 2.0;
            match measure(mid)? {
                (true, r) => (lo, report) = (mid, r),
                (false, _) => hi = mid,
            }
        }
        good = Some((lo, report));
    }
    let p99 = |d: &Option<reports::metrics::Distribution>| d.as_ref().map(|d| d.p99);
    Ok(Best {
        hardware: system.name.clone(),
        rate_per_s: good.as_ref().map(|(r, _)| *r),
        throughput_tokens_per_s: good.as_ref().map(|(_, r)| r.throughput_tokens_per_s),
        ttft_p99_s: good.as_ref().and_then(|(_, r)| p99(&r.latency.ttft_s)),
        tpot_p99_s: good.as_ref().and_then(|(_, r)| p99(&r.latency.tpot_s)),
        runs,
    })
}

/// The search's results as lines under the comparison table.
pub fn table(slo: &Slo, best: &[Best]) -> String {
    let mut s = format!(
        "\nHighest request rate meeting p99 TTFT <= {} and p99 TPOT <= {} (to within 2%):\n\n\
         | system | requests/s | tokens/s | TTFT p99 | TPOT p99 |\n| --- | ---: | ---: | ---: | ---: |\n",
        slo.ttft, slo.tpot
    );
    let first = best.first().and_then(|b| b.rate_per_s);
    for b in best {
        let cell = |v: Option<f64>, scale: f64, unit: &str| v.map_or("-".into(), |v| format!("{:.2}{unit}", v * scale));
        let ratio = match (b.rate_per_s, first) {
            (Some(r), Some(f)) if f > 0.0 => format!(" ({:.2}x)", r / f),
            _ => String::new(),
        };
        s.push_str(&format!(
            "| {} | {}{ratio} | {} | {} | {} |\n",
            b.hardware,
            cell(b.rate_per_s, 1.0, ""),
            cell(b.throughput_tokens_per_s, 1.0, ""),
            cell(b.ttft_p99_s, 1e3, " ms"),
            cell(b.tpot_p99_s, 1e3, " ms"),
        ));
    }
    if best.iter().any(|b| b.rate_per_s.is_none()) {
        s.push_str(&format!("\n`-`: no rate down to 1/{} of the workload's meets the objective.\n", 1 << STEPS));
    }
    s
}
