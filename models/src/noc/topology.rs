//! Network topologies and their routing: which output port a packet at a
//! router takes toward its destination.

use serde::{Deserialize, Serialize};

/// How the routers of a network are joined.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TopologyKind {
    /// A 2-D grid, dimension-order (X then Y) routing.
    Mesh,
    /// A bidirectional ring, shortest direction, with dateline virtual-channel classes.
    Ring,
    /// One switch joining every node.
    Crossbar,
}

/// A topology of `nodes` nodes (one per router, except the crossbar's single switch).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Topology {
    pub kind: TopologyKind,
    pub columns: u32,
    pub rows: u32,
}

/// An output port of a router.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Port {
    /// Ejection to the router's own node.
    Local,
    /// To the neighbour (or, for the crossbar, to node) with this index.
    To(u32),
}

impl Topology {
    pub fn nodes(&self) -> u32 {
        match self.kind {
            TopologyKind::Mesh => self.columns * self.rows,
            TopologyKind::Ring | TopologyKind::Crossbar => self.columns * self.rows.max(1),
        }
    }

    /// The routers: one per node, or one for a crossbar.
    pub fn routers(&self) -> u32 {
        match self.kind {
            TopologyKind::Crossbar => 1,
            _ => self.nodes(),
        }
    }

    /// The router a node is attached to.
    pub fn router_of(&self, node: u32) -> u32 {
        match self.kind {
            TopologyKind::Crossbar => 0,
            _ => node,
        }
    }

    /// The tile of `tile_columns × tile_rows` routers a mesh router lies in
    /// (a chiplet, when chiplets' meshes are joined).
    pub fn tile(&self, router: u32, tile_columns: u32, tile_rows: u32) -> (u32, u32) {
        let c = self.columns.max(1);
        ((router % c) / tile_columns.max(1), (router / c) / tile_rows.max(1))
    }

    /// Router-to-router hops from `a` to `b` along the route.
    pub fn hops(&self, a: u32, b: u32) -> u32 {
        match self.kind {
            TopologyKind::Mesh => {
                let c = self.columns;
                (a % c).abs_diff(b % c) + (a / c).abs_diff(b / c)
            }
            TopologyKind::Ring => {
                let n = self.nodes();
                let d = (b + n - a) % n;
                d.min(n - d)
            }
            TopologyKind::Crossbar => 0,
        }
    }

    /// The neighbours of a router, in a fixed order.
    pub fn neighbours(&self, r: u32) -> Vec<u32> {
        match self.kind {
            TopologyKind::Mesh => {
                let (c, rows) = (self.columns, self.rows);
                let (x, y) = (r % c, r / c);
                let mut out = Vec::new();
                if x + 1 < c {
                    out.push(r + 1);
                }
                if x > 0 {
                    out.push(r - 1);
                }
                if y + 1 < rows {
                    out.push(r + c);
                }
                if y > 0 {
                    out.push(r - c);
                }
                out
            }
            TopologyKind::Ring => {
                let n = self.nodes();
                if n <= 1 {
                    Vec::new()
                } else if n == 2 {
                    vec![(r + 1) % n]
                } else {
                    vec![(r + 1) % n, (r + n - 1) % n]
                }
            }
            TopologyKind::Crossbar => Vec::new(),
        }
    }

    /// The port a packet at router `r` bound for node `dest` leaves by.
    pub fn route(&self, r: u32, dest: u32) -> Port {
        match self.kind {
            TopologyKind::Crossbar => Port::To(dest),
            _ if r == dest => Port::Local,
            TopologyKind::Mesh => {
                let c = self.columns;
                let (x, y, dx, dy) = (r % c, r / c, dest % c, dest / c);
                if dx > x {
                    Port::To(r + 1)
                } else if dx < x {
                    Port::To(r - 1)
                } else if dy > y {
                    Port::To(r + c)
                } else {
                    Port::To(r - c)
                }
            }
            TopologyKind::Ring => {
                let n = self.nodes();
                let forward = (dest + n - r) % n;
                // Ties go clockwise, so every route is fixed.
                if forward <= n - forward { Port::To((r + 1) % n) } else { Port::To((r + n - 1) % n) }
            }
        }
    }

    /// Whether the link from `from` to `to` crosses the ring's dateline
    /// (packets switch to the upper virtual-channel class there).
    pub fn crosses_dateline(&self, from: u32, to: u32) -> bool {
        self.kind == TopologyKind::Ring && {
            let n = self.nodes();
            (from == n - 1 && to == 0) || (from == 0 && to == n - 1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mesh(c: u32, r: u32) -> Topology {
        Topology { kind: TopologyKind::Mesh, columns: c, rows: r }
    }

    #[test]
    fn xy_routes_reach_their_destination_in_manhattan_hops() {
        let t = mesh(4, 3);
        for a in 0..12 {
            for b in 0..12 {
                let (mut at, mut steps) = (a, 0);
                while let Port::To(next) = t.route(at, b) {
                    assert!(t.neighbours(at).contains(&next));
                    at = next;
                    steps += 1;
                }
                assert_eq!((at, steps), (b, t.hops(a, b)));
            }
        }
    }

    #[test]
    fn ring_routes_take_the_short_way() {
        let t = Topology { kind: TopologyKind::Ring, columns: 8, rows: 1 };
        assert_eq!(t.route(1, 3), Port::To(2));
        assert_eq!(t.route(1, 7), Port::To(0));
        assert_eq!(t.hops(1, 7), 2);
        assert!(t.crosses_dateline(7, 0) && t.crosses_dateline(0, 7) && !t.crosses_dateline(3, 4));
    }
}
