//! What choosing the next token costs the host: the decoding method
//! (greedy, top-k or top-p) over the candidates that reach it, the whole
//! vocabulary's logits or the top-k each device kept, as work for the CPU
//! model.
//!
//! A first-order model of a compiled sampler, per request:
//! - every method reads its candidates and converts them to FP32;
//! - greedy keeps a running maximum;
//! - top-k scales by the temperature and keeps the k best in a heap; a
//!   candidate enters the heap about `k·ln(V/k)` times for `V` candidates
//!   in random order, each entry sifting `log2 k` levels; then a softmax over
//!   the k and a draw;
//! - top-p needs the softmax over every candidate (max, exp, sum, scale)
//!   and then sorts them all by probability, `V·log2 V` comparisons, to
//!   find the smallest set whose mass reaches p, each pass over the sorted
//!   values (8 bytes a candidate, a working set that an L2 holds). Its cost
//!   does not depend on p: the sort dominates.
//!
//! With the full A.X K1 vocabulary (163,840 logits) top-p costs about 6 M
//! instructions per request, against tens of thousands for greedy: the
//! method alone can make sampling a visible part of a decode step.

use crate::workload::{Decoding, Sampling, Scenario};
use models::cpu::HostTask;
use serde::{Deserialize, Serialize};

/// Vector operations per candidate: read and convert, then running max.
const GREEDY_FLOPS: u64 = 2;
/// Convert, scale by the temperature, compare with the heap's threshold.
const TOP_K_FLOPS: u64 = 3;
/// Convert, scale, max, exp (a polynomial of about 8 operations), sum, normalise.
const TOP_P_FLOPS: u64 = 13;
/// Instructions per heap level sifted (compare, move, index arithmetic).
const HEAP_LEVEL_INSTRUCTIONS: f64 = 4.0;
/// Instructions per candidate of the softmax and draw over a short list.
const SHORT_LIST_INSTRUCTIONS: u64 = 30;
/// Instructions per comparison of a sort (compare and move).
const SORT_INSTRUCTIONS: f64 = 2.0;
/// Bytes a sorted candidate takes: an FP32 probability and a vocabulary index.
const SORTED_BYTES: u64 = 8;
/// Instructions per candidate to scan the sorted list for the mass p and draw.
const SCAN_INSTRUCTIONS: u64 = 4;

/// What the host samples among when logits arrive, and how.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SampleWork {
    /// Values the host chooses among, per request.
    pub candidates_per_request: u64,
    pub bytes_per_candidate: u64,
    #[serde(default)]
    pub decoding: Decoding,
    #[serde(default = "one")]
    pub top_k: u32,
}

fn one() -> u32 {
    1
}

impl SampleWork {
    /// Host sampling over the whole vocabulary of `vocab` logits, or over
    /// the candidates each of `devices` devices kept.
    pub fn of(vocab: u32, s: &Scenario, devices: u32) -> SampleWork {
        let (candidates_per_request, bytes_per_candidate) = match s.sampling {
            Sampling::Host => (vocab as u64, s.activation_dtype.bytes()),
            // A candidate is a value and a vocabulary index: 4 + 4 bytes.
            Sampling::Device => (s.device_candidates() as u64 * devices as u64, 8),
        };
        SampleWork { candidates_per_request, bytes_per_candidate, decoding: s.decoding, top_k: s.top_k }
    }

    /// The host's work to choose the next token of `rows` requests (logit
    /// rows), `fixed` instructions per request for the rest (detokenising,
    /// streaming, bookkeeping), on up to `cores` cores.
    pub fn task(&self, rows: u64, fixed: u64, cores: u32) -> HostTask {
        let v = self.candidates_per_request;
        let read = v * self.bytes_per_candidate;
        // Top-p's sort passes over every candidate's probability and index.
        let (sorted, sort_passes) = match self.decoding {
            Decoding::TopP => (v * SORTED_BYTES, (v.max(2) as f64).log2().ceil() as u64),
            Decoding::Greedy | Decoding::TopK => (0, 0),
        };
        let (flops, instructions) = match self.decoding {
            Decoding::Greedy => (GREEDY_FLOPS, 0),
            Decoding::TopK => {
                let k = (self.top_k as u64).clamp(1, v.max(1));
                let entries = k as f64 * ((v as f64 / k as f64).ln() + 1.0);
                let levels = (k as f64).log2().max(1.0);
                (TOP_K_FLOPS, (entries * levels * HEAP_LEVEL_INSTRUCTIONS) as u64 + SHORT_LIST_INSTRUCTIONS * k)
            }
            Decoding::TopP => {
                let comparisons = v as f64 * (v.max(2) as f64).log2();
                (TOP_P_FLOPS, (comparisons * SORT_INSTRUCTIONS) as u64 + SCAN_INSTRUCTIONS * v)
            }
        };
        HostTask {
            name: "sample",
            instructions: (fixed + instructions) * rows,
            ilp: 3.0,
            vector_flops: flops * v * rows,
            bytes: (read + sorted * sort_passes) * rows,
            working_set: (read + sorted) * rows,
            threads: (rows.min(u32::MAX as u64) as u32).clamp(1, cores.max(1)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn work(decoding: Decoding) -> SampleWork {
        SampleWork { candidates_per_request: 163_840, bytes_per_candidate: 2, decoding, top_k: 50 }
    }

    #[test]
    fn methods_cost_in_the_order_of_their_work() {
        let [g, k, p] = [Decoding::Greedy, Decoding::TopK, Decoding::TopP].map(|d| work(d).task(1, 20_000, 8));
        assert!(g.vector_flops < k.vector_flops && k.vector_flops < p.vector_flops);
        assert_eq!(g.instructions, 20_000);
        assert!(k.instructions > g.instructions && k.instructions < 100_000, "top-50 heap: {}", k.instructions);
        // Sorting 163,840 candidates: about 17.3 comparisons each.
        assert!(p.instructions > 5_000_000 && p.instructions < 8_000_000, "{}", p.instructions);
        assert_eq!(g.bytes, 163_840 * 2);
    }

    #[test]
    fn work_scales_with_requests_and_spreads_over_cores() {
        let one = work(Decoding::TopP).task(1, 20_000, 8);
        let many = work(Decoding::TopP).task(16, 20_000, 8);
        assert_eq!(many.instructions, 16 * one.instructions);
        assert_eq!(many.vector_flops, 16 * one.vector_flops);
        assert_eq!((one.threads, many.threads), (1, 8));
    }
}
