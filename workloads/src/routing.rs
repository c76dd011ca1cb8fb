//! The MoE routing model: which experts each token picks, drawn from a seeded
//! distribution (uniform, Zipf, or a recorded per-layer histogram), so load
//! imbalance reaches the step time.

use crate::workload::Routing;
use models::input::{InputError, Problem};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};

/// Draws expert choices for tokens.
#[derive(Debug, Clone)]
pub struct Router {
    rng: Xoshiro256PlusPlus,
    /// Per MoE layer (cycled when there are fewer rows than layers): the
    /// selection weight of each expert.
    weights: Vec<Vec<f64>>,
    /// The same, cumulative, last entry the total.
    cumulative: Vec<Vec<f64>>,
    /// Per layer: experts with any weight, the most a token can pick.
    choosable: Vec<usize>,
    experts: u32,
    per_token: u32,
}

impl Router {
    pub fn new(routing: &Routing, experts: u32, per_token: u32, seed: u64) -> Router {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let weights: Vec<Vec<f64>> = match routing {
            Routing::Uniform => vec![vec![1.0; experts as usize]],
            &Routing::Zipf { exponent } => {
                // Popularity ranks assigned to experts by a seeded shuffle.
                let mut rank: Vec<u32> = (0..experts).collect();
                for i in (1..rank.len()).rev() {
                    let j = rng.random_range(0..=i);
                    rank.swap(i, j);
                }
                vec![rank.iter().map(|&r| 1.0 / ((r + 1) as f64).powf(exponent)).collect()]
            }
            Routing::Histogram { counts, .. } if !counts.is_empty() => counts.clone(),
            // Not loaded (the caller did not resolve the file): every expert alike.
            Routing::Histogram { .. } => vec![vec![1.0; experts as usize]],
        };
        let cumulative = weights
            .iter()
            .map(|layer| {
                layer
                    .iter()
                    .scan(0.0, |acc, w| {
                        *acc += w;
                        Some(*acc)
                    })
                    .collect()
            })
            .collect();
        let choosable = weights.iter().map(|layer| layer.iter().filter(|&&w| w > 0.0).count()).collect();
        Router { rng, weights, cumulative, choosable, experts, per_token }
    }

    /// Expected share of tokens each expert receives, averaged over layers.
    pub fn expected_load(&self) -> Vec<f64> {
        let mut load = vec![0.0; self.experts as usize];
        for layer in &self.weights {
            let total: f64 = layer.iter().sum();
            for (l, w) in load.iter_mut().zip(layer) {
                *l += w / total / self.weights.len() as f64;
            }
        }
        load
    }

    /// The distinct experts each of `tokens` tokens picks in MoE layer `layer`.
    pub fn route(&mut self, layer: u32, tokens: u32) -> Vec<Vec<u32>> {
        let which = layer as usize % self.cumulative.len();
        let k = (self.per_token.min(self.experts) as usize).min(self.choosable[which]);
        let cumulative = &self.cumulative[which];
        let total = cumulative.last().copied().unwrap_or(0.0);
        (0..tokens)
            .map(|_| {
                let mut chosen: Vec<u32> = Vec::with_capacity(k);
                while chosen.len() < k {
                    let x = self.rng.random_range(0.0..total);
                    let e = cumulative.partition_point(|&c| c <= x).min(self.experts as usize - 1) as u32;
                    if !chosen.contains(&e) {
                        chosen.push(e);
                    }
                }
                chosen
            })
            .collect()
    }
}

