//! The MoE routing model: which experts each token picks, drawn from a seeded
//! distribution, so load imbalance reaches the step time.

use crate::workload::Routing;
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};

/// Draws expert choices for tokens.
#[derive(Debug, Clone)]
pub struct Router {
    rng: Xoshiro256PlusPlus,
    /// Cumulative selection weights over experts, last entry the total.
    cumulative: Vec<f64>,
    experts: u32,
    per_token: u32,
}

impl Router {
    pub fn new(routing: &Routing, experts: u32, per_token: u32, seed: u64) -> Router {
        let mut rng = Xoshiro256PlusPlus::seed_from_u64(seed);
        let weights: Vec<f64> = match *routing {
            Routing::Uniform => vec![1.0; experts as usize],
            Routing::Zipf { exponent } => {
                // Popularity ranks assigned to experts by a seeded shuffle.
                let mut rank: Vec<u32> = (0..experts).collect();
                for i in (1..rank.len()).rev() {
                    let j = rng.random_range(0..=i);
                    rank.swap(i, j);
                }
                rank.iter().map(|&r| 1.0 / ((r + 1) as f64).powf(exponent)).collect()
            }
        };
        let cumulative = weights
            .iter()
            .scan(0.0, |acc, w| {
                *acc += w;
                Some(*acc)
            })
            .collect();
        Router { rng, cumulative, experts, per_token }
    }

    /// The distinct experts each of `tokens` tokens picks.
    pub fn route(&mut self, tokens: u32) -> Vec<Vec<u32>> {
        let k = self.per_token.min(self.experts) as usize;
        let total = self.cumulative.last().copied().unwrap_or(0.0);
        (0..tokens)
            .map(|_| {
                let mut chosen: Vec<u32> = Vec::with_capacity(k);
                while chosen.len() < k {
                    let x = self.rng.random_range(0.0..total);
                    let e = self.cumulative.partition_point(|&c| c <= x).min(self.experts as usize - 1) as u32;
                    if !chosen.contains(&e) {
                        chosen.push(e);
                    }
                }
                chosen
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(routing: &Routing) -> Vec<u32> {
        let mut r = Router::new(routing, 64, 8, 7);
        let mut load = vec![0u32; 64];
        for token in r.route(4_000) {
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
        let a = Router::new(&Routing::Zipf { exponent: 1.0 }, 192, 8, 42).route(100);
        let b = Router::new(&Routing::Zipf { exponent: 1.0 }, 192, 8, 42).route(100);
        assert_eq!(a, b);
    }
}
