//! One CSV line per request: when it arrived, was first scheduled, got its
//! first and last token, its lengths, latencies and preemptions.

use std::fmt::Write;
use workloads::RunResult;

/// The columns, in order.
pub const HEADER: &str = "id,arrival_s,first_scheduled_s,first_token_s,finish_s,prompt_tokens,output_tokens,\
ttft_s,tpot_s,e2e_s,preemptions";

/// The per-request CSV of a run; times in seconds from the start of the
/// run, empty where a request never got there (a TPOT needs two tokens).
pub fn requests_csv(r: &RunResult) -> String {
    let mut out = String::with_capacity(64 * (r.requests.len() + 1));
    out.push_str(HEADER);
    out.push('\n');
    let s = |t: Option<sim_core::Time>| t.map_or(String::new(), |t| format!("{:.9}", t.as_secs_f64()));
    for (id, q) in r.requests.iter().enumerate() {
        let _ = writeln!(
            out,
            "{id},{},{},{},{},{},{},{},{},{},{}",
            s(Some(q.arrival)),
            s(q.first_scheduled),
            s(q.first_token),
            s(q.last_token),
            q.prompt_tokens,
            q.tokens,
            s(q.ttft()),
            s(q.tpot()),
            s(q.e2e()),
            q.preemptions
        );
    }
    out
}