/// Parse a routing histogram: one line per MoE layer, the tokens each of
/// `experts` experts received, separated by spaces; `#` starts a comment.
/// Rows beyond the model's MoE layers are an error; fewer rows are cycled.
pub fn parse_histogram(source: &str, text: &str, experts: u32, moe_layers: u32) -> Result<Vec<Vec<f64>>, InputError> {
    let fail = |line: usize, column: usize, message: String| InputError {
        problems: vec![Problem {
            source: source.into(),
            line: Some(line),
            column: Some(column),
            path: "routing.file".into(),
            message,
        }],
    };
    let mut rows = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let content = raw.split('#').next().unwrap_or("");
        if content.trim().is_empty() {
            continue;
        }
        let mut row = Vec::new();
        let mut offset = 0;
        for word in content.split_whitespace() {
            let column = content[offset..].find(word).map_or(1, |p| offset + p + 1);
            offset = column - 1 + word.len();
            match word.parse::<f64>() {
                Ok(v) if v.is_finite() && v >= 0.0 => row.push(v),
                _ => return Err(fail(i + 1, column, format!("expected a token count of 0 or more, found `{word}`"))),
            }
        }
        if row.len() != experts as usize {
            return Err(fail(
                i + 1,
                1,
                format!("expected {experts} counts (one per routed expert), found {}", row.len()),
            ));
        }
        if row.iter().filter(|&&v| v > 0.0).count() < 1 {
            return Err(fail(i + 1, 1, "expected at least one expert with tokens, found none".into()));
        }
        rows.push(row);
    }
    if rows.is_empty() {
        return Err(InputError::general(source, "expected one line of counts per MoE layer, found none"));
    }
    if rows.len() > moe_layers as usize {
        return Err(InputError::general(
            source,
            format!("expected at most {moe_layers} lines (one per MoE layer), found {}", rows.len()),
        ));
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(routing: &Routing) -> Vec<u32> {
        let mut r = Router::new(routing, 64, 8, 7);
        let mut load = vec![0u32; 64];
        for token in r.route(0, 4_000) {
            assert_eq!(token.len(), 8);
            let mut sorted = token.clone();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(sorted.len(), 8, "experts within a token are distinct");
            for e in token {
                load[e as usize] += 1;
            }
        }
        load
    }

    #[test]
    fn zipf_is_more_skewed_than_uniform() {
        let max = |v: Vec<u32>| v.into_iter().max().unwrap();
        let uniform = max(load(&Routing::Uniform));
        let skewed = max(load(&Routing::Zipf { exponent: 1.2 }));
        // Uniform: 4,000 x 8 / 64 = 500 per expert on average.
        assert!(uniform < 600, "{uniform}");
        assert!(skewed > 1_500, "{skewed}");
    }

    #[test]
    fn the_same_seed_routes_the_same_way() {
        let a = Router::new(&Routing::Zipf { exponent: 1.0 }, 192, 8, 42).route(0, 100);
        let b = Router::new(&Routing::Zipf { exponent: 1.0 }, 192, 8, 42).route(0, 100);
        assert_eq!(a, b);
    }

    #[test]
    fn a_histogram_routes_each_layer_by_its_own_counts() {
        let text = "# layer 0 prefers expert 0, layer 1 expert 3\n9 1 0 0\n0 0 1 9\n";
        let counts = parse_histogram("h.txt", text, 4, 2).unwrap();
        let mut r = Router::new(&Routing::Histogram { file: "h.txt".into(), counts }, 4, 1, 1);
        let share = |r: &mut Router, layer, expert| {
            r.route(layer, 10_000).iter().filter(|t| t[0] == expert).count() as f64 / 10_000.0
        };
        assert!((share(&mut r, 0, 0) - 0.9).abs() < 0.02);
        assert_eq!(share(&mut r, 0, 2), 0.0, "an expert with no tokens is never chosen");
        assert!((share(&mut r, 1, 3) - 0.9).abs() < 0.02);
        assert!((r.expected_load()[0] - 0.45).abs() < 1e-9);
    }

    #[test]
    fn a_bad_histogram_is_located() {
        let e = parse_histogram("h.txt", "1 2 3 4\n1 2 x 4\n", 4, 2).unwrap_err();
        let p = &e.problems[0];
        assert_eq!((p.line, p.column), (Some(2), Some(5)));
        assert!(p.message.contains("found `x`"), "{}", p.message);
        let e = parse_histogram("h.txt", "1 2 3\n", 4, 2).unwrap_err();
        assert!(e.to_string().contains("expected 4 counts"), "{e}");
    }
}
