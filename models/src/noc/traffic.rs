//! Synthetic traffic for a network, as NoC studies use it: where packets go
//! ([`Pattern`]), when they are created ([`Bernoulli`]), and the ideal
//! saturation throughput a pattern's channel loads put on a topology.

use super::network::Traffic;
use super::topology::{Port, Topology, TopologyKind};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};

/// Where each node's packets go.
#[derive(Clone, Debug, PartialEq)]
pub enum Pattern {
    /// Any node, the source included, with equal probability.
    Uniform,
    /// Node `(x, y)` of a `k × k` arrangement sends to `(y, x)`.
    Transpose,
    /// Node `i` of `n` sends to `n − 1 − i` (each bit complemented when `n` is a power of two).
    BitComplement,
    /// A `fraction` of the packets go to one of `nodes`, the rest uniformly.
    Hotspot { nodes: Vec<u32>, fraction: f64 },
}

impl Pattern {
    /// Whether the pattern is defined on `topology`.
    pub fn check(&self, topology: &Topology) -> Result<(), String> {
        let n = topology.nodes();
        match self {
            Pattern::Transpose if side(n).is_none() => {
                Err(format!("transpose needs a square arrangement of nodes, and {n} nodes are not a square"))
            }
            Pattern::Transpose if topology.kind == TopologyKind::Mesh && topology.columns != topology.rows => {
                Err(format!("transpose needs a square mesh, not {}x{}", topology.columns, topology.rows))
            }
            Pattern::Hotspot { nodes, .. } if nodes.is_empty() => Err("a hotspot pattern needs hotspot nodes".into()),
            Pattern::Hotspot { nodes, .. } if nodes.iter().any(|&h| h >= n) => {
                Err(format!("hotspot nodes must be below {n}, the number of nodes"))
            }
            Pattern::Hotspot { fraction, .. } if !(0.0..=1.0).contains(fraction) => {
                Err(format!("the hotspot fraction must be within 0 to 1, not {fraction}"))
            }
            _ => Ok(()),
        }
    }

    /// Every destination of a packet from `src`, with its probability.
    pub fn destinations(&self, src: u32, topology: &Topology) -> Vec<(u32, f64)> {
        let n = topology.nodes();
        let uniform = |weight: f64| (0..n).map(move |d| (d, weight / n as f64));
        match self {
            Pattern::Uniform => uniform(1.0).collect(),
            Pattern::Transpose => {
                let k = side(n).unwrap_or(1);
                vec![((src % k) * k + src / k, 1.0)]
            }
            Pattern::BitComplement => vec![(n - 1 - src, 1.0)],
            Pattern::Hotspot { nodes, fraction } => {
                let each = fraction / nodes.len() as f64;
                uniform(1.0 - fraction).chain(nodes.iter().map(|&h| (h, each))).collect()
            }
        }
    }

    fn draw(&self, src: u32, topology: &Topology, rng: &mut Xoshiro256PlusPlus) -> u32 {
        let n = topology.nodes();
        match self {
            Pattern::Uniform => rng.random_range(0..n),
            Pattern::Transpose | Pattern::BitComplement => self.destinations(src, topology)[0].0,
            Pattern::Hotspot { nodes, fraction } => {
                if rng.random_range(0.0..1.0) < *fraction {
                    nodes[rng.random_range(0..nodes.len())]
                } else {
                    rng.random_range(0..n)
                }
            }
        }
    }

    /// The injection rate, in flits per node per cycle, at which the busiest
    /// channel (a link, or a node's injection or ejection port) carries one
    /// flit per cycle under the topology's routing: no router design can
    /// accept more. `link_capacity(from, to)` is a link's flits per cycle.
    pub fn ideal_saturation(&self, topology: &Topology, link_capacity: impl Fn(u32, u32) -> f64) -> f64 {
        let n = topology.nodes() as usize;
        let mut links: std::collections::BTreeMap<(u32, u32), f64> = Default::default();
        let mut ejection = vec![0.0; n];
        for src in 0..n as u32 {
            for (dest, p) in self.destinations(src, topology) {
                ejection[dest as usize] += p;
                let mut at = topology.router_of(src);
                if topology.kind == TopologyKind::Crossbar {
                    continue;
                }
                while let Port::To(next) = topology.route(at, dest) {
                    *links.entry((at, next)).or_default() += p;
                    at = next;
                }
            }
        }
        let busiest =
            links.iter().map(|(&(a, b), &load)| load / link_capacity(a, b)).chain(ejection).fold(1.0f64, f64::max);
        1.0 / busiest
    }
}

