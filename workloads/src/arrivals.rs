//! When requests arrive and how long they are: the scenario's batch at time
//! zero, MLPerf-style offline requests, a seeded Poisson or gamma arrival
//! process, or a recorded trace; lengths from the scenario's distributions
//! or drawn from an empirical length file.

use crate::scheduler::{Arrival, batch_arrivals, draw_lengths, length_rng};
use crate::workload::{LengthFile, Requests, WorkloadSpec};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution, Exp, Gamma};
use sim_core::Time;

/// Mixed into the run's seed for the draws of arrival gaps.
const ARRIVAL_STREAM: u64 = 0x6172_7269_7661_6c73;

/// The requests of `w`, in arrival order, drawn from `seed`.
pub fn arrivals(w: &WorkloadSpec, seed: u64) -> Result<Vec<Arrival>, String> {
    let s = &w.scenario;
    // Gaps in seconds from the distribution's own sampler, on a stream apart
    // from the lengths', so the lengths match the batch's for the same seed.
    let from_gaps =
        |count: u32, file: &Option<LengthFile>, gap: &dyn Fn(&mut Xoshiro256PlusPlus) -> f64| -> Result<_, String> {
            let rows = match file {
                Some(f) if f.rows.is_empty() => {
                    return Err(format!("requests.lengths `{}` was not read: load the workload from its file", f.file));
                }
                Some(f) => Some(&f.rows),
                None => None,
            };
            let mut gaps = Xoshiro256PlusPlus::seed_from_u64(seed ^ ARRIVAL_STREAM);
            let mut lengths = length_rng(seed);
            let mut at = 0.0f64;
            Ok((0..count)
                .map(|i| {
                    if i > 0 {
                        at += gap(&mut gaps);
                    }
                    let at = Time::from_ps((at * 1e12).round() as u64);
                    match rows {
                        Some(rows) => {
                            let (prompt, output) = rows[lengths.random_range(0..rows.len())];
                            Arrival { at, prompt, output }
                        }
                        None => draw_lengths(s, at, &mut lengths),
                    }
                })
                .collect())
        };
    match &w.requests {
        None => Ok(batch_arrivals(s, seed)),
        Some(Requests::Offline { count, lengths }) => from_gaps(*count, lengths, &|_| 0.0),
        &Some(Requests::Poisson { rate, count, ref lengths }) => {
            let exp = Exp::new(rate).map_err(|e| format!("requests.rate = {rate}: {e}"))?;
            from_gaps(count, lengths, &|rng| exp.sample(rng))
        }
        &Some(Requests::Gamma { rate, cv, count, ref lengths }) => {
            // Mean gap 1/rate with coefficient of variation cv: shape 1/cv², scale cv²/rate.
            let shape = 1.0 / (cv * cv);
            let gamma = Gamma::new(shape, 1.0 / (rate * shape)).map_err(|e| format!("requests: {e}"))?;
            from_gaps(count, lengths, &|rng| gamma.sample(rng))
        }
        Some(Requests::Trace { file, count, rows }) => {
            if rows.is_empty() {
                return Err(format!("requests.file `{file}` was not read: load the workload from its file"));
            }
            let take = count.map_or(rows.len(), |c| (c as usize).min(rows.len()));
            Ok(rows[..take]
                .iter()
                .map(|r| Arrival { at: r.arrival, prompt: r.prompt_tokens, output: r.output_tokens })
                .collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::workload_preset;

    fn gaps(requests: Requests) -> Vec<f64> {
        let mut w = workload_preset("axk1-decode").unwrap().spec;
        w.requests = Some(requests);
        let a = arrivals(&w, 7).unwrap();
        a.windows(2).map(|p| (p[1].at - p[0].at).as_secs_f64()).collect()
    }

    fn mean_cv(x: &[f64]) -> (f64, f64) {
        let mean = x.iter().sum::<f64>() / x.len() as f64;
        let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / x.len() as f64;
        (mean, var.sqrt() / mean)
    }

    #[test]
    fn arrival_processes_have_the_asked_rate_and_burstiness() {
        let (mean, cv) = mean_cv(&gaps(Requests::Poisson { rate: 4.0, count: 20_000, lengths: None }));
        assert!((mean - 0.25).abs() < 0.01 && (cv - 1.0).abs() < 0.03, "Poisson: mean {mean}, cv {cv}");
        let (mean, cv) = mean_cv(&gaps(Requests::Gamma { rate: 4.0, cv: 3.0, count: 20_000, lengths: None }));
        assert!((mean - 0.25).abs() < 0.02 && (cv - 3.0).abs() < 0.3, "gamma: mean {mean}, cv {cv}");
    }
}