/// The side of a square of `n` nodes.
fn side(n: u32) -> Option<u32> {
    let k = (n as f64).sqrt().round() as u32;
    (k * k == n).then_some(k)
}

/// Open-loop Bernoulli traffic: each cycle, each node creates a packet of
/// `packet_flits` flits with probability `rate / packet_flits`, so that it
/// offers `rate` flits per cycle.
#[derive(Debug)]
pub struct Bernoulli {
    pattern: Pattern,
    topology: Topology,
    probability: f64,
    packet_flits: u32,
    rng: Xoshiro256PlusPlus,
}

impl Bernoulli {
    /// `rate` is in flits per node per cycle, at most one.
    pub fn new(pattern: Pattern, topology: Topology, rate: f64, packet_flits: u32, seed: u64) -> Result<Self, String> {
        pattern.check(&topology)?;
        if !(0.0..=1.0).contains(&rate) {
            return Err(format!("the offered load must be within 0 to 1 flit per node per cycle, not {rate}"));
        }
        if packet_flits == 0 {
            return Err("packets need at least one flit".into());
        }
        Ok(Bernoulli {
            pattern,
            topology,
            probability: rate / packet_flits as f64,
            packet_flits,
            rng: Xoshiro256PlusPlus::seed_from_u64(seed),
        })
    }
}

impl Traffic for Bernoulli {
    fn create(&mut self, _cycle: u64, node: u32) -> Option<(u32, u32)> {
        (self.rng.random_range(0.0..1.0) < self.probability)
            .then(|| (self.pattern.draw(node, &self.topology, &mut self.rng), self.packet_flits))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mesh(k: u32) -> Topology {
        Topology { kind: TopologyKind::Mesh, columns: k, rows: k }
    }

    #[test]
    fn uniform_traffic_on_a_mesh_is_bound_by_its_bisection() {
        // Half the traffic of each half crosses the k links of the bisection:
        // 4/k, unless the node's own port of one flit per cycle is tighter.
        for k in [2, 4, 8, 16] {
            let got = Pattern::Uniform.ideal_saturation(&mesh(k), |_, _| 1.0);
            assert!((got - (4.0 / k as f64).min(1.0)).abs() < 1e-9, "{k}: {got}");
        }
    }

    #[test]
    fn transpose_and_bit_complement_load_a_mesh_harder_than_uniform() {
        let t = mesh(8);
        let uniform = Pattern::Uniform.ideal_saturation(&t, |_, _| 1.0);
        let transpose = Pattern::Transpose.ideal_saturation(&t, |_, _| 1.0);
        let complement = Pattern::BitComplement.ideal_saturation(&t, |_, _| 1.0);
        assert!(transpose < uniform && complement < uniform);
        // All of complement's traffic crosses the bisection: k²/2 sources over k links.
        assert!((complement - 2.0 / 8.0).abs() < 1e-9);
        assert_eq!(Pattern::Transpose.destinations(1, &t), vec![(8, 1.0)]);
    }

    #[test]
    fn a_hotspot_is_bound_by_its_ejection_port() {
        let t = mesh(4);
        let p = Pattern::Hotspot { nodes: vec![5], fraction: 0.5 };
        // Node 5 ejects 16 × (0.5 + 0.5/16) per unit of injection rate.
        let got = p.ideal_saturation(&t, |_, _| 1.0);
        assert!((got - 1.0 / (16.0 * (0.5 + 0.5 / 16.0))).abs() < 1e-9);
        assert!(Pattern::Transpose.check(&Topology { kind: TopologyKind::Mesh, columns: 4, rows: 2 }).is_err());
    }
}
